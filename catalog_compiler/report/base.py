"""What every reporter gets: the diagnostics of one run and a way to read source lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from catalog_compiler import __version__
from catalog_compiler.diagnostics import Diagnostic, Severity

TOOL = "catalogc"
DOCS_URI = "https://github.com/catalog-compiler/catalog-compiler/blob/main/docs/diagnostics.md"


@dataclass
class Summary:
    """Counts shown after the diagnostics."""

    files: int
    documents: int
    strict: bool = False


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


class SourceLines:
    """Lazily read lines of the files diagnostics point at (display paths)."""

    def __init__(self) -> None:
        self._files: dict[str, list[str] | None] = {}

    def line(self, file: str, number: int) -> str | None:
        if file not in self._files:
            try:
                text = Path(file).read_bytes().decode("utf-8", errors="replace")
                self._files[file] = text.removeprefix("\ufeff").splitlines()
            except OSError:
                self._files[file] = None
        lines = self._files[file]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


__all__ = ["DOCS_URI", "TOOL", "Reporter", "SourceLines", "Summary", "__version__"]
