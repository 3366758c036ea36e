"""Live usage in the gallery: spend against each budget, read from a usage file (what
`catalogc usage --format json` or a gateway's `/v1/catalog/usage` wrote) or from the Redis
store. The file is untrusted input: bounded, checked field by field, and refused with a
message naming the entry, never a traceback."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from catalog_compiler.load.fsutil import read_input
from runtime.bundle.money import dollars

MAX_BYTES = 16 * 1024 * 1024
MAX_ROWS = 100_000
KINDS = ("budget", "rate_limit", "concurrency")


class UsageFileError(ValueError):
    """A usage file that cannot be read or does not have the documented shape."""


@dataclass(frozen=True)
class UsageBar:
    counter: str
    kind: str
    unit: str
    period: str | None
    limit: Decimal
    spent: Decimal  # settled + in flight, what admission counts
    window: str  # "2026-12-01 … 2027-01-01", or "now"

    @property
    def share(self) -> Decimal:
        if not self.limit:
            return Decimal(1) if self.spent else Decimal(0)
        return min(self.spent / self.limit, Decimal(1))

    @property
    def percent(self) -> int:
        return int(self.share * 100)

    @property
    def label(self) -> str:
        unit = "USD" if self.unit == "usd" else self.unit
        what = f"{dollars(self.spent)} of {dollars(self.limit)} {unit}"
        return f"{what} {self.period}" if self.period and self.kind != "concurrency" else what


def read_usage_file(path: Path) -> dict[str, list[UsageBar]]:
    """Bars per counter id, from a usage JSON file."""
    try:  # a regular file only (a FIFO would block the open), read with the bound
        data = read_input(path, MAX_BYTES)
    except OSError as exc:
        raise UsageFileError(
            f"{path}: cannot read ({exc.strerror or type(exc).__name__})"
        ) from None
    try:
        doc = json.loads(data.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UsageFileError(f"{path}: not a JSON document") from None
    rows = doc.get("counters") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        raise UsageFileError(f"{path}: expected an object with a `counters` list "
                             "(`catalogc usage --format json`)")  # fmt: skip
    return bars_of(rows, str(path))


def bars_of(rows: list[Any], where: str = "usage") -> dict[str, list[UsageBar]]:
    found: dict[str, list[UsageBar]] = {}
    for i, row in enumerate(rows):
        bar = _bar(row, f"{where}: counters[{i}]")
        found.setdefault(bar.counter, []).append(bar)
    for bars in found.values():
        bars.sort(key=lambda b: (KINDS.index(b.kind), b.unit, b.period or ""))
    return dict(sorted(found.items()))


def _bar(row: Any, where: str) -> UsageBar:
    if not isinstance(row, dict):
        raise UsageFileError(f"{where}: expected an object")
    counter, kind, unit = row.get("counter"), row.get("kind"), row.get("unit")
    if not isinstance(counter, str) or not 0 < len(counter) <= 300:
        raise UsageFileError(f"{where}: `counter` must be a counter id")
    if kind not in KINDS:
        raise UsageFileError(f"{where}: `kind` is one of {', '.join(KINDS)}")
    if unit not in ("usd", "tokens", "requests"):
        raise UsageFileError(f"{where}: `unit` is usd, tokens or requests")
    limit = _amount(row.get("limit"), f"{where}: `limit`")
    spent = _amount(row.get("spent"), f"{where}: `spent`")
    reserved = row.get("reserved")
    if reserved is not None:
        spent += _amount(reserved, f"{where}: `reserved`")
    period = row.get("period")
    if period is not None and (not isinstance(period, str) or len(period) > 40):
        raise UsageFileError(f"{where}: `period` must be a short text")
    start, end = row.get("window_start"), row.get("window_end")
    window = "now"
    if kind == "budget" and isinstance(start, str):
        window = f"{start[:10]} … {end[:10] if isinstance(end, str) else '∞'}"
    return UsageBar(counter, kind, unit, period, limit, spent, window)


def _amount(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise UsageFileError(f"{what} must be a number or an exact decimal string")
    try:
        found = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise UsageFileError(f"{what} is not a number") from None
    if not found.is_finite() or found < 0 or found > Decimal(10) ** 15:
        raise UsageFileError(f"{what} is out of range")
    return found
