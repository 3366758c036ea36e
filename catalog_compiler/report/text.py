"""rustc-style text: `path:line:col: error[CODE]: message`, the source line, a caret, help."""

from __future__ import annotations

from collections.abc import Sequence

from catalog_compiler.diagnostics import Diagnostic
from catalog_compiler.redact import mask_same_length
from catalog_compiler.report.base import (
    Reporter,
    SourceLines,
    Summary,
    clip,
    counts,
    printable,
    valid,
)

_STYLE = {"error": "\033[1;31m", "warning": "\033[1;33m", "gutter": "\033[1;34m",
          "bold": "\033[1m", "help": "\033[1;36m", "reset": "\033[0m"}  # fmt: skip
TAB = "    "


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class TextReporter(Reporter):
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
        """The source line (secrets masked, clipped to MAX_SHOWN) and a caret under the span."""
        span = diag.span
        hidden = [
            (s.span.column, s.span.end_column if s.span.end_line == span.line else 0)
            for s in secrets
            if s.span.file == span.file and s.span.line == span.line
        ]
        end = span.column + 1
        if span.end_line == span.line and span.end_column > span.column:
            end = span.end_column
        shown, column, end = clip(printable(mask_same_length(source, hidden)), span.column, end)
        width = len(str(span.line))
        gutter = self.paint(" " * width + " |", "gutter")
        start = len(shown[: max(column - 1, 0)].replace("\t", TAB))
        length = len(shown[column - 1 : end - 1].replace("\t", TAB))
        caret = " " * start + "^" * max(length, 1)
        return [
            f"{gutter}\n",
            f"{self.paint(f'{span.line} |', 'gutter')} {shown.replace(chr(9), TAB)}\n",
            f"{gutter} {self.paint(caret, diag.severity.value)}\n",
        ]

    def summary_line(self, diagnostics: Sequence[Diagnostic], summary: Summary) -> str:
        errors, warnings = counts(diagnostics)
        scope = f"{plural(summary.documents, 'document')} from {plural(summary.files, 'file')}"
        parts = [plural(n, w) for n, w in ((errors, "error"), (warnings, "warning")) if n]
        if valid(diagnostics, summary.strict):
            tail = f" ({', '.join(parts)})" if parts else ""
            return f"{self.paint('ok', 'bold')}: {scope}{tail}"
        why = " (--strict)" if not errors else ""
        return f"{self.paint('failed', 'error')}: {', '.join(parts)}{why} in {scope}"
