"""Every diagnostic code is documented (with an example and a fix) and exercised by a test.

A golden case exercises a code for real (tests/cases/*/expected.txt; links, FIFOs and sparse
files a case needs are made at run time from its special.json). The output codes come from
the CLI around a compile, not from a catalog, so no golden case can hold them: each names the
test module that must assert it in the real output (CLI_ONLY)."""

from __future__ import annotations

import ast
import re

import pytest

from catalog_compiler.diagnostics.codes import CODES
from tests.conftest import ROOT

DOC = ROOT / "docs" / "diagnostics.md"
CLI_ONLY = {  # code -> the test module asserting it in a real run's output
    "E0006": "tests/hostile/test_outputs.py",
    "E0007": "tests/hostile/test_outputs.py",
    "E0008": "tests/hostile/test_outputs.py",
}


def sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    return {p.split("\n", 1)[0].strip(): p for p in parts}


def exercised_codes() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "tests" / "cases").glob("*/expected.txt"):
        found.update(re.findall(r"\[([EW][0-9]{4})\]", path.read_text(encoding="utf-8")))
    for path in (ROOT / "tests").rglob("test_*.py"):
        if path.name == "test_docs.py":
            continue
        found.update(re.findall(r"\"([EW][0-9]{4})\"", path.read_text(encoding="utf-8")))
    return found


@pytest.mark.parametrize("code", sorted(CODES))
def test_code_is_documented_with_fix(code: str) -> None:
    heading = f"{code} {CODES[code].name}"
    body = sections().get(heading)
    assert body is not None, f"docs/diagnostics.md lacks a section `## {heading}`"
    assert "Fix:" in body


def test_docs_list_no_unknown_codes() -> None:
    documented = {h.split()[0] for h in sections()}
    assert documented == set(CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_code_is_exercised(code: str) -> None:
    assert code in exercised_codes(), f"no case or test produces {code}"


def asserted_codes(module: str) -> set[str]:
    """Codes written inside `assert` statements of a test module."""
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            for leaf in ast.walk(node):
                if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                    found.update(re.findall(r"[EW][0-9]{4}", leaf.value))
    return found


@pytest.mark.parametrize("code", sorted(CLI_ONLY))
def test_cli_only_code_is_asserted_where_it_is_produced(code: str) -> None:
    assert code in CODES
    assert code in asserted_codes(CLI_ONLY[code]), f"{CLI_ONLY[code]} never asserts {code}"
