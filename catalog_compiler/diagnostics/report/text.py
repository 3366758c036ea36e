"""rustc-style text: `path:line:col: error[CODE]: message`, the source line, a caret, help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from catalog_compiler.diagnostics import Diagnostic, Span
from catalog_compiler.diagnostics.redact import mask_same_length
from catalog_compiler.diagnostics.report.base import (
    Reporter,
    SourceLines,
    Summary,
    counts,
    printable,
    valid,
    window,
)

_STYLE = {"error": "\033[1;31m", "warning": "\033[1;33m", "gutter": "\033[1;34m",
          "bold": "\033[1m", "help": "\033[1;36m", "reset": "\033[0m"}  # fmt: skip
TAB = "    "
MARGIN = 1024  # characters masked beyond the shown excerpt on each side


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class TextReporter(Reporter):
    def __init__(self, stream: TextIO, color: bool = False) -> None:
        super().__init__(stream, color)
        self._masked: dict[tuple[str, int, int], str] = {}

    def paint(self, text: str, style: str) -> str:
        return f"{_STYLE[style]}{text}{_STYLE['reset']}" if self.color else text

    def report(self, diagnostics: Sequence[Diagnostic], summary: Summary) -> None:
        lines = SourceLines(summary.sources)
        secrets = [d for d in diagnostics if d.code == "E0400"]
        for diag in diagnostics:
            self.stream.write(self.render(diag, lines, secrets))
        self.stream.write(self.summary_line(diagnostics, summary) + "\n")

    def render(self, diag: Diagnostic, lines: SourceLines, secrets: list[Diagnostic]) -> str:
        sev = diag.severity.value
        head = (
            f"{self.paint(printable(str(diag.span)), 'bold')}: "
            f"{self.paint(f'{sev}[{diag.code}]', sev)}: "
            f"{self.paint(printable(diag.message), 'bold')}\n"
        )
        out = [head]
        span = diag.span
        source = lines.line(span.file, span.line) if span.line else None
        if source is not None:
            out += self.excerpt(diag, source, secrets)
        pad = " " * (len(str(span.line)) if source is not None else 0)
        if diag.help:
            out.append(f"{pad} = {self.paint('help', 'help')}: {printable(diag.help)}\n")
        for note in diag.notes:
            out.append(f"{pad} = note: {printable(note.message)}: {printable(str(note.span))}\n")
        out.append("\n")
        return "".join(out)

    def excerpt(self, diag: Diagnostic, source: str, secrets: list[Diagnostic]) -> list[str]:
        """The source line (secrets masked, at most MAX_SHOWN characters around the column,
        `…` where cut) and a caret under the span."""
        span = diag.span
        end = span.column + 1
        if span.end_line == span.line and span.end_column > span.column:
            end = span.end_column
        start, stop = window(len(source), span.column)
        shown = self.masked(span, source, secrets, start, stop)
        head = "…" if start else ""
        shift = start - len(head)  # columns move left by what is cut, right by the `…`
        column, end = span.column - shift, min(end, stop + 1) - shift
        shown = head + shown + ("…" if stop < len(source) else "")
        width = len(str(span.line))
        gutter = self.paint(" " * width + " |", "gutter")
        before = len(shown[: max(column - 1, 0)].replace("\t", TAB))
        length = len(shown[column - 1 : end - 1].replace("\t", TAB))
        caret = " " * before + "^" * max(length, 1)
        return [
            f"{gutter}\n",
            f"{self.paint(f'{span.line} |', 'gutter')} {shown.replace(chr(9), TAB)}\n",
            f"{gutter} {self.paint(caret, diag.severity.value)}\n",
        ]

    def masked(
        self, span: Span, source: str, secrets: list[Diagnostic], start: int, stop: int
    ) -> str:
        """source[start:stop] with secrets hidden (columns kept), printable. Masking looks
        MARGIN characters beyond the cut so a secret crossing it is still recognised, but
        never scans a whole megabyte line."""
        key = (span.file, span.line, start)
        found = self._masked.get(key)
        if found is None:
            lo, hi = max(0, start - MARGIN), min(len(source), stop + MARGIN)
            hidden = [
                (max(s.span.column - lo, 1),
                 max(s.span.end_column - lo, 1) if s.span.end_line == span.line else 0)
                for s in secrets
                if s.span.file == span.file and s.span.line == span.line
            ]  # fmt: skip
            wide = mask_same_length(source[lo:hi], hidden)
            found = self._masked[key] = printable(wide[start - lo : stop - lo])
        return found

    def summary_line(self, diagnostics: Sequence[Diagnostic], summary: Summary) -> str:
        errors, warnings = counts(diagnostics)
        scope = f"{plural(summary.documents, 'document')} from {plural(summary.files, 'file')}"
        parts = [plural(n, w) for n, w in ((errors, "error"), (warnings, "warning")) if n]
        if valid(diagnostics, summary.strict):
            tail = f" ({', '.join(parts)})" if parts else ""
            return f"{self.paint('ok', 'bold')}: {scope}{tail}"
        why = " (--strict)" if not errors else ""
        return f"{self.paint('failed', 'error')}: {', '.join(parts)}{why} in {scope}"
