"""Checking files in forked workers gives exactly the sequential answer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from benchmarks.gen_catalog import generate
from catalog_compiler.check import parallel
from catalog_compiler.pipeline import validate
from catalog_compiler.registry import builtin


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
    only_thread()
    assert parallel.usable_jobs(2, 1200) == 2
    sequential = diagnostics(root, 1)
    assert {d[3] for d in sequential} >= {"E0301", "E0207", "E0205", "E0202"}
    assert diagnostics(root, 2) == sequential


def test_parallel_results_still_give_typed_documents(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    generate(600, root)
    only_thread()
    result = validate(root, jobs=2)
    assert result.ok
    assert len(result.checked) == result.document_count == 600


def only_thread() -> None:
    """Forking is refused while another thread runs, by design. A thread an earlier test
    left winding down (it flaked once under load: the parallel check ran sequentially and
    `usable_jobs` said 1) gets a few seconds to end; one that stays (a session fixture's)
    skips the test."""
    deadline = time.monotonic() + 5
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    if threading.active_count() > 1:
        pytest.skip("another test left a thread running; the check will not fork")


def test_warm_worker_checks_the_changed_files_exactly_as_here(tmp_path: Path) -> None:
    from catalog_compiler.check.cache import ParseCache

    root = tmp_path / "cat"
    generate(300, root)
    cache = ParseCache(tmp_path / "cache", root)
    assert validate(root, cache=cache).ok
    cache.save()
    target = root / "providers" / "prov-3.yaml"
    target.write_text(target.read_text().replace("integration: int-3", "integration: int-x"))
    expected = diagnostics(root, 1)
    assert any(d[3] == "E0301" for d in expected)
    only_thread()
    warm = parallel.WarmWorker(builtin())
    assert warm.pid > 0
    result = validate(root, cache=ParseCache(tmp_path / "cache", root), warm=warm)
    assert warm.pid == 0  # used: the worker was collected
    got = [(d.span.file, d.span.line, d.span.column, d.code, d.message) for d in result.diagnostics]
    assert got == expected


def test_an_unused_warm_worker_is_killed_and_reaped(tmp_path: Path) -> None:
    import os

    only_thread()
    warm = parallel.WarmWorker(builtin())
    pid = warm.pid
    assert pid > 0
    warm.stop()
    warm.stop()  # idempotent
    assert warm.pid == 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"worker {pid} still exists (not reaped)")


def test_a_dead_warm_worker_means_checking_here(tmp_path: Path) -> None:
    import os
    import signal

    root = tmp_path / "cat"
    generate(60, root)
    expected = diagnostics(root, 1)
    only_thread()
    warm = parallel.WarmWorker(builtin())
    os.kill(warm.pid, signal.SIGKILL)
    result = validate(root, warm=warm)
    got = [(d.span.file, d.span.line, d.span.column, d.code, d.message) for d in result.diagnostics]
    assert got == expected and result.ok
