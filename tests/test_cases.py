"""Golden cases: each tests/cases/<name>/ holds a broken catalog (`catalog/`) and the exact
diagnostics it must produce (`expected.txt`: `file:line:col: severity[CODE]`, sorted).
A case may also hold `expected.out`, the exact text rendering."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from catalog_compiler.compiler import compile_catalog
from catalog_compiler.report.base import Summary
from catalog_compiler.report.text import TextReporter

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if (p / "expected.txt").exists())


def render_positions(case: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    monkeypatch.chdir(case / "catalog")
    compiled = compile_catalog(".")  # every check, as `catalogc validate` runs them
    result = compiled.validation
    lines = [f"{d.span}: {d.severity.value}[{d.code}]" for d in compiled.diagnostics]
    out = io.StringIO()
    TextReporter(out).report(
        compiled.diagnostics, Summary(len(result.sources), result.document_count)
    )
    return lines, out.getvalue()


def expected_lines(case: Path) -> list[str]:
    text = (case / "expected.txt").read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_case(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got, text = render_positions(case, monkeypatch)
    assert got == expected_lines(case)
    golden = case / "expected.out"
    if golden.exists():
        assert text == golden.read_text(encoding="utf-8")
