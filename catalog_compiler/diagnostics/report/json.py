"""Machine-readable output with a versioned envelope (after `terraform validate -json`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from catalog_compiler import __version__
from catalog_compiler.diagnostics import Diagnostic, Span
from catalog_compiler.diagnostics.redact import mask
from catalog_compiler.diagnostics.report.base import TOOL, Reporter, Summary, counts, valid

FORMAT_VERSION = "1.0"


def span_json(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {"file": span.file}
    if span.line:
        out["range"] = {
            "start": {"line": span.line, "column": span.column},
            "end": {"line": span.end_line, "column": span.end_column},
        }
    return out


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    return {
        "code": d.code,
        "name": d.name,
        "severity": d.severity.value,
        "message": mask(d.message),
        **span_json(d.span),
        "help": mask(d.help) if d.help else d.help,
        "notes": [{"message": mask(n.message), **span_json(n.span)} for n in d.notes],
    }


class JsonReporter(Reporter):
    def report(self, diagnostics: Sequence[Diagnostic], summary: Summary) -> None:
        errors, warnings = counts(diagnostics)
        envelope = {
            "format_version": FORMAT_VERSION,
            "tool": {"name": TOOL, "version": __version__},
            "valid": valid(diagnostics, summary.strict),
            "error_count": errors,
            "warning_count": warnings,
            "files": summary.files,
            "documents": summary.documents,
            "diagnostics": [diagnostic_json(d) for d in diagnostics],
        }
        self.stream.write(json.dumps(envelope, indent=2, ensure_ascii=False) + "\n")
