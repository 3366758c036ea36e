"""File output: atomic (a reader sees the old file or the new one, never half of either) and
guarded (an output never replaces a device, FIFO, socket or directory, nor a file the run
read as input). File input named on the command line (import sources, bundles to diff):
regular files only, read with a bound, so `/dev/zero` or a FIFO never hangs or fills memory."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Collection
from pathlib import Path

FileId = tuple[int, int]  # (st_dev, st_ino)


class OutputRefused(OSError):
    """`path` must not be written; `code` is the diagnostic (E0006 input, E0007 not a file)."""

    def __init__(self, code: str, path: Path, reason: str, help: str) -> None:
        super().__init__(reason)
        self.filename = str(path)
        self.code = code
        self.path = path
        self.reason = self.strerror = reason
        self.help = help

    def __str__(self) -> str:
        return self.reason


MAX_INPUT_BYTES = 64 * 2**20


class InputRefused(OSError):
    """An input file that is not read: not a regular file, or larger than the bound."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(reason)
        self.filename = str(path)
        self.strerror = reason


def read_input(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A regular file's bytes, at most `limit` (whatever stat says: /proc files claim 0)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputRefused(path, f"{describe(info.st_mode)}, not a regular file")
        data = read_fd(fd, limit)
        if data is None:
            raise InputRefused(path, f"larger than {limit // 2**20} MiB")
        return data
    finally:
        os.close(fd)


def read_fd(fd: int, limit: int) -> bytes | None:
    """At most `limit` bytes of `fd`, or None when it holds more (whatever stat said)."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    return None


def describe(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


def check_output(
    path: Path, protected: Collection[FileId] = (), what: str = "a file this run reads"
) -> None:
    """Raise OutputRefused unless `path` is absent or a regular file not in `protected`
    (`what` says what the protected files are).

    Writing renames a new file over the one `path` resolves to, so a device or FIFO there
    would be swapped for a regular file; links are followed, so a catalog file named by a
    link would be replaced."""
    try:
        st = os.stat(path)  # follows links: the file the user meant
    except OSError:
        resolved(path)  # refuses a loop of links
        return  # absent (or unreachable: the write itself reports why)
    if not stat.S_ISREG(st.st_mode):
        raise OutputRefused(
            "E0007",
            path,
            f"`{path}` is {describe(st.st_mode)}, not a regular file: it is not replaced",
            "name a new or regular file (`-o -` writes to standard output)",
        )
    if (st.st_dev, st.st_ino) in protected:
        raise OutputRefused(
            "E0006",
            path,
            f"`{path}` is {what}: writing it would destroy the input",
            "write the output somewhere else",
        )
    resolved(path)  # refuses a file no name reaches (/proc/self/fd/N of a deleted file)


def check_output_dir(path: Path) -> None:
    """Raise OutputRefused when `path` exists and is not a directory (links followed)."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise OutputRefused(
            "E0007",
            path,
            f"`{path}` is {describe(st.st_mode)}, not a directory",
            "name a new or existing directory",
        )


def write_atomic(
    path: Path,
    data: bytes,
    *,
    durable: bool = True,
    protected: Collection[FileId] = (),
    what: str = "a file this run reads",
) -> Path:
    """Write to a temporary file beside the file `path` resolves to (its directory created
    if missing), fsync, then rename over that file, after `check_output`; return that
    file's path. A symbolic link stays a link and its target gets the data.

    `durable=False` skips the fsync, for caches: still never half-written, just not
    guaranteed to survive a power cut."""
    check_output(path, protected, what)
    target = resolved(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fd, _mode_for(target))  # mkstemp makes 0600; keep what a write would give
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def resolved(path: Path) -> Path:
    """The file a write to `path` lands in: every link followed, a dangling one to the name
    it points at. Renaming over `path` itself would replace a link (`/dev/stdout` too) with
    the output and leave its target as it was."""
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # realpath stops inside a loop
        raise _unreachable(path, "a loop of symbolic links")
    try:
        named = os.stat(path)
    except OSError:
        return target  # a new name (the write reports a path it cannot reach)
    if _file_id(target) != (named.st_dev, named.st_ino):  # /proc/self/fd/N of a deleted file
        raise _unreachable(path, "a file no name reaches (deleted, or in memory)")
    return target


def _file_id(path: Path) -> FileId | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _unreachable(path: Path, what: str) -> OutputRefused:
    return OutputRefused(
        "E0007", path, f"`{path}` leads to {what}: it cannot be replaced",
        "name a new or regular file (`-o -` writes to standard output)",
    )  # fmt: skip


def error_text(exc: OSError) -> str:
    """One line naming the diagnostic, for the commands that print plain messages."""
    name = f" {exc.filename}" if exc.filename else ""
    if isinstance(exc, OutputRefused):
        return f"cannot write{name}: {exc.reason} [{exc.code}; {exc.help}]"
    return f"cannot write{name}: {exc.strerror or exc} [E0008]"


def _mode_for(path: Path) -> int:
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
