"""A log reader that stops reading must not stop the gateway (review, 2026-12-03: its
writes to stderr blocked, and with them every request of the process). The gateway's
output goes through `log_sink.Sink`: non-blocking on pipes and sockets, a bounded backlog,
whole lines, and a count of what a stalled reader lost."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.gateway import log as log_module
from runtime.gateway import log_sink
from runtime.gateway.log_sink import PIPE_BUF, Sink, _pieces
from tests.gateway.harness import ROOT, UPSTREAM_ENV, http
from tests.redis_server import free_port
from tests.runtime.test_gateway_server import AUTH, CREDENTIAL, bundle, chat  # noqa: F401

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, Linux


def _small_pipe() -> tuple[int, int]:
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)  # the smallest a pipe may be: fills at once
    return r, w


def _line(i: int) -> bytes:
    return json.dumps({"event": "x", "i": i, "pad": "p" * 60}).encode() + b"\n"


def _notice(n: int) -> bytes:
    return json.dumps({"event": "log_dropped", "lines": n}).encode() + b"\n"


def _read_lines(r: int, until: float, want: int, event: str | None = None) -> list[dict[str, Any]]:
    """Lines read from `r` until `want` of them (of `event`, if given), its end or `until`."""
    data = b""
    token = b'"event":"%s"' % event.encode() if event else b"\n"
    while data.count(token) < want and time.monotonic() < until:
        if select.select([r], [], [], 0.05)[0]:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_a_stalled_pipe_takes_a_bounded_backlog_then_drops_and_says_so() -> None:
    r, w = _small_pipe()

    async def scenario() -> tuple[Sink, list[dict[str, Any]]]:
        sink = Sink(w, _notice, limit=8192)
        assert sink.nonblocking
        started = time.monotonic()
        for i in range(300):  # ~23 KB into a 4 KB pipe whose reader is away
            sink.write(_line(i))
        assert time.monotonic() - started < 0.5  # never waited for the reader
        assert sink.dropped > 0
        read: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + 5
        while not any(x["event"] == "log_dropped" for x in read) and time.monotonic() < deadline:
            read += await loop.run_in_executor(None, _read_lines, r, time.monotonic() + 0.2, 10**6)
        return sink, read

    sink, read = asyncio.run(scenario())
    kept = [x["i"] for x in read if x["event"] == "x"]
    notices = [x["lines"] for x in read if x["event"] == "log_dropped"]
    assert kept == sorted(kept) and len(set(kept)) == len(kept)  # in order, none twice
    assert len(notices) == 1 and kept and len(kept) + notices[0] == 300
    assert sink.lost == notices[0]
    # the pipe's own description stays blocking: others writing to it are not changed
    assert os.get_blocking(w)
    sink.finish(time.monotonic() + 0.1)
    os.close(w)
    os.close(r)


def test_what_waits_is_written_at_finish_when_the_reader_comes_back() -> None:
    r, w = _small_pipe()
    sink = Sink(w, _notice, limit=1 << 20)
    lines = [_line(i) for i in range(200)]
    for line in lines:
        sink.write(line)  # no loop: what does not fit waits for `finish`
    got: list[bytes] = []

    def reader() -> None:
        time.sleep(0.2)
        while chunk := os.read(r, 65536):
            got.append(chunk)

    import threading

    thread = threading.Thread(target=reader)
    thread.start()
    sink.finish(time.monotonic() + 5)
    os.close(w)
    thread.join(5)
    os.close(r)
    assert b"".join(got) == b"".join(lines)
    assert sink.lost == 0


def test_a_reader_gone_while_lines_wait_loses_them_counted_and_nothing_fails() -> None:
    r, w = _small_pipe()

    errors: list[dict[str, Any]] = []

    async def scenario() -> Sink:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        sink = Sink(w, _notice, limit=8192)
        for i in range(300):
            sink.write(_line(i))
        assert sink.dropped > 0
        os.close(r)  # the reader dies with the pipe full and a backlog waiting
        for _ in range(5):
            await asyncio.sleep(0.01)  # the writer callback runs: EPIPE, not a loop of notices
        sink.write(_line(300))
        return sink

    sink = asyncio.run(scenario())
    assert not errors  # a callback that raised (it recursed, noticing its own lost notice)
    in_pipe = 4096 // len(_line(0))
    assert sink.lost >= 301 - in_pipe - 1
    sink.finish(time.monotonic() + 0.1)
    os.close(w)


def test_processes_sharing_a_pipe_never_tear_each_other_s_lines() -> None:
    """Workers share stderr. A batch larger than PIPE_BUF written whole is interleaved with
    another writer's when the pipe fills: four processes writing these batches with plain
    blocking writes tore 44-63 lines per run here. Pieces of whole lines cannot tear."""
    r, w = os.pipe()
    writers, batches, per_batch = 4, 40, 600  # batches of ~17 KB and ~50 KB

    def child(k: int) -> None:
        async def write_all() -> None:
            sink = Sink(w, _notice, limit=1 << 24)
            for b in range(batches):
                lines = per_batch if b % 2 else per_batch // 3
                sink.write(b"".join(_line(k * 10**6 + b * 1000 + i) for i in range(lines)))
                await asyncio.sleep(0)
            while sink._backlog:  # what waits, written as the reader reads
                await asyncio.sleep(0.001)
            sink.finish(time.monotonic() + 5)

        asyncio.run(write_all())

    pids = []
    for k in range(writers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                child(k)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
        time.sleep(0.001)  # a slow reader: the pipe fills, writers wait for room
    os.close(r)
    for pid in pids:
        os.waitpid(pid, 0)
    seen = [json.loads(line)["i"] for line in data.splitlines()]  # a torn line fails here
    expected = writers * (batches // 2) * (per_batch + per_batch // 3)
    assert len(seen) == len(set(seen)) == expected


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_socket_is_written_without_waiting_and_its_flags_left_alone(loop: str) -> None:
    """A review found the socket turned non-blocking for every writer during a stall, and
    after exit: uvloop's watch of a descriptor (a dup shares its flags) sets O_NONBLOCK."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    async def scenario() -> Sink:
        sink = Sink(ours.fileno(), _notice, limit=1 << 20)
        assert sink.nonblocking
        started = time.monotonic()
        for i in range(2000):
            sink.write(_line(i))
        assert time.monotonic() - started < 0.5
        await asyncio.sleep(0.2)  # stalled: the sink tries again meanwhile
        got = b""
        while b'"log_dropped"' not in got and got.count(b"\n") < 2000:
            await asyncio.sleep(0.01)
            with contextlib.suppress(BlockingIOError):
                got += theirs.recv(1 << 20, socket.MSG_DONTWAIT)
        assert ours.getblocking() and os.get_blocking(ours.fileno())
        sink.finish(time.monotonic())
        return sink

    try:
        if loop == "uvloop":
            uvloop = pytest.importorskip("uvloop")
            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        else:
            runner = asyncio.Runner()
        with runner:
            sink = runner.run(scenario())
        assert sink.lost == 0
        assert os.get_blocking(ours.fileno())  # after it, too
    finally:
        ours.close()
        theirs.close()


def test_a_line_written_from_another_thread_is_written_by_the_loop() -> None:
    """A review found a write from a thread (the lease upkeep's log) during a stall left
    the backlog with nothing to write it, for good: the loop's thread writes it now."""
    r, w = _small_pipe()

    async def scenario() -> list[dict[str, Any]]:
        sink = Sink(w, _notice, limit=1 << 20)
        first = b"".join(_line(i) for i in range(100))  # more than the pipe holds
        thread = threading.Thread(target=sink.write, args=(first,))
        thread.start()
        thread.join()
        await asyncio.sleep(0)
        for i in range(100, 200):
            sink.write(_line(i))
        loop = asyncio.get_running_loop()
        read = await loop.run_in_executor(None, _read_lines, r, time.monotonic() + 5, 200)
        sink.finish(time.monotonic())
        return read

    read = asyncio.run(scenario())
    assert sorted(x["i"] for x in read) == list(range(200))
    os.close(w)
    os.close(r)


MAKE_PIPE = """
import os, socket, sys
to = socket.socket(fileno=int(sys.argv[1]))
r, w = os.pipe()
socket.send_fds(to, [b"pipe"], [r, w])
"""

WRITE_STALLED = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from log_sink import Sink
sink = Sink(2, lambda n: b"", limit=65536)
started = time.monotonic()
for i in range(5000):
    sink.write(b"x" * 99 + b"\\n")  # 500 KB into a pipe nobody reads
print(sink.nonblocking, round(time.monotonic() - started, 3), sink.lost, flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to make a pipe another user owns")  # fmt: skip
def test_a_pipe_another_user_owns_is_written_without_waiting(tmp_path: Path) -> None:
    """A review found the sink wrote blocking when it could not reopen the pipe (an
    anonymous pipe is mode 0600, owned by its maker: a gateway under a container runtime
    or `sudo -u app gateway 2>&1 | shipper`): a stalled reader froze it again."""
    here, there = socket.socketpair(socket.AF_UNIX)
    maker = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
             "-c", MAKE_PIPE, str(there.fileno())]  # fmt: skip
    subprocess.run(maker, pass_fds=[there.fileno()], check=True, timeout=30)
    _, (r, w), _, _ = socket.recv_fds(here, 16, 2)
    here.close()
    there.close()
    assert os.fstat(w).st_uid == 65534
    shutil.copy(Path(log_sink.__file__), tmp_path / "log_sink.py")  # stdlib only
    writer = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-c",
              WRITE_STALLED, str(tmp_path)]  # fmt: skip
    try:
        done = subprocess.run(writer, stderr=w, capture_output=False, stdout=subprocess.PIPE,
                              timeout=20, text=True)  # fmt: skip
    finally:
        os.close(w)
        os.close(r)
    nonblocking, seconds, lost = done.stdout.split()
    assert nonblocking == "True" and float(seconds) < 2 and int(lost) > 0


def test_a_kernel_without_rwf_nowait_for_pipes_gets_a_description_of_our_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*args: object) -> int:
        raise OSError(errno.EOPNOTSUPP, "not supported")

    monkeypatch.setattr(log_sink.os, "pwritev", refused)
    r, w = _small_pipe()
    sink = Sink(w, _notice, limit=8192)
    started = time.monotonic()
    for i in range(300):
        sink.write(_line(i))
    assert time.monotonic() - started < 0.5 and sink.nonblocking and sink.dropped > 0
    assert os.get_blocking(w)  # the shared description is untouched
    sink.finish(time.monotonic())
    real_open = os.open

    def no_proc(path: str, *args: Any) -> int:
        if str(path).startswith("/proc/self/fd/"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args)

    monkeypatch.setattr(log_sink.os, "open", no_proc)
    os.set_blocking(r, False)
    with contextlib.suppress(BlockingIOError):
        while os.read(r, 65536):  # room again: what follows is written blocking
            pass
    sink = Sink(w, _notice)
    sink.write(_line(0))  # fits: written blocking, and the reason is known
    assert not sink.nonblocking and "Permission denied" in (sink.blocking_reason or "")
    sink.finish(time.monotonic())
    os.close(w)
    os.close(r)


def test_a_line_longer_than_a_pipe_s_atomic_write_is_clipped() -> None:
    """Workers share stderr: a line longer than PIPE_BUF could be torn by another's write
    (a review tore `reload_failed` lines listing many missing references)."""
    written: list[str] = []
    with patch.object(log_module, "_write", written.append):
        log_module.log("reload_failed", error="cannot read " + "provider-ref, " * 2000, n=3)
        log_module.log("reload_failed", error=["é" * 300] * 40)
        log_module.log("short", error="fine")
    long, wide, short = (json.loads(text) for text in written)
    assert all(len(text.encode()) <= log_module.MAX_LINE for text in written)
    assert long["clipped"] is True and long["n"] == 3 and long["error"].startswith("cannot")
    assert wide["clipped"] is True
    assert "clipped" not in short


def test_the_gateway_idles_quietly_with_stderr_closed(bundle: Path) -> None:  # noqa: F811
    """Started with `2>&-`, the gateway spun a core on a log flush that failed and logged
    its own failure (a review; it predates the sink)."""
    port = free_port()
    shell = (f"exec {sys.executable} -m runtime.gateway {bundle} --host 127.0.0.1 "
             f"--port {port} 2>&-")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), **UPSTREAM_ENV, "GW_OPS_FAKE_KEY": CREDENTIAL}
    proc = subprocess.Popen(["sh", "-c", shell], stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if http("GET", f"http://127.0.0.1:{port}/healthz", None, None, 2)[0] == 200:
                    break
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        status, _, _ = http("POST", f"http://127.0.0.1:{port}/v1/chat/completions", chat(),
                            AUTH, 5)  # fmt: skip
        assert status == 200
        before = _cpu_seconds(proc.pid)
        time.sleep(2)
        assert _cpu_seconds(proc.pid) - before < 0.5  # it spun: ~2 s of CPU in 2 s
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_regular_file_is_written_through(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with path.open("ab") as file:
        sink = Sink(file.fileno(), _notice)
        assert not sink.nonblocking
        sink.write(_line(1) + _line(2))
        assert path.read_bytes() == _line(1) + _line(2)
        sink.finish(time.monotonic())


@given(st.lists(st.integers(min_value=0, max_value=3 * PIPE_BUF), max_size=40))
def test_pieces_are_whole_lines_within_pipe_buf_unless_one_line_is_longer(sizes: list[int]) -> None:
    data = b"".join(b"a" * n + b"\n" for n in sizes)
    pieces = _pieces(data)
    assert b"".join(pieces) == data
    for piece in pieces:
        assert piece.endswith(b"\n") or not piece
        assert len(piece) <= PIPE_BUF or piece.count(b"\n") == 1


def test_the_gateway_serves_while_its_log_and_events_readers_are_stalled(bundle: Path) -> None:  # noqa: F811
    """Before the sink, the gateway stopped at the ~10th request: its log write blocked."""
    err_r, err_w = _small_pipe()
    out_r, out_w = _small_pipe()
    cmd = [sys.executable, "-m", "runtime.gateway", str(bundle), "--host", "127.0.0.1",
           "--port", "0", "--events", "-"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), **UPSTREAM_ENV, "GW_OPS_FAKE_KEY": CREDENTIAL}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, env=env,
                            cwd=str(ROOT))  # fmt: skip
    os.close(err_w)
    os.close(out_w)
    try:
        start = _read_lines(err_r, time.monotonic() + 30, 1)
        listening = next(x for x in start if x["event"] == "listening")
        origin = f"http://127.0.0.1:{listening['port']}"
        count = 150  # ~60 KB of log lines and as many of events: far past both pipes
        for _ in range(count):  # nobody reads stderr or stdout meanwhile
            status, _, _ = http("POST", origin + "/v1/chat/completions", chat(), AUTH, 5)
            assert status == 200
        lines = start + _read_lines(err_r, time.monotonic() + 10, count, "request")
        events = _read_lines(out_r, time.monotonic() + 10, count, "usage")
        assert sum(x["event"] == "request" for x in lines) == count  # none lost: it waited
        assert sum(x["event"] == "usage" for x in events) == count
        proc.send_signal(signal.SIGTERM)
        lines += _read_lines(err_r, time.monotonic() + 10, 1, "stopped")
        assert proc.wait(10) == 0
        assert lines[-1]["event"] == "stopped"
    finally:
        proc.kill()
        proc.wait()
        os.close(err_r)
        os.close(out_r)
