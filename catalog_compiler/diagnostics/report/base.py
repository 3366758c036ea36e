"""What every reporter gets: the diagnostics of one run and a way to read source lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from catalog_compiler import __version__
from catalog_compiler.diagnostics import Diagnostic, Severity
from catalog_compiler.diagnostics import printable as _printable

TOOL = "catalogc"
DOCS_URI = "https://github.com/catalog-compiler/catalog-compiler/blob/main/docs/diagnostics.md"


@dataclass
class Summary:
    """Counts shown after the diagnostics."""

    files: int
    documents: int
    strict: bool = False
    sources: Mapping[str, bytes] = field(default_factory=dict)  # display path -> bytes read


class Reporter:
    def __init__(self, stream: TextIO, color: bool = False) -> None:
        self.stream = stream
        self.color = color

    def report(self, diagnostics: Sequence[Diagnostic], summary: Summary) -> None:
        raise NotImplementedError


def counts(diagnostics: Sequence[Diagnostic]) -> tuple[int, int]:
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    return errors, len(diagnostics) - errors


def valid(diagnostics: Sequence[Diagnostic], strict: bool) -> bool:
    errors, warnings = counts(diagnostics)
    return errors == 0 and not (strict and warnings)


MAX_SHOWN = 160  # characters of a source line printed around the column; the rest is elided


def printable(text: str) -> str:
    """A source line with control and bidi-override characters replaced one for one
    (columns keep; tabs are expanded by the reporter)."""
    return _printable(text, keep_tabs=True)


class SourceLines:
    """Lines of the files diagnostics point at, from the bytes discovery read (by display
    path). Nothing is re-read from disk: a path is never opened twice, and only catalog
    files are ever shown."""

    def __init__(self, sources: Mapping[str, bytes]) -> None:
        self._raw = sources
        self._files: dict[str, list[str]] = {}

    def line(self, file: str, number: int) -> str | None:
        lines = self._files.get(file)
        if lines is None:
            raw = self._raw.get(file)
            if raw is None:
                return None
            text = raw.decode("utf-8", errors="replace")
            lines = self._files[file] = text.removeprefix("\ufeff").splitlines()
        if not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


def window(length: int, column: int) -> tuple[int, int]:
    """The 0-based [start, stop) of at most MAX_SHOWN characters of a line of `length`
    around the 1-based `column`."""
    if length <= MAX_SHOWN:
        return 0, length
    start = max(0, min(column - 1 - MAX_SHOWN // 4, length - MAX_SHOWN))
    return start, start + MAX_SHOWN


__all__ = [
    "DOCS_URI", "MAX_SHOWN", "TOOL", "Reporter", "SourceLines", "Summary", "__version__",
    "printable", "window",
]  # fmt: skip
