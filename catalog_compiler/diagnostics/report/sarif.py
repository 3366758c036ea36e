"""SARIF 2.1.0 for code-scanning upload; every code is a rule with a stable id and index."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from catalog_compiler import __version__
from catalog_compiler.diagnostics import Diagnostic, Span
from catalog_compiler.diagnostics.codes import CODES
from catalog_compiler.diagnostics.redact import mask
from catalog_compiler.diagnostics.report.base import DOCS_URI, TOOL, Reporter, Summary

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_RULE_IDS = sorted(CODES)
_RULE_INDEX = {rule: i for i, rule in enumerate(_RULE_IDS)}


def _level(severity: str) -> str:
    return "error" if severity == "error" else "warning"


def _location(span: Span, message: str | None = None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": span.file}}
    if span.line:
        physical["region"] = {
            "startLine": span.line,
            "startColumn": span.column,
            "endLine": span.end_line or span.line,
            "endColumn": span.end_column or span.column,
        }
    loc: dict[str, Any] = {"physicalLocation": physical}
    if message:
        loc["message"] = {"text": mask(message)}
    return loc


def rules() -> list[dict[str, Any]]:
    return [
        {
            "id": code.id,
            "name": code.name,
            "shortDescription": {"text": code.summary},
            "helpUri": f"{DOCS_URI}#{code.id.lower()}-{code.name}",
            "defaultConfiguration": {"level": _level(code.severity.value)},
        }
        for code in (CODES[i] for i in _RULE_IDS)
    ]


def result(d: Diagnostic) -> dict[str, Any]:
    text = d.message + (f"\nhelp: {d.help}" if d.help else "")
    out: dict[str, Any] = {
        "ruleId": d.code,
        "ruleIndex": _RULE_INDEX[d.code],
        "level": _level(d.severity.value),
        "message": {"text": mask(text)},
        "locations": [_location(d.span)],
    }
    if d.notes:
        out["relatedLocations"] = [
            {"id": i, **_location(n.span, n.message)} for i, n in enumerate(d.notes)
        ]
    return out


class SarifReporter(Reporter):
    def report(self, diagnostics: Sequence[Diagnostic], summary: Summary) -> None:
        log = {
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": TOOL,
                            "version": __version__,
                            "informationUri": DOCS_URI,
                            "rules": rules(),
                        }
                    },
                    "results": [result(d) for d in diagnostics],
                }
            ],
        }
        self.stream.write(json.dumps(log, indent=2, ensure_ascii=False) + "\n")
