"""Only the catalog's own files are read (issue 9, item 1).

Every probe builds a small catalog holding one file-system special, runs `catalogc validate`
in a real process, and asserts: the planned exit code, a diagnostic
naming the path, no traceback, no hang (timeout) and nothing of the target's content in any
output. The targets carry markers (and the process environment a fake secret) so that a
read would show.

Probes: 9 links leading out (file, directory, catalog.yaml, .catalogignore, relative,
dangling, /proc, /dev/zero, /etc/passwd) and 2 more committed in a git revision (`diff
--git`); 7 special files (FIFO as a file, as catalog.yaml, as .catalogignore, socket,
character device, link to an in-catalog FIFO, unreadable file); 3 sizes (9 MiB, sparse
20 GiB, a 1 MB line); 4 races (swapped for a FIFO after the walk and between stat and open,
swapped for a link out, growing past the limit); 1 kernel file under a /proc root; 3 paths
the text reporter must not re-read: 29. Each runs in text; all at once in every format.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from catalog_compiler.diagnostics import Sink, Span
from catalog_compiler.diagnostics.report.base import Summary
from catalog_compiler.diagnostics.report.text import TextReporter
from catalog_compiler.load import sources
from catalog_compiler.load.sources import MAX_FILE_BYTES, Confinement, discover, read_catalog_file
from tests.hostile.conftest import FAKE_SECRETS, Run, assert_sound, catalogc

ORG = "kind: Organization\nversion: 1\nname: Probe Org\n"
MARKER = "OUTSIDE-MARKER-7f3a"  # in every file outside the catalog; never in any output
SECRET_ENV = {"PROBE_API_KEY": FAKE_SECRETS[0]}  # what /proc/self/environ would show
FORMATS = ("text", "json", "github", "sarif")

Setup = Callable[[Path, Path], str]  # (catalog, outside) -> the path the diagnostic names


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog.yaml").write_text(ORG)
    outside = tmp_path / "sibling"  # a sibling temporary directory: not the catalog
    outside.mkdir()
    # broken YAML with the marker: if it were read, its line would be echoed in an E0100
    (outside / "secret.yaml").write_text(f"key: [{MARKER} {FAKE_SECRETS[1]}\n")
    (outside / "dir").mkdir()
    (outside / "dir" / "w.yaml").write_text(f"kind: Workspace\nslug: [{MARKER}\n")
    return catalog, outside


def run_formats(catalog: Path, formats: tuple[str, ...] = FORMATS) -> Iterator[Run]:
    for fmt in formats:
        yield catalogc("validate", catalog, "--format", fmt, env=SECRET_ENV, timeout=30)


def assert_refused(
    catalog: Path, named: str, code: str, formats: tuple[str, ...] = ("text",)
) -> None:
    for run in run_formats(catalog, formats):
        assert_sound(run, secrets=FAKE_SECRETS)
        assert run.returncode == 2, run.output
        assert code in run.output, run.output
        assert named in run.output, run.output  # located: the path itself is named
        assert MARKER not in run.output
        assert "root:x:0:0" not in run.output  # /etc/passwd
        assert "PATH=" not in run.output and "HOME=" not in run.output  # an environment


def _link(name: str, target: Callable[[Path], str | Path]) -> Setup:
    def setup(catalog: Path, outside: Path) -> str:
        path = catalog / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()
        path.symlink_to(target(outside))
        return name

    return setup


LINKS_OUT: dict[str, Setup] = {
    "/proc/self/environ": _link("env.yaml", lambda o: "/proc/self/environ"),
    "/etc/passwd": _link("passwd.yaml", lambda o: "/etc/passwd"),
    "/dev/zero": _link("zero.yaml", lambda o: "/dev/zero"),
    "file in a sibling dir": _link("providers.yaml", lambda o: o / "secret.yaml"),
    "relative, climbing out": _link("sub/p.yaml", lambda o: "../../sibling/secret.yaml"),
    "directory outside": _link("shared", lambda o: o / "dir"),
    "dangling, outside": _link("gone.yaml", lambda o: o / "missing.yaml"),
    "catalog.yaml itself": _link("catalog.yaml", lambda o: o / "secret.yaml"),
    ".catalogignore": _link(".catalogignore", lambda o: o / "secret.yaml"),
}


@pytest.mark.parametrize("setup", LINKS_OUT.values(), ids=list(LINKS_OUT))
def test_a_link_leading_out_is_named_never_read(places: tuple[Path, Path], setup: Setup) -> None:
    catalog, outside = places
    named = setup(catalog, outside)
    assert_refused(catalog, named, "E0004")


def test_links_inside_the_catalog_keep_working(places: tuple[Path, Path]) -> None:
    catalog, _ = places
    (catalog / ".real").mkdir()
    (catalog / ".real" / "w.yaml").write_text("kind: Workspace\nslug: w\nname: W\n")
    (catalog / "workspaces").symlink_to(".real")  # a directory link inside
    (catalog / "org.yaml").symlink_to(".real/w.yaml")  # and a file link inside: read twice
    run = catalogc("validate", catalog)
    assert_sound(run)
    assert run.returncode == 1 and "E0300" in run.output  # duplicate slug: both were read


def _fifo(name: str) -> Setup:
    def setup(catalog: Path, outside: Path) -> str:
        path = catalog / name
        if path.exists():
            path.unlink()
        os.mkfifo(path)
        return name

    return setup


def _socket(catalog: Path, outside: Path) -> str:
    os.mknod(catalog / "s.yaml", stat.S_IFSOCK | 0o600)  # a socket inode (no bind, no limit)
    return "s.yaml"


def _char_device(catalog: Path, outside: Path) -> str:
    try:  # the same device as /dev/zero, made inside the catalog
        os.mknod(catalog / "dev.yaml", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    return "dev.yaml"


def _link_to_inside_fifo(catalog: Path, outside: Path) -> str:
    os.mkfifo(catalog / ".pipe")
    (catalog / "p.yaml").symlink_to(".pipe")
    return "p.yaml"


SPECIALS: dict[str, Setup] = {
    "FIFO": _fifo("pipe.yaml"),
    "FIFO as catalog.yaml": _fifo("catalog.yaml"),
    "FIFO as .catalogignore": _fifo(".catalogignore"),
    "socket": _socket,
    "character device (/dev/zero's)": _char_device,
    "link to a FIFO inside": _link_to_inside_fifo,
}


@pytest.mark.parametrize("setup", SPECIALS.values(), ids=list(SPECIALS))
def test_a_special_file_is_never_opened(places: tuple[Path, Path], setup: Setup) -> None:
    catalog, outside = places
    named = setup(catalog, outside)
    assert_refused(catalog, named, "E0005")  # a FIFO opened for reading would hang: timeout


def test_an_unreadable_file_is_an_io_error(places: tuple[Path, Path]) -> None:
    catalog, _ = places
    path = catalog / "locked.yaml"
    path.write_text(f"kind: Workspace\nslug: [{MARKER}\n")
    path.chmod(0)
    command = [sys.executable, "-m", "catalog_compiler", "validate", str(catalog), "--no-cache"]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that allow it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv")
        caps = "-dac_override,-dac_read_search"
        command = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *command]
    for fmt in FORMATS:
        proc = subprocess.run([*command, "--format", fmt], capture_output=True, text=True,
                              timeout=30, check=False,
                              env={**os.environ, "NO_COLOR": "1"})  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, out
        assert "E0001" in out and "locked.yaml" in out and MARKER not in out
        assert "Traceback" not in out


def test_files_over_the_limit_are_refused_from_their_size(places: tuple[Path, Path]) -> None:
    catalog, _ = places
    line = f"- {MARKER} padding padding padding\n".encode()
    with open(catalog / "big.yaml", "wb") as fh:
        fh.write(line * (9 * 1024 * 1024 // len(line) + 1))  # 9 MiB
    with open(catalog / "sparse.yaml", "wb") as fh:
        fh.truncate(20 * 1024**3)  # 20 GiB on paper, nothing on disk
    for run in run_formats(catalog):
        assert_sound(run)
        assert run.returncode == 1  # too large is a catalog problem (E01xx), as before
        assert run.output.count("E0104") >= 2 or run.output.count("file-too-large") >= 2
        assert "big.yaml" in run.output and "sparse.yaml" in run.output
        assert MARKER not in run.output


def test_a_one_megabyte_line_is_not_echoed_whole(places: tuple[Path, Path]) -> None:
    catalog, _ = places
    (catalog / "long.yaml").write_text("kind: Workspace\nslug: s\nname: " + "x" * 1_000_000
                                       + "\nconcurency: 1\nbogus: [" + "y" * 1_000_000 + "\n")  # fmt: skip
    run = catalogc("validate", catalog, env=SECRET_ENV)
    assert_sound(run)
    assert run.returncode == 1
    assert len(run.output) < 5_000, len(run.output)
    assert "…" in run.output  # the excerpt says it is one


def test_every_probe_at_once_in_every_format(places: tuple[Path, Path]) -> None:
    """All links and specials in one catalog, each output format: nothing leaks anywhere."""
    catalog, outside = places
    probes = {**LINKS_OUT, **SPECIALS}
    named = {}
    for label, setup in probes.items():
        if label in ("catalog.yaml itself", ".catalogignore", "FIFO as catalog.yaml",
                     "FIFO as .catalogignore"):  # fmt: skip
            continue
        named[setup(catalog, outside)] = "E0005" if label in SPECIALS else "E0004"
    for run in run_formats(catalog):
        assert_sound(run, secrets=FAKE_SECRETS)
        assert run.returncode == 2
        for name, code in named.items():
            assert name in run.output and code in run.output
        assert MARKER not in run.output and "root:x:0:0" not in run.output
        assert "PATH=" not in run.output and "HOME=" not in run.output


# -- races, provoked in-process: the file changes after it was found --------------------------


@pytest.fixture
def alarm() -> Iterator[None]:
    """A hang (an open FIFO without O_NONBLOCK) fails the test instead of stalling it."""

    def fail(*_: object) -> None:
        raise TimeoutError("discovery blocked")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def swap_after_walk(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    """Run `swap` between discovery's walk (the file is listed) and the reads."""
    walk_all = sources._Walker.walk_all

    def walk_then_swap(self: sources._Walker, root: Path) -> None:
        walk_all(self, root)
        swap()

    monkeypatch.setattr(sources._Walker, "walk_all", walk_then_swap)


def test_a_file_swapped_for_a_fifo_after_discovery(
    places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, alarm: None
) -> None:
    catalog, _ = places
    path = catalog / "w.yaml"
    path.write_text("kind: Workspace\nslug: w\nname: W\n")

    def swap() -> None:
        path.unlink()
        os.mkfifo(path)

    swap_after_walk(monkeypatch, swap)
    sink = Sink()
    found = discover(catalog, ".", sink)
    assert [s.rel for s in found] == ["catalog.yaml"]
    assert [(d.code, d.span.file) for d in sink] == [("E0005", "w.yaml")]


def test_a_file_swapped_for_a_fifo_between_stat_and_open(
    places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, alarm: None
) -> None:
    catalog, _ = places
    path = catalog / "w.yaml"
    path.write_text("kind: Workspace\nslug: w\nname: W\n")
    real_open = os.open

    def open_after_swap(name: str, flags: int, *args: int) -> int:
        if name == str(path):  # the narrowest window: the type was checked, then this
            path.unlink()
            os.mkfifo(path)
        return real_open(name, flags, *args)

    monkeypatch.setattr(sources.os, "open", open_after_swap)
    sink = Sink()
    assert read_catalog_file(str(path), "w.yaml", Confinement(catalog), sink) is None
    assert [d.code for d in sink] == ["E0005"]


def test_a_file_swapped_for_a_link_out_between_stat_and_open(
    places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, outside = places
    path = catalog / "w.yaml"
    path.write_text("kind: Workspace\nslug: w\nname: W\n")
    real_open = os.open

    def open_after_swap(name: str, flags: int, *args: int) -> int:
        if name == str(path):
            path.unlink()
            path.symlink_to(outside / "secret.yaml")
        return real_open(name, flags, *args)

    monkeypatch.setattr(sources.os, "open", open_after_swap)
    sink = Sink()
    assert read_catalog_file(str(path), "w.yaml", Confinement(catalog), sink) is None
    assert [d.code for d in sink] == ["E0005"]  # O_NOFOLLOW: the link is not followed


def test_a_file_growing_past_the_limit_is_read_only_up_to_it(tmp_path: Path) -> None:
    # what stat says is not trusted: a /proc file says 0 bytes; this one grows after stat
    path = tmp_path / "grows.yaml"
    path.write_text("a: 1\n")
    real_fstat = os.fstat
    grown = []

    def fstat_then_grow(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        if not grown:
            grown.append(True)
            with open(path, "ab") as fh:
                fh.truncate(MAX_FILE_BYTES + 10)
        return result

    sink = Sink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources.os, "fstat", fstat_then_grow)
        assert read_catalog_file(str(path), "grows.yaml", Confinement(tmp_path), sink) is None
    assert [d.code for d in sink] == ["E0104"] and "grew" in next(iter(sink)).message


def test_kernel_files_are_never_opened_even_inside_the_root() -> None:
    # a catalog rooted in /proc (or a bind mount of it) still never reads it
    sink = Sink()
    read = read_catalog_file("/proc/self/environ", "environ", Confinement(Path("/proc")), sink)
    assert read is None and [d.code for d in sink] == ["E0005"]


def test_the_text_reporter_never_reads_a_path_itself(tmp_path: Path) -> None:
    """Source lines come from the bytes discovery read; a diagnostic naming any other path
    (the environment, a file outside) shows no line at all."""
    outside = tmp_path / "secret.yaml"
    outside.write_text(f"{MARKER}: {FAKE_SECRETS[0]}\n")
    sink = Sink()
    for path in ("/proc/self/environ", "/etc/passwd", str(outside)):
        sink.emit("E0100", "probe", Span(path, 1, 1, 1, 2))
    sink.emit("E0100", "probe", Span("mine.yaml", 1, 3, 1, 4))
    out = io.StringIO()
    TextReporter(out).report(list(sink), Summary(1, 1, sources={"mine.yaml": b"a: [\n"}))
    text = out.getvalue()
    assert MARKER not in text and FAKE_SECRETS[0] not in text and "root:x" not in text
    assert "1 | a: [" in text  # the one file discovery read is shown


def test_diff_of_a_git_revision_holding_links_out(tmp_path: Path) -> None:
    """`diff --git` reads revisions through `git archive`: a committed link to /proc or out
    of the tree is recreated as a link in the checkout (never written through) and reported
    like in a work tree, not an internal error."""
    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "acme", repo / "cat")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    (repo / "cat" / "env.yaml").symlink_to("/proc/self/environ")
    (repo / "cat" / "up.yaml").symlink_to("../../sibling/secret.yaml")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "links"], check=True)
    run = catalogc("diff", "--git", "HEAD~1..HEAD", repo / "cat", env=SECRET_ENV)
    assert_sound(run, secrets=FAKE_SECRETS)
    assert run.returncode == 2
    assert "env.yaml" in run.output and "up.yaml" in run.output and "E0004" in run.output
    assert "PATH=" not in run.output
