"""Where the gateway's output lines go without ever waiting for their reader.

A blocking write to a pipe whose reader stopped (a stuck log shipper, a paused container
runtime) would stop every request of the process, or a supervisor's restarts and its stop.
A `Sink` never waits: a write the reader has no room for stays in memory, in order, up to
`limit` bytes, and is tried again every RETRY seconds from the event loop (or at the next
write, without one); past the limit whole batches are dropped and counted, and once all is
written a notice line says how many lines were lost.

No descriptor's flags are changed: the descriptor is shared with the supervisor, the other
workers, and whatever started us, and a flag set on it would change their writes too
(O_NONBLOCK lives in the shared file description; an event loop watching it sets that).
- A pipe is written with pwritev2(RWF_NOWAIT), the one-call form of a non-blocking write
  (recent Linux kernels take it for pipes; this machine's 6.18 does); on a kernel that
  refuses it, through a description of our own reopened from /proc with O_NONBLOCK; where
  neither works (a pipe another user owns, on such a kernel), blocking as before, and
  `blocking_reason` says why.
- A socket (the systemd journal's stream) is written with send(MSG_DONTWAIT).
- A regular file or a terminal is written blocking: a disk does not stop reading.

Pipe writes go out in pieces of whole lines of at most PIPE_BUF bytes, which the kernel
writes whole or not at all: workers sharing a pipe never tear each other's lines. A line
longer than that could be torn: the log keeps its lines shorter (log.py, MAX_LINE).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

MAX_BACKLOG = 4 * 1024 * 1024  # bytes waiting for a stalled reader, per sink
PIPE_BUF = select.PIPE_BUF  # 4096 on Linux: a write this small to a pipe is atomic
RETRY = 0.02  # seconds between tries while the reader has no room
_NOWAIT = getattr(os, "RWF_NOWAIT", 0)
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)


class Sink:
    """Never-waiting line output on `fd` (see the module's note). `notice(n)` is the line
    written once the backlog is out, after `n` lines were dropped."""

    def __init__(self, fd: int, notice: Callable[[int], bytes], limit: int = MAX_BACKLOG) -> None:
        self.limit = limit
        self.dropped = 0  # lines lost since the last notice
        self.lost = 0  # lines lost in all
        self.blocking_reason: str | None = None  # a pipe written blocking: why
        self._notice = notice
        self._backlog: deque[bytes] = deque()
        self._size = 0
        self._retry: asyncio.TimerHandle | None = None
        self._thread = threading.get_ident()
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # none: the supervisor's, retried by hand
            self._loop = asyncio.get_running_loop()
        self._fd = fd
        self._sock: socket.socket | None = None
        self._own = -1  # a reopened description of the pipe (older kernels)
        self._send: Callable[[bytes], int] | None = None  # None: blocking writes
        mode = _mode(fd)
        if mode is not None and stat.S_ISSOCK(mode):
            self._sock = socket.socket(fileno=os.dup(fd))  # leaves the blocking flag alone
            self._send = self._send_socket
        elif mode is not None and stat.S_ISFIFO(mode):
            self._send = self._send_nowait if _NOWAIT else None
            if self._send is None:
                self._reopen()

    @property
    def nonblocking(self) -> bool:
        return self._send is not None

    def write(self, data: bytes) -> None:
        """Write `data` (whole lines) now, or keep it for when the reader reads again."""
        if self._send is None:
            _write_all(self._fd, data)
            return
        if threading.get_ident() != self._thread:  # not thread-safe: the loop's thread writes
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self.write, data)
            else:
                self._drop(data)
            return
        if self._size + len(data) > self.limit:
            self._drop(data)
        else:
            self._backlog.append(data)
            self._size += len(data)
        if self._retry is None:
            self._flush()

    def retry(self) -> None:
        """Try what waits again now (for a caller without an event loop, now and then)."""
        if self._backlog and self._retry is None and self._send is not None:
            self._flush()

    def finish(self, deadline: float) -> None:
        """Write what waits, trying until `deadline` (time.monotonic()), then let go of what
        this sink opened. What still waits then is lost (counted in `lost`)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        while self._backlog and self._send is not None:
            self._flush(schedule=False)
            if not self._backlog or time.monotonic() >= deadline:
                break
            time.sleep(min(RETRY, max(0.0, deadline - time.monotonic())))
        for piece in self._backlog:
            self._count_lost(piece)
        self._backlog.clear()
        self._size = 0
        if self._sock is not None:
            self._sock.close()
        if self._own >= 0:
            os.close(self._own)
        self._send = None
        self._fd = -1

    # -- writing ----------------------------------------------------------------------------
    def _flush(self, schedule: bool = True) -> None:
        """Write what waits, then the notice of what was dropped; what the reader has no room
        for is tried again in RETRY seconds (or at the next write, without a loop)."""
        self._retry = None
        if self._write_backlog() and self.dropped:
            notice = self._notice(self.dropped)
            self.dropped = 0  # a notice lost in turn counts, and is not noticed again now
            if notice:
                self._backlog.append(notice)
                self._size += len(notice)
                self._write_backlog()
        if self._backlog and schedule and self._loop is not None and not self._loop.is_closed():
            self._retry = self._loop.call_later(RETRY, self._flush)

    def _write_backlog(self) -> bool:
        """True when nothing waits any more."""
        while self._backlog:
            head = self._backlog[0]
            sent = self._write(head)
            self._size -= sent
            if sent < len(head):
                self._backlog[0] = head[sent:]
                return False
            self._backlog.popleft()
        return True

    def _write(self, data: bytes) -> int:
        """Bytes of `data` written: all, or up to where the reader had no room. A reader gone
        (EPIPE) or another error loses the data, counted."""
        assert self._send is not None
        sent = 0
        try:
            for piece in _pieces(data):
                n = self._send(piece)
                if n < len(piece):  # a socket may take part: the rest waits
                    return sent + n
                sent += n
        except (BlockingIOError, InterruptedError):
            return sent
        except OSError:
            self._drop(data[sent:])
            return len(data)
        return sent

    def _send_nowait(self, piece: bytes) -> int:
        try:
            return os.pwritev(self._fd, [piece], -1, _NOWAIT)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED or self._own >= 0:
                raise
        self._reopen()  # this kernel's pipes do not take RWF_NOWAIT
        if self._send is None:
            return _write_all(self._fd, piece)
        return self._send(piece)

    def _send_socket(self, piece: bytes) -> int:
        assert self._sock is not None
        return self._sock.send(piece, socket.MSG_DONTWAIT)

    def _send_own(self, piece: bytes) -> int:
        return os.write(self._own, piece)

    def _reopen(self) -> None:
        """A description of the pipe of our own, non-blocking (not the shared one's flag)."""
        try:
            flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC
            self._own = os.open(f"/proc/self/fd/{self._fd}", flags)
            self._send = self._send_own
        except OSError as exc:  # no /proc, or a pipe another user owns (mode 0600)
            self._send = None
            self.blocking_reason = f"this kernel has no RWF_NOWAIT for pipes and {exc.strerror}"

    def _drop(self, data: bytes) -> None:
        lines = self._count_lost(data)
        self.dropped += lines

    def _count_lost(self, data: bytes) -> int:
        lines = data.count(b"\n")
        self.lost += lines
        return lines


def own_sink(stream: TextIO | None, original: TextIO | None,
             notice: Callable[[int], bytes]) -> Sink | None:  # fmt: skip
    """A Sink on `stream`'s descriptor; None when this process replaced the stream (a test
    capturing it) or it is closed. OSError or ValueError: no descriptor behind it."""
    if stream is None or stream is not original:
        return None
    stream.flush()
    return Sink(stream.fileno(), notice)


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


def _write_all(fd: int, data: bytes) -> int:
    """A blocking write of all of `data` (a file, a terminal); its length."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:  # a closed or full output must not fail a request
        pass
    return len(data)
