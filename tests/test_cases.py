"""Golden cases: each tests/cases/<name>/ holds a broken catalog (`catalog/`) and the exact
diagnostics it must produce (`expected.txt`: `file:line:col: severity[CODE]`, sorted).
A case may also hold `expected.out`, the exact text rendering, and `special.json`: the
symbolic links, FIFOs and sockets git cannot (or should not) hold, made in a copy of the
catalog at run time: `{"rel/path": {"symlink": "target"} | {"fifo": true} | {"socket": true}
| {"sparse": size}}` (a sparse file of `size` bytes: huge on paper, nothing on disk).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from catalog_compiler.compiler import compile_catalog
from catalog_compiler.diagnostics.report.base import Summary
from catalog_compiler.diagnostics.report.text import TextReporter

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if (p / "expected.txt").exists())


SPECIAL = "special.json"


def materialize(case: Path, tmp_path: Path) -> Path:
    """The case's catalog directory; with special.json, a copy holding the special files."""
    spec = case / SPECIAL
    if not spec.exists():
        return case / "catalog"
    copy = tmp_path / "catalog"
    shutil.copytree(case / "catalog", copy, symlinks=True)
    for rel, what in json.loads(spec.read_text(encoding="utf-8")).items():
        path = copy / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if "symlink" in what:
            os.symlink(what["symlink"], path)
        elif what.get("fifo"):
            os.mkfifo(path)
        elif what.get("socket"):
            os.mknod(path, stat.S_IFSOCK | 0o600)  # a socket inode, no bind: no path limit
        elif "sparse" in what:
            with open(path, "wb") as fh:
                fh.truncate(what["sparse"])
        else:
            raise ValueError(f"{spec}: unknown special file {what}")
    return copy


def render_positions(catalog: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    monkeypatch.chdir(catalog)
    compiled = compile_catalog(".")  # every check, as `catalogc validate` runs them
    result = compiled.validation
    lines = [f"{d.span}: {d.severity.value}[{d.code}]" for d in compiled.diagnostics]
    out = io.StringIO()
    sources = {s.display: s.raw for s in result.sources}
    TextReporter(out).report(
        compiled.diagnostics, Summary(len(result.sources), result.document_count, sources=sources)
    )
    return lines, out.getvalue()


def expected_lines(case: Path) -> list[str]:
    text = (case / "expected.txt").read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_case(case: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    got, text = render_positions(materialize(case, tmp_path), monkeypatch)
    assert got == expected_lines(case)
    golden = case / "expected.out"
    if golden.exists():
        assert text == golden.read_text(encoding="utf-8")
