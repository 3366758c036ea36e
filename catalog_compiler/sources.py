"""Discovery: which files make up a catalog, read once with their content hash.

Every `*.yaml`/`*.yml` below the directory holding `catalog.yaml`, except hidden files and
directories and what `.catalogignore` lists. Directory symlinks are followed once; a loop
is an I/O diagnostic (exit 2), never a hang.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
from pathlib import Path
from typing import NamedTuple

from catalog_compiler.diagnostics import Sink, Span

CATALOG_FILE = "catalog.yaml"
IGNORE_FILE = ".catalogignore"
EXTENSIONS = (".yaml", ".yml")
MAX_FILE_BYTES = 8 * 1024 * 1024


class Source(NamedTuple):
    rel: str  # posix path relative to the catalog root: the identity of the file
    display: str  # how diagnostics name it: the root as the user wrote it, then `rel`
    path: str
    raw: bytes
    sha256: str


class IgnoreRules:
    """A small subset of gitignore: globs, `dir/` for directories, leading `/` anchors."""

    def __init__(self, lines: list[str]) -> None:
        self.rules: list[tuple[str, bool, bool]] = []  # (pattern, anchored, dir_only)
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = line.startswith("/") or "/" in line
            self.rules.append((line.lstrip("/"), anchored, dir_only))

    def ignored(self, rel: str, is_dir: bool) -> bool:
        name = rel.rsplit("/", 1)[-1]
        for pattern, anchored, dir_only in self.rules:
            if dir_only and not is_dir:
                continue
            target = rel if anchored else name
            if fnmatch.fnmatchcase(target, pattern):
                return True
        return False


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


def find_root(start: Path, sink: Sink) -> Path | None:
    """The catalog directory: `start` itself, or the parent of a given catalog.yaml."""
    if start.is_file() and start.name == CATALOG_FILE:
        start = start.parent
    if not start.exists():
        sink.emit("E0001", f"no such directory `{start}`", Span(str(start)))
        return None
    if not (start / CATALOG_FILE).is_file():
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
    rules = IgnoreRules(_read_ignore(root, sink))
    files: list[tuple[str, str]] = []
    visited: set[str] = set()
    _walk(root, "", rules, files, visited, root_display, sink)
    sources = []
    for rel, path in sorted(files):
        source = read_source(path, rel, _display(root_display, rel), sink)
        if source is not None:
            sources.append(source)
    return sources


def _read_ignore(root: Path, sink: Sink) -> list[str]:
    path = root / IGNORE_FILE
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        _io_error(sink, IGNORE_FILE, exc)
        return []


def _walk(
    directory: Path,
    rel_dir: str,
    rules: IgnoreRules,
    out: list[tuple[str, str]],
    visited: set[str],
    root_display: str,
    sink: Sink,
) -> None:
    try:
        real = os.path.realpath(directory, strict=True)
    except OSError as exc:
        _io_error(sink, _display(root_display, rel_dir or "."), exc)
        return
    if real in visited:
        sink.emit(
            "E0002",
            f"symbolic link loop: `{_display(root_display, rel_dir)}` "
            "leads back to a directory already read",
            Span(_display(root_display, rel_dir)),
            help="remove the link or add it to .catalogignore",
        )
        return
    visited.add(real)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        _io_error(sink, _display(root_display, rel_dir or "."), exc)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        try:
            is_dir = entry.is_dir()  # follows symlinks
        except OSError as exc:
            _io_error(sink, _display(root_display, rel), exc)
            continue
        if rules.ignored(rel, is_dir):
            continue
        if is_dir:
            _walk(Path(entry.path), rel, rules, out, visited, root_display, sink)
        elif entry.name.endswith(EXTENSIONS):
            out.append((rel, entry.path))


def read_source(path: str, rel: str, display: str, sink: Sink) -> Source | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        _io_error(sink, display, exc)
        return None
    try:
        size = os.fstat(fd).st_size
        if size > MAX_FILE_BYTES:
            sink.emit(
                "E0104",
                f"`{display}` is {size / 1048576:.1f} MiB; catalog files are limited to "
                f"{MAX_FILE_BYTES // 1048576} MiB",
                Span(display),
                help="split it into several files",
            )
            return None
        chunks = []
        while chunk := os.read(fd, max(size, 65536)):
            chunks.append(chunk)
            size = 65536
        raw = b"".join(chunks)
    except OSError as exc:
        _io_error(sink, display, exc)
        return None
    finally:
        os.close(fd)
    return Source(rel, display, path, raw, hashlib.sha256(raw).hexdigest())
