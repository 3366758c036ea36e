"""Outputs never clobber (issue 9, item 8): `compile -o` refuses a device, FIFO, socket or
directory (E0007) and any file of the catalog however it is named (E0006); `-o -` writes
exactly the bundle to standard output; a missing parent directory is created. The other
commands that write files (docs, schema, init, import) use the same guard.

Probes: 10 catalog-file targets, 7 non-regular targets, 3 standard-output runs, 2 parent
directory cases, 7 probes of the other commands (29)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from catalog_compiler.load.fsutil import OutputRefused, write_atomic
from runtime.bundle.load import Bundle
from tests.conftest import EXAMPLE, shared_data
from tests.hostile.conftest import Run, assert_sound, catalogc

Maker = Callable[[Path], Path]


@pytest.fixture
def acme(tmp_path: Path) -> Path:
    root = tmp_path / "acme"
    shutil.copytree(EXAMPLE, root)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}  # fmt: skip


def assert_refused(run: Run, code: str) -> None:
    assert_sound(run)
    assert run.returncode == 2, run.output
    assert f"error[{code}]" in run.output, run.output
    assert "nothing written" in run.stderr


def _hardlink(root: Path) -> Path:
    link = root.parent / "hard.json"
    os.link(root / "catalog.yaml", link)
    return link


def _symlink_to_catalog_yaml(root: Path) -> Path:
    link = root.parent / "bundle.json"
    link.symlink_to(root / "catalog.yaml")
    return link


def _ignore_file(root: Path) -> Path:
    (root / ".catalogignore").write_text("drafts/\n")
    return root / ".catalogignore"


CATALOG_TARGETS: dict[str, Maker] = {
    "absolute catalog.yaml": lambda root: root / "catalog.yaml",
    "a provider file": lambda root: root / "providers" / "openai.yaml",
    "through ..": lambda root: root / "providers" / ".." / "catalog.yaml",
    "symlink outside the catalog to catalog.yaml": _symlink_to_catalog_yaml,
    "hard link to catalog.yaml": _hardlink,
    ".catalogignore": _ignore_file,
    "new yaml inside the catalog": lambda root: root / "workspaces" / "bundle.yaml",
}


@pytest.mark.parametrize("make", CATALOG_TARGETS.values(), ids=list(CATALOG_TARGETS))
def test_a_catalog_file_is_never_an_output(acme: Path, make: Maker) -> None:
    target = make(acme)
    existed, was_link = target.exists(), target.is_symlink()
    content = target.read_bytes() if existed else None
    before = snapshot(acme)
    assert_refused(catalogc("compile", acme, "-o", target), "E0006")
    run = catalogc("compile", acme, "-o", target, "--format", "json")
    assert run.returncode == 2
    assert [d["code"] for d in json.loads(run.stdout)["diagnostics"]] == ["E0006"]
    assert snapshot(acme) == before
    assert target.exists() == existed and target.is_symlink() == was_link  # links stay too
    assert (target.read_bytes() if existed else None) == content


def test_relative_paths_from_inside_the_catalog(acme: Path) -> None:
    before = snapshot(acme)
    for target in ("catalog.yaml", "./providers/../catalog.yaml"):
        assert_refused(catalogc("compile", ".", "-o", target, cwd=acme), "E0006")
    # the catalog given as its catalog.yaml, the output as the same file
    assert_refused(catalogc("compile", "catalog.yaml", "-o", "catalog.yaml", cwd=acme), "E0006")
    assert snapshot(acme) == before


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.json")
    return tmp / "pipe.json"


def _socket(tmp: Path) -> Path:
    os.mknod(tmp / "s.json", stat.S_IFSOCK | 0o600)  # a socket inode (no bind, no limit)
    return tmp / "s.json"


def _device(tmp: Path, name: str, minor: int) -> Path:
    """A private node of the memory device `name` (1, minor): a compiler that wrongly
    replaced its target would replace this node, never the machine's own /dev/null."""
    node = tmp / f"{name}.json"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:  # not root: nothing to protect the real one with
        pytest.skip("creating a device node needs root")
    return node


def _link_to_dev_null(tmp: Path) -> Path:
    (tmp / "null-link.json").symlink_to(_device(tmp, "null", 3))
    return tmp / "null-link.json"


def _directory(tmp: Path) -> Path:
    (tmp / "out").mkdir()
    return tmp / "out"


NON_REGULAR: dict[str, Maker] = {
    "/dev/null": lambda tmp: _device(tmp, "null", 3),
    "/dev/zero": lambda tmp: _device(tmp, "zero", 5),
    "FIFO": _fifo,
    "socket": _socket,
    "symlink to /dev/null": _link_to_dev_null,
    "directory": _directory,
}


@pytest.mark.parametrize("make", NON_REGULAR.values(), ids=list(NON_REGULAR))
def test_a_non_regular_target_is_refused_and_left_alone(tmp_path: Path, make: Maker) -> None:
    target = make(tmp_path)
    mode = os.stat(target).st_mode
    run = catalogc("compile", EXAMPLE, "-o", target, timeout=30)  # a FIFO opened would hang
    assert_refused(run, "E0007")
    assert stat.S_IFMT(os.stat(target).st_mode) == stat.S_IFMT(mode)  # still what it was


def test_dev_stdout_names_the_dash_instead(tmp_path: Path) -> None:
    run = catalogc("compile", EXAMPLE, "-o", "/dev/stdout")  # a pipe under the test
    assert_refused(run, "E0007")
    assert "`-o -`" in run.output


def test_dash_writes_exactly_the_bundle_to_stdout(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    assert catalogc("compile", EXAMPLE, "-o", out).returncode == 0
    for fmt in ("text", "json"):
        run = catalogc("compile", EXAMPLE, "-o", "-", "--format", fmt)
        assert_sound(run)
        assert run.returncode == 0, run.stderr
        assert run.stdout.encode() == out.read_bytes()
        assert Bundle.load(run.stdout.encode()).digest in run.stderr
        assert "-> standard output" in run.stderr


def test_dash_sends_diagnostics_to_stderr(tmp_path: Path, acme: Path) -> None:
    (acme / "configs" / "stray.yaml").write_text(
        "kind: Config\nslug: stray\nworkspaces: [platform]\n"
        'config:\n  provider: "@openai-research"\n  override_params: {model: gpt-4.1}\n'
    )
    run = catalogc("compile", acme, "-o", "-", "--format", "json")
    assert run.returncode == 1 and run.stdout == ""
    assert "E0502" in json.loads(run.stderr.split("\nnothing written")[0])["diagnostics"][0]["code"]


# -- a symbolic link is written through: it stays, its target gets the output -------------------
def test_a_link_stays_and_its_target_gets_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "lk").mkdir()
    (tmp_path / "target.json").write_text("old")
    (tmp_path / "lk" / "out.json").symlink_to("../target.json")
    (tmp_path / "new.json").symlink_to("made/b.json")  # dangling: the name it points at
    for link in (tmp_path / "lk" / "out.json", tmp_path / "new.json"):
        run = catalogc("compile", EXAMPLE, "-o", link)
        assert_sound(run)
        assert run.returncode == 0, run.output
        assert link.is_symlink()
    for written in (tmp_path / "target.json", tmp_path / "made" / "b.json"):
        Bundle.load(written)
    left = sorted(p.name for p in tmp_path.rglob("*"))
    assert left == ["b.json", "lk", "made", "new.json", "out.json", "target.json"]  # no .tmp


def test_a_link_to_standard_output_writes_where_it_points(tmp_path: Path) -> None:
    """`-o /dev/stdout` with standard output a file, on a private link to /proc/self/fd/1
    (never the real /dev/stdout): the link stays, the redirected file gets the bundle."""
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    redirected = tmp_path / "redirected.json"
    with redirected.open("wb") as out:
        done = subprocess.run([sys.executable, "-m", "catalog_compiler", "compile", str(EXAMPLE),
                               "-o", str(link)], stdout=out, stderr=subprocess.PIPE, timeout=60,
                              env={**os.environ, "CATALOGC_NO_CACHE": "1", "NO_COLOR": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
    Bundle.load(redirected)
    assert_refused(catalogc("compile", EXAMPLE, "-o", link), "E0007")  # a pipe under the test
    assert os.readlink(link) == "/proc/self/fd/1"


def test_a_link_loop_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "a.json").symlink_to("b.json")
    (tmp_path / "b.json").symlink_to("a.json")
    assert_refused(catalogc("compile", EXAMPLE, "-o", tmp_path / "a.json"), "E0007")
    assert os.readlink(tmp_path / "a.json") == "b.json"


def test_a_file_no_name_reaches_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "gone.json").open("wb") as fh:
        os.unlink(tmp_path / "gone.json")
        with pytest.raises(OutputRefused) as refused:
            write_atomic(Path(f"/proc/self/fd/{fh.fileno()}"), b"{}")
    assert refused.value.code == "E0007" and list(tmp_path.iterdir()) == []


def test_a_link_to_a_new_catalog_file_is_refused(acme: Path) -> None:
    link = acme.parent / "bundle.json"
    link.symlink_to(acme / "workspaces" / "new.yaml")
    assert_refused(catalogc("compile", acme, "-o", link), "E0006")
    assert not (acme / "workspaces" / "new.yaml").exists() and link.is_symlink()


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "c" / "bundle.json"
    run = catalogc("compile", EXAMPLE, "-o", out)
    assert run.returncode == 0, run.output
    Bundle.load(out)


def test_a_parent_that_is_a_file_is_an_io_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    run = catalogc("compile", EXAMPLE, "-o", tmp_path / "f" / "bundle.json")
    assert_sound(run)
    assert run.returncode == 2 and "error[E0008]" in run.output


# -- the other commands that write files ------------------------------------------------------


def test_docs_refuses_a_non_directory_and_a_fifo_page(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path)
    run = catalogc("docs", EXAMPLE, "-o", fifo, timeout=60)
    assert_sound(run)
    assert run.returncode == 2 and "E0007" in run.stderr
    site = tmp_path / "site"
    site.mkdir()
    os.mkfifo(site / "index.html")
    run = catalogc("docs", EXAMPLE, "-o", site, timeout=60)
    assert_sound(run)
    assert run.returncode == 2 and "E0007" in run.stderr
    assert stat.S_ISFIFO(os.stat(site / "index.html").st_mode)


def test_docs_never_writes_a_page_over_the_catalog(acme: Path) -> None:
    """A page named by a link or hard link to a catalog file replaced it with HTML (the
    site's index.html -> catalog.yaml wrote the gallery into the catalog's root file)."""
    site = acme.parent / "site"
    (site / "workspaces").mkdir(parents=True)
    before = snapshot(acme)
    bundle = acme.parent / "acme.json"
    assert catalogc("compile", acme, "-o", bundle).returncode == 0
    pages = [
        (site / "index.html", lambda page: page.symlink_to(acme / "catalog.yaml")),
        (site / "workspaces" / "support.html",
         lambda page: os.link(acme / "workspaces" / "teams.yaml", page)),
        (site / "workspaces" / "research.html",  # a dangling link to a new catalog file
         lambda page: page.symlink_to(acme / "workspaces" / "new.yaml")),
        (site / "index.html", lambda page: page.symlink_to(bundle)),
    ]  # fmt: skip
    for page, make in pages:
        make(page)
        source = bundle if page.resolve() == bundle else acme
        run = catalogc("docs", source, "-o", site, timeout=60)
        assert_sound(run)
        assert run.returncode == 2 and "E0006" in run.stderr, run.output
        assert snapshot(acme) == before and Bundle.load(bundle)
        assert not (site / "workspaces" / "platform.html").exists()  # nothing half-written
        page.unlink()
    run = catalogc("docs", acme, "-o", site, timeout=60)
    assert run.returncode == 0, run.output


def test_schema_write_refuses_a_fifo_and_a_file_dir(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    out.mkdir()
    os.mkfifo(out / "bundle.schema.json")
    run = catalogc("schema", "--write", out)
    assert_sound(run)
    assert run.returncode == 2 and "E0007" in run.stderr
    (tmp_path / "plain").write_text("x")
    run = catalogc("schema", "--write", tmp_path / "plain" / "sub")
    assert_sound(run)
    assert run.returncode == 2 and "E0008" in run.stderr


def test_init_force_does_not_replace_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "catalog.yaml")
    run = catalogc("init", tmp_path, "--force", timeout=30)
    assert_sound(run)
    assert run.returncode == 2 and "E0007" in run.stderr
    assert stat.S_ISFIFO(os.stat(tmp_path / "catalog.yaml").st_mode)
    os.mkfifo(tmp_path / "pipe")  # click refuses a regular file itself; a FIFO gets here
    run = catalogc("init", tmp_path / "pipe", timeout=30)
    assert_sound(run)
    assert run.returncode == 2 and "E0007" in run.stderr


def test_import_force_never_replaces_its_own_input(tmp_path: Path) -> None:
    source = shared_data("litellm", "proxy-configs")
    config = next(iter(sorted(source.glob("*.yaml"))))
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "catalog.yaml"  # the LiteLLM config, named like the file the import writes
    shutil.copy(config, mine)
    before = mine.read_bytes()
    run = catalogc("import", "litellm-config", mine, "-o", out, "--force")
    assert_sound(run)
    assert run.returncode == 2 and "E0006" in run.stderr
    assert mine.read_bytes() == before
