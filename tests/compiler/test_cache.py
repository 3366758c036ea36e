"""The content-hash cache: same answers as a cold run, and a changed file is always re-read."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from catalog_compiler.check.cache import ParseCache
from catalog_compiler.pipeline import validate
from tests.conftest import EXAMPLE


def copy_example(tmp_path: Path) -> Path:
    root = tmp_path / "acme"
    shutil.copytree(EXAMPLE, root)
    return root


def run(root: Path, cache_dir: Path | None) -> list[tuple[str, int, int, str, str]]:
    cache = ParseCache(cache_dir, root) if cache_dir is not None else None
    result = validate(root, cache=cache)
    if cache is not None:
        cache.save()
    return [
        (d.span.file, d.span.line, d.span.column, d.code, d.message) for d in result.diagnostics
    ]


def test_cached_runs_match_cold_runs(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    path = root / "providers" / "openai.yaml"
    path.write_text(
        path.read_text().replace("integration: openai-main", "integration: opnai-main", 1)
    )
    cold = run(root, None)
    assert [c[3] for c in cold] == ["E0301"]
    cache_dir = tmp_path / "cache"
    assert run(root, cache_dir) == cold  # filling the cache
    assert run(root, cache_dir) == cold  # served from it


def test_an_edit_with_same_size_and_mtime_is_still_seen(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    cache_dir = tmp_path / "cache"
    assert run(root, cache_dir) == []
    path = root / "workspaces" / "teams.yaml"
    stat = path.stat()
    text = path.read_text()
    edited = text.replace("slug: support\n", "slug: suppor_\n", 1)
    assert len(edited) == len(text)
    path.write_text(edited)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a tool that keeps mtimes
    codes = [c[3] for c in run(root, cache_dir)]
    assert "E0207" in codes  # the invalid slug is found: content is hashed, not stat()ed


def test_corrupt_or_foreign_cache_is_ignored(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    cache_dir = tmp_path / "cache"
    run(root, cache_dir)
    shards = list(cache_dir.rglob("*.pickle"))
    assert shards
    for shard in shards:
        shard.write_bytes(b"\x80\x05not a pickle at all")
    assert run(root, cache_dir) == []


def test_cached_result_can_still_produce_typed_documents(tmp_path: Path) -> None:
    root = copy_example(tmp_path)
    cache = ParseCache(tmp_path / "cache", root)
    validate(root, cache=cache)
    cache.save()
    warm = ParseCache(tmp_path / "cache", root)
    result = validate(root, cache=warm)
    assert all(fr._loaded is None for fr in result.files)  # nothing was parsed
    kinds = sorted({c.kind for c in result.checked})
    assert kinds == ["Config", "Integration", "Model", "Organization", "Provider", "Workspace"]


def test_memory_cache_for_long_lived_processes(make_catalog: Callable[..., Path]) -> None:
    root = make_catalog({"w.yaml": "kind: Workspace\nslug: a\n"})
    cache = ParseCache(None, root)
    assert validate(root, cache=cache).ok
    cache.save()
    (root / "w.yaml").write_text("kind: Workspace\nslug: A\n")
    assert [d.code for d in validate(root, cache=cache).diagnostics] == ["E0207"]
