"""Every diagnostic code is documented (with an example and a fix) and exercised by a test."""

from __future__ import annotations

import re

import pytest

from catalog_compiler.codes import CODES
from tests.conftest import ROOT

DOC = ROOT / "docs" / "diagnostics.md"


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
