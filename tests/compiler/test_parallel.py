"""Checking files in forked workers gives exactly the sequential answer."""

from __future__ import annotations

from pathlib import Path

from benchmarks.gen_catalog import generate
from catalog_compiler import parallel
from catalog_compiler.pipeline import validate


def diagnostics(root: Path, jobs: int) -> list[tuple[str, int, int, str, str]]:
    result = validate(root, jobs=jobs)
    return [
        (d.span.file, d.span.line, d.span.column, d.code, d.message) for d in result.diagnostics
    ]


def test_parallel_matches_sequential_including_errors(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    generate(1200, root)
    for rel, old, new in [
        ("providers/prov-3.yaml", "integration: int-3", "integration: int-x"),
        ("workspaces/ws-10.yaml", "slug: ws-10", "slug: WS_10"),
        ("configs/cfg-5.yaml", "mode: fallback", "mode: fallbak"),
        ("models/m-9.yaml", "integration:", "integraton:"),
    ]:
        path = root / rel
        path.write_text(path.read_text().replace(old, new, 1))
    assert parallel.usable_jobs(2, 1200) == 2
    sequential = diagnostics(root, 1)
    assert {d[3] for d in sequential} >= {"E0301", "E0207", "E0205", "E0202"}
    assert diagnostics(root, 2) == sequential


def test_parallel_results_still_give_typed_documents(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    generate(600, root)
    result = validate(root, jobs=2)
    assert result.ok
    assert len(result.checked) == result.document_count == 600
