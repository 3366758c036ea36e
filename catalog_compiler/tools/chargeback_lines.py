"""One line of a usage-event file -> an `Event`, a `Skip` or a located `Problem`.

Every line is untrusted: bounded, parsed as strict JSON (no duplicate keys, no NaN), and
each field validated; a bad one becomes a `Problem` with the column of the offending value
(`FILE:LINE:COL: error[R0xx]: …`), never an exception. The codes are in docs/usage-events.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded
from typing import Any, Literal, NamedTuple

from catalog_compiler.diagnostics import UNPRINTABLE, printable

VERSION = 1
MAX_LINE_BYTES = 64 * 1024  # one line, its newline excluded
MAX_FILES = 10_000  # paths given to one run
MAX_TOKENS = 10**12  # one count of one request
MAX_NAME = 1_024  # characters of a workspace, provider, model or request id
USD_RE = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,18})?\Z")  # < 10^15 USD, 18 places
TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z\Z"
)
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")
KEYS = ("workspace", "provider", "model", "day")
NAMES = ("workspace", "provider", "model")  # the string fields that group

# Sums never round: any inexact step raises instead (200 digits hold 10^150 maximal events).
EXACT = Context(prec=200, traps=[Inexact, Rounded, Overflow, InvalidOperation])
ZERO = Decimal(0)

Severity = Literal["error", "warning"]


class Problem(NamedTuple):
    """One located finding: `line == 0` means the whole file (an I/O failure)."""

    file: str
    line: int
    column: int
    code: str
    message: str
    severity: Severity = "error"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file

    def __str__(self) -> str:
        return f"{printable(self.where)}: {self.severity}[{self.code}]: {printable(self.message)}"


CODES: dict[str, str] = {
    "R001": "the line is not valid JSON",
    "R002": "the line is longer than 64 KiB",
    "R003": "the line is not valid UTF-8",
    "R004": "the line is not a JSON object",
    "R005": "a key appears twice in one object",
    "R010": "the event's format version is newer than this report reads",
    "R011": "`v` is missing or not a positive integer",
    "R012": "a required field is missing",
    "R013": "a field has the wrong type",
    "R014": "a money field is a JSON number, not a decimal string",
    "R015": "a money field is not a plain non-negative decimal",
    "R016": "a token count is out of range",
    "R017": "`ts` is not a UTC timestamp `YYYY-MM-DDTHH:MM:SS[.fff]Z`",
    "R018": "a name or request id is empty, too long, or holds control characters or surrogates",
    "R020": "duplicate request ids (each counted once)",
    "R021": "the last line is unterminated and incomplete (skipped)",
    "R030": "the file cannot be read",
}


@dataclass(frozen=True, slots=True)
class Event:
    """The fields of one usage event the report reads."""

    request_id: str
    ts: datetime
    workspace: str
    provider: str | None
    model: str | None
    tokens: tuple[int, int, int, int]  # input, output, cache_read, cache_write
    catalog_cost_usd: Decimal
    chargeback_usd: Decimal

    def key(self, by: Sequence[str]) -> tuple[str | None, ...]:
        return tuple(self.ts.strftime("%Y-%m-%d") if k == "day" else getattr(self, k) for k in by)


class Skip(NamedTuple):
    """A well-formed line of another event type."""

    event: str


class _Bad(Exception):
    def __init__(self, code: str, message: str, *path: str) -> None:
        super().__init__(message)
        self.code, self.message, self.path = code, message, path


class _DuplicateKey(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not JSON")


DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_no_constant)


def _column(text: str, path: Sequence[str]) -> int:
    """Where the key `path` (nested keys) is written in the line, else 1."""
    pos = 0
    for key in path:
        found = text.find(json.dumps(key, ensure_ascii=False) + ":", pos)
        if found < 0:
            found = text.find(json.dumps(key), pos)
        if found < 0:
            return pos + 1
        pos = found
    return pos + 1


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string `{value[:40]}`" + ("…" if len(value) > 40 else "")
    if isinstance(value, int | float):
        return f"the number {json.dumps(value)[:40]}"
    return "an object" if isinstance(value, dict) else "an array"


def _get(obj: dict[str, Any], name: str, *parent: str) -> Any:
    if name not in obj:
        raise _Bad("R012", f"the field `{'.'.join((*parent, name))}` is missing", *parent)
    return obj[name]


def _name(obj: dict[str, Any], name: str, nullable: bool) -> str | None:
    value = _get(obj, name)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        kind = "a string or null" if nullable else "a string"
        raise _Bad("R013", f"`{name}` must be {kind}, found {_shown(value)}", name)
    if not value or len(value) > MAX_NAME:
        raise _Bad("R018", f"`{name}` must have 1 to {MAX_NAME} characters, found "
                   f"{len(value)}", name)  # fmt: skip
    if value != value.translate(UNPRINTABLE):
        raise _Bad("R018", f"`{name}` holds control or bidi characters", name)
    if not _is_text(value):
        raise _Bad("R018", f"`{name}` holds a lone surrogate (an escape like \\ud800 that "
                   "is no character): it cannot be written out", name)  # fmt: skip
    return value


def _is_text(value: str) -> bool:
    """Valid JSON may escape half a UTF-16 pair (`"\\ud800"`): no output encoding takes it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _usd(obj: dict[str, Any], name: str) -> Decimal:
    value = _get(obj, name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise _Bad(
            "R014",
            f"`{name}` is the JSON number {json.dumps(value)[:40]}: money is written as a "
            f'decimal string ("0.003"), which keeps it exact',
            name,
        )
    if not isinstance(value, str):
        raise _Bad("R013", f"`{name}` must be a decimal string, found {_shown(value)}", name)
    if not USD_RE.match(value):
        raise _Bad(
            "R015",
            f"`{name}` must be a plain non-negative decimal below 10^15 with at most 18 "
            f'places (like "0.00300"), found {_shown(value)}',
            name,
        )
    return Decimal(value)


def _tokens(obj: dict[str, Any]) -> tuple[int, int, int, int]:
    tokens = _get(obj, "tokens")
    if not isinstance(tokens, dict):
        raise _Bad("R013", f"`tokens` must be an object, found {_shown(tokens)}", "tokens")
    counts: list[int] = []
    for kind in TOKEN_KINDS:
        value = _get(tokens, kind, "tokens")
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(
                "R013", f"`tokens.{kind}` must be an integer, found {_shown(value)}",
                "tokens", kind,
            )  # fmt: skip
        if not 0 <= value <= MAX_TOKENS:
            raise _Bad(
                "R016", f"`tokens.{kind}` must be between 0 and 10^12, found {value}",
                "tokens", kind,
            )  # fmt: skip
        counts.append(value)
    return counts[0], counts[1], counts[2], counts[3]


def _ts(obj: dict[str, Any]) -> datetime:
    value = _get(obj, "ts")
    if not isinstance(value, str):
        raise _Bad("R017", f"`ts` must be a string, found {_shown(value)}", "ts")
    match = TS_RE.match(value)
    if match is None:
        raise _Bad("R017", f"`ts` must look like 2026-12-01T17:47:00.123Z, found {_shown(value)}",
                   "ts")  # fmt: skip
    year, month, day, hour, minute, second, fraction = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])  # truncation keeps order at 1 µs bounds
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        micro, tzinfo=UTC)  # fmt: skip
    except ValueError as exc:
        raise _Bad("R017", f"`ts` is not a real time ({exc}): {_shown(value)}", "ts") from None


def _event(obj: dict[str, Any]) -> Event | Skip:
    version = _get(obj, "v")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _Bad("R011", f"`v` must be a positive integer, found {_shown(version)}", "v")
    if version > VERSION:
        raise _Bad(
            "R010",
            f"format version {version} is newer than this report reads ({VERSION}): "
            "upgrade catalogc",
            "v",
        )
    kind = _get(obj, "event")
    if not isinstance(kind, str):
        raise _Bad("R013", f"`event` must be a string, found {_shown(kind)}", "event")
    if kind != "usage":
        return Skip(kind)
    request_id = _name(obj, "request_id", nullable=False)
    workspace = _name(obj, "workspace", nullable=False)
    assert request_id is not None and workspace is not None
    return Event(
        request_id=request_id,
        ts=_ts(obj),
        workspace=workspace,
        provider=_name(obj, "provider", nullable=True),
        model=_name(obj, "model", nullable=True),
        tokens=_tokens(obj),
        catalog_cost_usd=_usd(obj, "catalog_cost_usd"),
        chargeback_usd=_usd(obj, "chargeback_usd"),
    )


def parse_line(raw: bytes, file: str, line: int) -> Event | Skip | Problem | None:
    """One line (its newline removed): an event, a skipped event of another kind, a problem,
    or None for a blank line."""
    if len(raw) > MAX_LINE_BYTES:
        return Problem(file, line, 1, "R002",
                       f"the line has more than {MAX_LINE_BYTES} bytes: not an event")  # fmt: skip
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
        return Problem(file, line, column, "R003", f"invalid UTF-8 at byte {exc.start + 1}")
    if not text.strip():
        return None
    try:
        obj = DECODER.decode(text)
    except _DuplicateKey as exc:
        return Problem(file, line, 1, "R005",
                       f"the key `{str(exc)[:80]}` appears twice in one object")  # fmt: skip
    except json.JSONDecodeError as exc:
        return Problem(file, line, exc.colno, "R001", f"invalid JSON: {exc.msg}")
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        return Problem(file, line, 1, "R001", f"invalid JSON: {reason}")
    if not isinstance(obj, dict):
        return Problem(file, line, 1, "R004", f"an event is a JSON object, found {_shown(obj)}")
    try:
        return _event(obj)
    except _Bad as bad:
        return Problem(file, line, _column(text, bad.path), bad.code, bad.message)
