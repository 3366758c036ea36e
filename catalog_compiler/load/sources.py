"""Discovery: which files make up a catalog, read once with their content hash.

Every `*.yaml`/`*.yml` below the directory holding `catalog.yaml`, except hidden files and
directories and what `.catalogignore` lists. Only the catalog's own files are ever read:

- a symbolic link (to a file or a directory) is followed only while its target stays inside
  the catalog directory; one leading out is reported by name (E0004), never opened;
- only regular files are opened: a FIFO, socket or device, or anything under /proc or /sys,
  is reported (E0005) without being opened, so it can neither block nor trigger a driver;
- a file is read with a bound whatever `stat` says (/proc files claim size 0, a file may
  grow while read), so nothing makes discovery hang or eat memory.

Directory links are followed once; a loop is an I/O diagnostic (exit 2), never a hang.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import pathspec

from catalog_compiler.diagnostics import Sink, Span
from catalog_compiler.load.fsutil import FileId, describe, read_fd

CATALOG_FILE = "catalog.yaml"
IGNORE_FILE = ".catalogignore"
EXTENSIONS = (".yaml", ".yml")
MAX_FILE_BYTES = 8 * 1024 * 1024
_PSEUDO_FS = ("/proc", "/sys")  # files there are not data: reading them may leak or block
_OPEN_FLAGS = (
    os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
)


class Source(NamedTuple):
    rel: str  # posix path relative to the catalog root: the identity of the file
    display: str  # how diagnostics name it: the root as the user wrote it, then `rel`
    path: str
    raw: bytes
    sha256: str
    ident: FileId = (0, 0)


class IgnoreRules:
    """`.catalogignore` means what `.gitignore` means (pathspec's gitwildmatch, as git
    applies it): `*` and `?` do not cross `/`, `**` does, a leading or inner `/` anchors a
    pattern to the catalog root, a trailing `/` matches directories only, `!` re-includes
    what an earlier line excluded (not below an excluded directory: as in git, it is never
    entered), `#` starts a comment, `\\` escapes. The last matching line decides."""

    def __init__(self, lines: list[str], display: str = IGNORE_FILE, sink: Sink | None = None):
        valid: list[str] = []
        for number, line in enumerate(lines[:MAX_IGNORE_LINES], 1):
            problem = _ignore_problem(line)
            if problem is None:
                valid.append(line)
            elif sink is not None:
                width = min(len(line), MAX_IGNORE_PATTERN) + 1
                sink.emit(
                    "E0110",
                    f"`{line}` is not an ignore pattern: {problem}",
                    Span(display, number, 1, number, width),
                    help="write it as in .gitignore; `\\` escapes a special character",
                )
        if len(lines) > MAX_IGNORE_LINES and sink is not None:
            last = MAX_IGNORE_LINES + 1
            sink.emit(
                "E0110",
                f"more than {MAX_IGNORE_LINES:,} lines: the rest are not read",
                Span(display, last, 1, last, 1),
            )
        self.spec = pathspec.GitIgnoreSpec.from_lines(valid)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        return bool(self.spec.match_file(f"{rel}/" if is_dir else rel))


MAX_IGNORE_LINES = 10_000
MAX_IGNORE_PATTERN = 1_024


def _ignore_problem(line: str) -> str | None:
    if len(line) > MAX_IGNORE_PATTERN:
        return f"longer than {MAX_IGNORE_PATTERN:,} characters"
    try:
        pathspec.GitIgnoreSpec.from_lines([line])
    except ValueError:  # pathspec's pattern errors are ValueErrors
        if line.strip() == "!":
            return "a `!` needs the pattern it re-includes after it"
        if line.rstrip().endswith("\\"):
            return "it ends in an unfinished `\\` escape"
        return "it is not gitignore syntax"
    return None


def _display(root_display: str, rel: str) -> str:
    if root_display in ("", "."):
        return rel
    return f"{root_display.rstrip('/')}/{rel}"


def _io_error(sink: Sink, display: str, exc: OSError) -> None:
    if exc.errno == errno.ELOOP:
        sink.emit("E0002", f"symbolic link loop at `{display}`", Span(display),
                  help="remove the link or point it outside the catalog")  # fmt: skip
    else:
        reason = exc.strerror or type(exc).__name__
        sink.emit("E0001", f"cannot read `{display}`: {reason}", Span(display))


class Confinement:
    """The catalog directory, resolved: what may be read is below it."""

    def __init__(self, root: Path) -> None:
        self.real = os.path.realpath(root)
        self._prefix = self.real.rstrip(os.sep) + os.sep

    def contains(self, real: str) -> bool:
        return real == self.real or real.startswith(self._prefix)

    def resolve(self, path: str, display: str, sink: Sink) -> str | None:
        """The real path of `path` when it may be read; otherwise a diagnostic and None."""
        real = os.path.realpath(path)  # first where it leads, whether it exists or not:
        if not self.contains(real):  # nothing outside is probed, not even its existence
            _escapes(sink, path, display)
            return None
        if any(real == fs or real.startswith(fs + os.sep) for fs in _PSEUDO_FS):
            _special(sink, display, f"a file of the kernel's {real.split(os.sep)[1]} tree")
            return None
        try:
            real = os.path.realpath(path, strict=True)
        except OSError as exc:
            _io_error(sink, display, exc)
            return None
        if not self.contains(real):  # changed in between
            _escapes(sink, path, display)
            return None
        return real


def _escapes(sink: Sink, path: str, display: str) -> None:
    try:  # the link text helps find the mistake; the target is never opened
        shown = f" (-> `{os.readlink(path)[:200]}`)"
    except OSError:  # an intermediate directory link leads out, not this entry
        shown = ""
    sink.emit(
        "E0004",
        f"`{display}` leads outside the catalog directory{shown}: catalogc reads only the "
        "catalog's own files",
        Span(display),
        help="copy the file into the catalog, point the link inside it, or list it in "
        ".catalogignore",
    )


def _special(sink: Sink, display: str, what: str) -> None:
    sink.emit(
        "E0005",
        f"`{display}` is {what}, not a regular file: it is not read",
        Span(display),
        help="catalog files must be regular files: remove it or list it in .catalogignore",
    )


def _too_large(sink: Sink, display: str, size: int | None) -> None:
    shown = f"is {size / 1048576:.1f} MiB" if size is not None else "grew while being read"
    sink.emit(
        "E0104",
        f"`{display}` {shown}; catalog files are limited to {MAX_FILE_BYTES // 1048576} MiB",
        Span(display),
        help="split it into several files",
    )


def read_catalog_file(
    path: str, display: str, confinement: Confinement, sink: Sink, real: str | None = None
) -> tuple[bytes, FileId] | None:
    """The bytes of one catalog file, or a diagnostic (never a hang, never a foreign file).

    `real` is the file's real path when the walk knows it (a plain entry of a directory it
    resolved): then no path is resolved again. The type is checked before opening (a
    device's open may have side effects) and again on the open descriptor (the file may be
    swapped in between; it is opened without following a link)."""
    if real is None or not confinement.contains(real):
        real = confinement.resolve(path, display, sink)
    if real is None:
        return None
    try:
        before = os.stat(real)
        if not stat.S_ISREG(before.st_mode):
            _special(sink, display, describe(before.st_mode))
            return None
        if before.st_size > MAX_FILE_BYTES:
            _too_large(sink, display, before.st_size)
            return None
        fd = os.open(real, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW: it became a link after it was resolved
            _special(sink, display, "a file that was replaced while being read")
        else:
            _io_error(sink, display, exc)
        return None
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (
            before.st_dev,
            before.st_ino,
        ):
            _special(sink, display, "a file that was replaced while being read")
            return None
        raw = read_fd(fd, MAX_FILE_BYTES)
    except OSError as exc:
        _io_error(sink, display, exc)
        return None
    finally:
        os.close(fd)
    if raw is None:
        _too_large(sink, display, None)
        return None
    return raw, (now.st_dev, now.st_ino)


def find_root(start: Path, sink: Sink) -> Path | None:
    """The catalog directory: `start` itself, or the parent of a given catalog.yaml."""
    if start.name == CATALOG_FILE and not start.is_dir():
        start = start.parent
    if not start.exists():
        sink.emit("E0001", f"no such directory `{start}`", Span(str(start)))
        return None
    # lexists: a catalog.yaml that is a link or a special file is reported by discovery
    if not os.path.lexists(start / CATALOG_FILE):
        sink.emit(
            "E0003",
            f"`{start}` is not a catalog: it has no {CATALOG_FILE}",
            Span(str(start)),
            help="run `catalogc init` to create one, or point at the catalog directory",
        )
        return None
    return start


def discover(root: Path, root_display: str, sink: Sink) -> list[Source]:
    """Every catalog file below `root`, read, in a stable order."""
    confinement = Confinement(root)
    rules = IgnoreRules(
        _read_ignore(root, root_display, confinement, sink),
        _display(root_display, IGNORE_FILE),
        sink,
    )
    files: list[tuple[str, str, str | None]] = []
    walker = _Walker(rules, confinement, root_display, sink, files)
    walker.walk_all(root)
    sources = []
    for rel, path, real in sorted(files, key=lambda f: f[0]):
        display = _display(root_display, rel)
        source = read_source(path, rel, display, sink, confinement, real)
        if source is not None:
            sources.append(source)
    return sources


def _read_ignore(root: Path, root_display: str, confinement: Confinement, sink: Sink) -> list[str]:
    path = root / IGNORE_FILE
    if not os.path.lexists(path):
        return []
    read = read_catalog_file(str(path), _display(root_display, IGNORE_FILE), confinement, sink)
    if read is None:
        return []
    return read[0].decode("utf-8", errors="replace").splitlines()


class _Walker:
    def __init__(
        self,
        rules: IgnoreRules,
        confinement: Confinement,
        root_display: str,
        sink: Sink,
        out: list[tuple[str, str, str | None]],  # (rel, path, real path if known)
    ) -> None:
        self.rules = rules
        self.confinement = confinement
        self.root_display = root_display
        self.sink = sink
        self.out = out
        self.visited: set[str] = set()
        self.links: list[tuple[Path, str]] = []  # directory links, walked after real dirs

    def walk_all(self, root: Path) -> None:
        """The real directories first, then directory links: a link to a directory already
        read is what gets reported, never the directory itself."""
        self.walk(root, "")
        while self.links:
            path, rel = self.links.pop(0)
            self.walk(path, rel)

    def walk(self, directory: Path, rel_dir: str) -> None:
        display = _display(self.root_display, rel_dir or ".")
        real = self.confinement.resolve(str(directory), display, self.sink)
        if real is None:
            return
        if real in self.visited:
            self.sink.emit(
                "E0002",
                f"symbolic link loop or second path: `{display}` leads to a directory already read",
                Span(display),
                help="remove the link or add it to .catalogignore",
            )
            return
        self.visited.add(real)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            _io_error(self.sink, display, exc)
            return
        for entry in entries:
            if not entry.name.startswith("."):
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                self.entry(entry, rel, real)

    def entry(self, entry: os.DirEntry[str], rel: str, real_dir: str) -> None:
        try:
            is_dir = entry.is_dir()  # follows symlinks; only stat, nothing is opened
        except OSError as exc:
            _io_error(self.sink, _display(self.root_display, rel), exc)
            return
        if self.rules.ignored(rel, is_dir):
            return
        if is_dir and entry.is_symlink():
            self.links.append((Path(entry.path), rel))
        elif is_dir:
            self.walk(Path(entry.path), rel)
        elif entry.name.endswith(EXTENSIONS):
            # a plain entry of a resolved directory: its real path needs no resolving
            real = None if entry.is_symlink() else os.path.join(real_dir, entry.name)
            self.out.append((rel, entry.path, real))


def read_source(
    path: str,
    rel: str,
    display: str,
    sink: Sink,
    confinement: Confinement,
    real: str | None = None,
) -> Source | None:
    read = read_catalog_file(path, display, confinement, sink, real)
    if read is None:
        return None
    raw, ident = read
    return Source(rel, display, path, raw, hashlib.sha256(raw).hexdigest(), ident)


def protected_files(root: Path, sources: Iterable[Source]) -> frozenset[FileId]:
    """The files an output must never replace: every catalog file, `catalog.yaml` and
    `.catalogignore` included, however they are named (links, relative or absolute paths)."""
    found = {s.ident for s in sources if s.ident != (0, 0)}
    for name in (CATALOG_FILE, IGNORE_FILE):
        for follow in (True, False):
            try:
                st = os.stat(root / name, follow_symlinks=follow)
            except OSError:
                continue
            found.add((st.st_dev, st.st_ino))
    return frozenset(found)


def would_be_catalog_file(root: Path, path: Path) -> bool:
    """Whether a file written at `path` would be read as part of the catalog next time
    (a write follows links: `out.json` -> `catalog/new.yaml` writes a catalog file)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if not (path.name.endswith(EXTENSIONS) or real.endswith(EXTENSIONS)):
        return False
    rel = os.path.relpath(real, real_root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return False
    return not any(part.startswith(".") for part in Path(rel).parts)
