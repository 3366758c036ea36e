"""Discovery and reading: which files count, and I/O trouble as clear exit-2 diagnostics."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from catalog_compiler.diagnostics import Sink
from catalog_compiler.load.sources import (
    MAX_FILE_BYTES,
    IgnoreRules,
    discover,
    protected_files,
    would_be_catalog_file,
)
from catalog_compiler.pipeline import validate

PROVIDER = "kind: Workspace\nslug: {slug}\n"


def rels(root: Path) -> list[str]:
    return [s.rel for s in discover(root, ".", Sink())]


def test_discovery_order_extensions_hidden_and_ignore(make_catalog: Callable[..., Path]) -> None:
    root = make_catalog(
        {
            "b/ws.yml": PROVIDER.format(slug="b"),
            "a/ws.yaml": PROVIDER.format(slug="a"),
            "a/notes.txt": "not yaml: [",
            ".hidden/x.yaml": "broken: [",
            "a/.draft.yaml": "broken: [",
            "generated/g.yaml": "broken: [",
            "drafts/keep.yaml": PROVIDER.format(slug="k"),
            "drafts/wip.yaml": "broken: [",
            ".catalogignore": "# comment\n/generated/\nwip.yaml\n",
        }
    )
    assert rels(root) == ["a/ws.yaml", "b/ws.yml", "catalog.yaml", "drafts/keep.yaml"]
    assert validate(root).ok


@pytest.mark.parametrize(
    ("rules", "path", "is_dir", "ignored"),
    [
        (["*.bak.yaml"], "x/y.bak.yaml", False, True),
        (["/top.yaml"], "sub/top.yaml", False, False),
        (["/top.yaml"], "top.yaml", False, True),
        (["vendor/"], "vendor", True, True),
        (["vendor/"], "vendor", False, False),
        (["a/b/*.yaml"], "a/b/c.yaml", False, True),
        (["a/b/*.yaml"], "x/a/b/c.yaml", False, False),
    ],
)
def test_ignore_rules(rules: list[str], path: str, is_dir: bool, ignored: bool) -> None:
    assert IgnoreRules(rules).ignored(path, is_dir) is ignored


def test_not_a_catalog_is_a_usage_error(tmp_path: Path, run_cli: Callable[..., object]) -> None:
    result = run_cli("validate", str(tmp_path))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "E0003" in result.output and "catalog.yaml" in result.output  # type: ignore[attr-defined]
    result = run_cli("validate", str(tmp_path / "missing"))
    assert result.exit_code == 2  # type: ignore[attr-defined]


def test_catalog_yaml_path_is_accepted(make_catalog: Callable[..., Path]) -> None:
    root = make_catalog({})
    assert validate(root / "catalog.yaml").ok


def test_directory_symlink_loop_is_reported_not_followed_forever(
    make_catalog: Callable[..., Path], run_cli: Callable[..., object]
) -> None:
    root = make_catalog({"sub/w.yaml": PROVIDER.format(slug="w")})
    os.symlink("..", root / "sub" / "loop")
    result = validate(root)
    assert [d.code for d in result.diagnostics] == ["E0002"]
    assert result.io_failed
    out = run_cli("validate", str(root))
    assert out.exit_code == 2 and "symbolic link loop" in out.output  # type: ignore[attr-defined]


def test_file_symlink_loop_and_broken_link(make_catalog: Callable[..., Path]) -> None:
    root = make_catalog({})
    os.symlink("self.yaml", root / "self.yaml")
    os.symlink("nowhere.yaml", root / "dangling.yaml")
    result = validate(root)
    got = sorted((d.code, d.span.file) for d in result.diagnostics)
    assert got == [("E0001", str(root / "dangling.yaml")), ("E0002", str(root / "self.yaml"))]


def test_unreadable_file_exits_2_with_a_clear_message(make_catalog: Callable[..., Path]) -> None:
    root = make_catalog({"secret.yaml": PROVIDER.format(slug="s")})
    (root / "secret.yaml").chmod(0)
    command = [sys.executable, "-m", "catalog_compiler", "validate", str(root), "--no-cache"]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that allow it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        caps = "-dac_override,-dac_read_search"
        command = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *command]
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "E0001" in proc.stdout and "Permission denied" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_a_50_mb_file_is_refused_fast(make_catalog: Callable[..., Path]) -> None:
    root = make_catalog({})
    big = root / "huge.yaml"
    with open(big, "wb") as fh:
        line = b"- padding padding padding padding padding padding padding padding\n"
        fh.write(line * (50 * 1024 * 1024 // len(line)))
    assert big.stat().st_size > MAX_FILE_BYTES
    start = time.perf_counter()
    result = validate(root)
    assert time.perf_counter() - start < 2.0
    assert [d.code for d in result.diagnostics] == ["E0104"]
    assert "MiB" in result.diagnostics[0].message


def test_empty_bom_crlf_files_are_fine(make_catalog: Callable[..., Path]) -> None:
    root = make_catalog({"empty.yaml": "", "comments.yaml": "# nothing here\n"})
    (root / "bom.yaml").write_bytes("\ufeffkind: Workspace\nslug: bom\n".encode())
    (root / "crlf.yaml").write_bytes(b"kind: Workspace\r\nslug: crlf\r\n")
    result = validate(root)
    assert result.ok and not result.diagnostics
    assert {c.model.slug for c in result.checked if c.kind == "Workspace"} == {"bom", "crlf"}  # type: ignore[attr-defined]


def test_protected_files_name_every_catalog_file_however_reached(
    make_catalog: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_catalog({"w.yaml": PROVIDER.format(slug="w"), ".catalogignore": "x/\n"})
    found = discover(root, ".", Sink())
    protected = protected_files(root, found)
    for path in (root / "catalog.yaml", root / "w.yaml", root / ".catalogignore"):
        st = path.stat()
        assert (st.st_dev, st.st_ino) in protected
    os.link(root / "w.yaml", tmp_path / "hard.json")
    st = (tmp_path / "hard.json").stat()
    assert (st.st_dev, st.st_ino) in protected  # a hard link is the same file


@pytest.mark.parametrize(
    ("rel", "inside"),
    [("new.yaml", True), ("sub/x.yml", True), (".hidden/x.yaml", False), ("x.json", False),
     ("../out.yaml", False)],
)  # fmt: skip
def test_would_be_catalog_file(tmp_path: Path, rel: str, inside: bool) -> None:
    root = tmp_path / "cat"
    root.mkdir()
    assert would_be_catalog_file(root, root / rel) is inside
