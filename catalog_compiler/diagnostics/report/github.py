"""GitHub Actions workflow commands: one `::error`/`::warning` annotation per diagnostic."""

from __future__ import annotations

from collections.abc import Sequence

from catalog_compiler.diagnostics import Diagnostic
from catalog_compiler.diagnostics.redact import mask
from catalog_compiler.diagnostics.report.base import Reporter, Summary, counts


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GithubReporter(Reporter):
    def report(self, diagnostics: Sequence[Diagnostic], summary: Summary) -> None:
        for d in diagnostics:
            props = [f"file={escape_property(d.span.file)}"]
            if d.span.line:
                props += [f"line={d.span.line}", f"col={d.span.column}"]
                if d.span.end_line:
                    props += [f"endLine={d.span.end_line}", f"endColumn={d.span.end_column}"]
            props.append(f"title={escape_property(f'{d.code} {d.name}')}")
            message = d.message + (f"\nhelp: {d.help}" if d.help else "")
            for note in d.notes:
                message += f"\nnote: {note.message}: {note.span}"
            line = f"::{d.severity.value} {','.join(props)}::{escape_data(mask(message))}\n"
            self.stream.write(line)
        errors, warnings = counts(diagnostics)
        self.stream.write(
            f"catalogc: {errors} error(s), {warnings} warning(s) in {summary.documents} documents\n"
        )
