"""Usage events (one JSON object per line, written by the gateway) read and summed exactly.

Everything an event file says is untrusted: every line is bounded, validated, and a bad one
becomes a located problem (`FILE:LINE:COL: error[R0xx]: …`), never an exception. Money is
`decimal.Decimal` throughout, added in a context that traps any rounding, so a total is the
exact sum of its events or the run fails loudly. The format and the codes are described in
docs/usage-events.md; one line is read by chargeback_lines.py, the command line lives in
cli/report_cmd.py.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from catalog_compiler.tools.chargeback_lines import (
    CODES,
    DECODER,
    EXACT,
    KEYS,
    MAX_FILES,
    MAX_LINE_BYTES,
    MAX_TOKENS,
    TOKEN_KINDS,
    ZERO,
    Event,
    Problem,
    Skip,
    parse_line,
)

__all__ = [
    "CODES",
    "KEYS",
    "MAX_FILES",
    "MAX_LINE_BYTES",
    "MAX_TOKENS",
    "TOKEN_KINDS",
    "Event",
    "Problem",
    "Skip",
    "Tally",
    "Totals",
    "format_usd",
    "open_events",
    "parse_line",
    "read_stream",
    "summarize",
]


def _lines(stream: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Each line without its newline, and whether it had one; a line longer than the cap is
    returned cut at cap + 1 bytes (the rest is read and dropped, never kept)."""
    while True:
        chunk = stream.readline(MAX_LINE_BYTES + 2)  # the cap, a `\r` and a `\n`
        if not chunk:
            return
        if chunk.endswith(b"\n"):
            yield chunk[:-1], True
            continue
        if len(chunk) < MAX_LINE_BYTES + 2:  # the stream ended inside this line
            yield chunk, False
            return
        ended = False
        while not ended:  # too long: drop the rest of it
            rest = stream.readline(MAX_LINE_BYTES)
            ended = not rest or rest.endswith(b"\n")
        yield chunk[: MAX_LINE_BYTES + 1], True


@dataclass
class Totals:
    requests: int = 0
    tokens: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    catalog_cost_usd: Decimal = ZERO
    chargeback_usd: Decimal = ZERO

    def add(self, event: Event) -> None:
        self.requests += 1
        for i, count in enumerate(event.tokens):
            self.tokens[i] += count
        self.catalog_cost_usd = EXACT.add(self.catalog_cost_usd, event.catalog_cost_usd)
        self.chargeback_usd = EXACT.add(self.chargeback_usd, event.chargeback_usd)

    def json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            **{f"{kind}_tokens": n for kind, n in zip(TOKEN_KINDS, self.tokens, strict=True)},
            "catalog_cost_usd": format_usd(self.catalog_cost_usd),
            "chargeback_usd": format_usd(self.chargeback_usd),
        }


def format_usd(amount: Decimal) -> str:
    """Exact, in plain notation, without trailing zeros: "0.000011", "0", "12"."""
    text = f"{amount:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _sort_key(key: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((part is None, part or "") for part in key)


@dataclass
class Tally:
    """Events summed by group: each request id counted once (its first occurrence), then
    kept only when `since <= ts < until`."""

    by: tuple[str, ...] = ("workspace",)
    since: datetime | None = None
    until: datetime | None = None
    groups: dict[tuple[str | None, ...], Totals] = field(default_factory=dict)
    total: Totals = field(default_factory=Totals)
    seen: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> first file, line
    skipped: int = 0  # lines of other event kinds
    outside: int = 0  # usage events outside the window
    duplicates: int = 0
    first_duplicate: Problem | None = None

    def add(self, event: Event, file: str = "-", line: int = 0) -> None:
        first = self.seen.get(event.request_id)
        if first is not None:
            self.duplicates += 1
            if self.first_duplicate is None:
                self.first_duplicate = Problem(
                    file, line, 1, "R020",
                    f"request id `{event.request_id[:80]}` was already counted at "
                    f"{first[0]}:{first[1]}",
                    "warning",
                )  # fmt: skip
            return
        self.seen[event.request_id] = (file, line)
        if (self.since is not None and event.ts < self.since) or (
            self.until is not None and event.ts >= self.until
        ):
            self.outside += 1
            return
        self.groups.setdefault(event.key(self.by), Totals()).add(event)
        self.total.add(event)

    def rows(self) -> list[tuple[tuple[str | None, ...], Totals]]:
        return sorted(self.groups.items(), key=lambda item: _sort_key(item[0]))

    def json(self) -> dict[str, Any]:
        return {
            "by": list(self.by),
            "rows": [
                {**dict(zip(self.by, key, strict=True)), **totals.json()}
                for key, totals in self.rows()
            ],
            "total": self.total.json(),
            "skipped": self.skipped,
            "duplicates": self.duplicates,
        }


def _truncated(raw: bytes) -> bool:
    """Whether a line reads as the start of an event cut short: its UTF-8 or its JSON ends
    early (not a complete value followed by more)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data"
    try:
        DECODER.decode(text)
    except json.JSONDecodeError as exc:
        return exc.msg != "Extra data"
    except (ValueError, RecursionError):
        return False
    return False


def read_stream(stream: IO[bytes], file: str, tally: Tally) -> Iterator[Problem]:
    """Add every event of `stream` to `tally`, yielding the problems of its lines."""
    number = 0
    for raw, terminated in _lines(stream):
        number += 1
        found = parse_line(raw, file, number)
        if found is None:
            continue
        if isinstance(found, Problem):
            if not terminated and _truncated(raw):
                yield Problem(
                    file, number, 1, "R021",
                    "the last line has no newline and is not a complete event (a writer may "
                    "still be writing it): skipped",
                    "warning",
                )  # fmt: skip
            else:
                yield found
        elif isinstance(found, Skip):
            tally.skipped += 1
        else:
            tally.add(found, file, number)


def open_events(path: str) -> IO[bytes] | Problem:
    """A regular file or a pipe (process substitution), opened for reading; anything else
    (a directory, a device that never ends) is refused."""
    try:
        stream = open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        return Problem(path, 0, 0, "R030", f"cannot read: {exc.strerror or exc}")
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except OSError as exc:
        stream.close()
        return Problem(path, 0, 0, "R030", f"cannot read: {exc.strerror or exc}")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        stream.close()
        return Problem(path, 0, 0, "R030", "cannot read: not a regular file or a pipe")
    return stream


def summarize(events: Iterable[Event], by: Sequence[str] = ("workspace",)) -> Tally:
    """The tally of `events` (no window), for callers holding events already."""
    tally = Tally(tuple(by))
    for event in events:
        tally.add(event)
    return tally
