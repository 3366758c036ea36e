"""Renderers of a validation result: one class per output format (`REPORTER_BY_NAME`)."""

from __future__ import annotations

from catalog_compiler.diagnostics.report.base import Reporter
from catalog_compiler.diagnostics.report.github import GithubReporter
from catalog_compiler.diagnostics.report.json import JsonReporter
from catalog_compiler.diagnostics.report.sarif import SarifReporter
from catalog_compiler.diagnostics.report.text import TextReporter

REPORTER_BY_NAME: dict[str, type[Reporter]] = {
    "text": TextReporter,
    "json": JsonReporter,
    "github": GithubReporter,
    "sarif": SarifReporter,
}

__all__ = ["REPORTER_BY_NAME", "Reporter"]
