"""Diagnostics are data: a code, a severity, a message and an exact source range.

Every pipeline stage appends to a `Sink` and keeps going; only the CLI decides how to
print them and which exit code to use. This package takes what the stages emit and hands
on printable reports: the table of codes (`codes.py`), secret redaction applied to every
message (`redact.py`), progress events (`progress.py`) and the reporters (`report/`: text,
JSON, SARIF, GitHub annotations). It imports no stage, so every stage may import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import NamedTuple

from catalog_compiler.diagnostics.codes import CODES, Severity
from catalog_compiler.diagnostics.redact import mask

__all__ = ["Diagnostic", "Note", "Severity", "Sink", "Span"]


MAX_QUOTED = 120  # characters of one quoted user text kept in a message
MAX_MESSAGE = 1_000
_QUOTED = re.compile(r"`([^`]{" + str(MAX_QUOTED + 1) + r",})`")


# Control and bidi-override characters, each replaced by one U+FFFD (columns keep): a
# catalog must not drive a terminal, forge a line of output or reorder what is shown.
UNPRINTABLE = dict.fromkeys(
    [*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)],
    "\ufffd",
)


def printable(text: str, keep_tabs: bool = False) -> str:
    return text.translate(_KEEP_TABS if keep_tabs else UNPRINTABLE)


_KEEP_TABS = {k: v for k, v in UNPRINTABLE.items() if k != 0x09}


def printable_lines(text: str) -> str:
    """Text of several lines for a terminal: each line printable, the line breaks kept."""
    return "\n".join(printable(line) for line in text.split("\n"))


@lru_cache(maxsize=4096)  # floods repeat their message and help: mask each text once
def clean(text: str) -> str:
    """What a message or help line may show: secrets masked, quoted user text bounded,
    nothing unprintable (messages never need a newline or an escape)."""
    return printable(bounded(mask(text)))


def bounded(text: str) -> str:
    """A message quoting user text stays readable: a 1 MB key is shown by its start."""
    text = _QUOTED.sub(lambda m: f"`{m.group(1)[:MAX_QUOTED]}…` ({len(m.group(1)):,} chars)", text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


class Span(NamedTuple):
    """A 1-based source range; `line == 0` means "the whole file"."""

    file: str
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0

    @classmethod
    def at(cls, file: str, pos: tuple[int, ...] | None) -> Span:
        if not pos:
            return cls(file)
        line, col = pos[0], pos[1]
        if len(pos) >= 4:
            return cls(file, line, col, pos[2], pos[3])
        return cls(file, line, col, line, col)

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


class Note(NamedTuple):
    """A second position that contributed, e.g. "first defined here"."""

    span: Span
    message: str


class Diagnostic(NamedTuple):
    code: str
    message: str
    span: Span
    help: str | None = None
    notes: tuple[Note, ...] = ()
    severity: Severity = Severity.ERROR

    @property
    def name(self) -> str:
        return CODES[self.code].name

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.span.file, self.span.line, self.span.column, self.code, self.message)


class Sink:
    """Collects diagnostics from every stage of one run."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []

    def emit(
        self,
        code: str,
        message: str,
        span: Span,
        *,
        help: str | None = None,
        notes: Iterable[Note] = (),
    ) -> Diagnostic:
        # Messages may quote user text: secret-shaped parts are masked before they can leak.
        notes = tuple(Note(n.span, clean(n.message)) for n in notes)
        diag = Diagnostic(
            code, clean(message), span._replace(file=printable(span.file)),
            clean(help) if help else help, notes, CODES[code].severity,
        )  # fmt: skip
        self._items.append(diag)
        return diag

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        self._items.extend(diags)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def sorted(self) -> list[Diagnostic]:
        """Sorted by file and position, exact repeats dropped. Where a secret is found, only
        one report: the scanner's, which names the kind of secret and is emitted first."""
        first: dict[tuple[Span, str, str], Diagnostic] = {}
        secrets = {d.span for d in self._items if d.code == "E0400"}
        for d in self._items:
            if d.code != "E0400" and d.span in secrets:
                continue  # the value is a leaked secret: that is the one thing to fix there
            first.setdefault((d.span, d.code, "" if d.code == "E0400" else d.message), d)
        return sorted(first.values(), key=Diagnostic.sort_key)

    @property
    def error_count(self) -> int:
        return sum(1 for d in self._items if d.severity is Severity.ERROR)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self._items)
