"""Where the gateway's output lines go without ever blocking its event loop.

A blocking write to a pipe whose reader stopped (a stuck log shipper, a paused container
runtime) would stop every request in the process. A `Sink` writes to a pipe or socket
without waiting: what does not fit waits in memory, behind a writer callback, up to
`limit` bytes; past that whole batches are dropped and counted, and when the backlog is
written out a notice line says how many lines were lost.

Pipes are reopened through /proc so that O_NONBLOCK is set on a description of our own:
fd 2 is shared with the supervisor, the other workers and whatever started us, and setting
it there would change their writes too. Sockets are written with MSG_DONTWAIT per call, for
the same reason. Regular files and terminals are written as before, blocking: a disk does
not stop reading.

Writes to a pipe go out in pieces of whole lines of at most PIPE_BUF bytes, which the
kernel writes whole or not at all: workers sharing one pipe never tear each other's lines.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import stat
import time
from collections import deque
from collections.abc import Callable

MAX_BACKLOG = 4 * 1024 * 1024  # bytes waiting for a stalled reader, per sink
PIPE_BUF = select.PIPE_BUF  # 4096 on Linux: a write this small to a pipe is atomic


class Sink:
    """Non-blocking line output on `fd` (see the module's note). `notice(n)` is the line
    written once the backlog is out, after `n` lines were dropped."""

    def __init__(self, fd: int, notice: Callable[[int], bytes], limit: int = MAX_BACKLOG) -> None:
        self.limit = limit
        self.dropped = 0  # lines lost since the last notice
        self.lost = 0  # lines lost in all
        self._notice = notice
        self._backlog: deque[bytes] = deque()
        self._size = 0
        self._watched: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._fd = -1
        self._blocking = fd
        mode = _mode(fd)
        if mode is not None and stat.S_ISSOCK(mode):
            self._sock = socket.socket(fileno=os.dup(fd))
            self._fd = self._sock.fileno()
        elif mode is not None and stat.S_ISFIFO(mode):
            try:
                self._fd = os.open(
                    f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC
                )
            except OSError:  # no /proc, or no reader left: plain writes
                self._fd = -1

    @property
    def nonblocking(self) -> bool:
        return self._fd >= 0

    def write(self, data: bytes) -> None:
        """Write `data` (whole lines) now, or keep it for when the reader reads again."""
        if self._fd < 0:
            _write_all(self._blocking, data)
            return
        if self._backlog:  # in order, behind what waits
            self._keep(data)
            return
        sent = self._send(data)
        if sent < len(data):
            self._keep(data[sent:])
            self._watch()

    def finish(self, timeout: float) -> None:
        """Write what waits, waiting up to `timeout` seconds for the reader; then let go of
        the descriptor. What is still waiting then is lost (counted in `lost`)."""
        if self._watched is not None:
            self._watched.remove_writer(self._fd)
            self._watched = None
        deadline = time.monotonic() + timeout
        while self._backlog and self._fd >= 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._fd], [], left)[1]:
                break
            self._resume()
        for piece in self._backlog:
            self.lost += piece.count(b"\n")
        self._backlog.clear()
        self._size = 0
        if self._sock is not None:
            self._sock.close()
        elif self._fd >= 0:
            os.close(self._fd)
        self._fd = -1

    def _send(self, data: bytes) -> int:
        """Bytes of `data` written: all, or up to a line boundary; 0 when the reader is
        full. A reader gone (EPIPE) or another error loses the data, counted."""
        sent = 0
        try:
            for piece in _pieces(data):
                if self._sock is not None:
                    n = self._sock.send(piece, socket.MSG_DONTWAIT)
                else:
                    n = os.write(self._fd, piece)
                if n < len(piece):  # a socket may take part: the rest waits
                    return sent + n
                sent += n
        except (BlockingIOError, InterruptedError):
            return sent
        except OSError:
            self._drop(data[sent:])
            return len(data)
        return sent

    def _keep(self, data: bytes) -> None:
        if self._size + len(data) > self.limit:
            self._drop(data)
            return
        self._backlog.append(data)
        self._size += len(data)

    def _drop(self, data: bytes) -> None:
        lines = data.count(b"\n")
        self.dropped += lines
        self.lost += lines

    def _watch(self) -> None:
        if self._watched is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop: `finish` writes it
            loop.add_writer(self._fd, self._resume)
            self._watched = loop

    def _resume(self) -> None:
        """The reader has room: write what waits, then the notice of what was dropped."""
        if not self._write_backlog():
            return
        if self.dropped:
            notice = self._notice(self.dropped)
            self.dropped = 0  # a notice lost in turn counts, and is not noticed again now
            if notice:
                self._backlog.append(notice)
                self._size += len(notice)
                if not self._write_backlog():
                    return
        if self._watched is not None:
            self._watched.remove_writer(self._fd)
            self._watched = None

    def _write_backlog(self) -> bool:
        """True when nothing waits any more."""
        while self._backlog:
            head = self._backlog[0]
            sent = self._send(head)
            self._size -= sent
            if sent < len(head):
                self._backlog[0] = head[sent:]
                return False
            self._backlog.popleft()
        return True


def _mode(fd: int) -> int | None:
    try:
        return os.fstat(fd).st_mode
    except OSError:
        return None


def _pieces(data: bytes) -> list[bytes]:
    """`data` cut at line ends into pieces of at most PIPE_BUF bytes (a longer line alone)."""
    if len(data) <= PIPE_BUF:
        return [data]
    pieces: list[bytes] = []
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + PIPE_BUF)
        if end < 0:  # one line longer than PIPE_BUF
            end = data.find(b"\n", start + PIPE_BUF)
            end = len(data) - 1 if end < 0 else end
        pieces.append(data[start : end + 1])
        start = end + 1
    return pieces


def _write_all(fd: int, data: bytes) -> None:
    """A blocking write of all of `data` (a file, a terminal)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:  # a closed or full output must not fail a request
        pass
