"""A log reader that stops reading must not stop the gateway (review, 2026-12-03: its
writes to stderr blocked, and with them every request of the process). The gateway's
output goes through `log_sink.Sink`: non-blocking on pipes and sockets, a bounded backlog,
whole lines, and a count of what a stalled reader lost."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from runtime.gateway.log_sink import PIPE_BUF, Sink, _pieces
from tests.gateway.harness import ROOT, UPSTREAM_ENV, http
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
    sink.finish(0.1)
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
    sink.finish(5.0)
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
    sink.finish(0.1)
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
            sink.finish(5)

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


def test_a_socket_is_written_without_waiting_and_left_blocking_for_others() -> None:
    ours, theirs = socket.socketpair()
    try:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sink = Sink(ours.fileno(), _notice, limit=4096)
        assert sink.nonblocking
        started = time.monotonic()
        for i in range(2000):
            sink.write(_line(i))
        assert time.monotonic() - started < 0.5
        assert sink.dropped > 0
        assert ours.getblocking()
        sink.finish(0)
    finally:
        ours.close()
        theirs.close()


def test_a_regular_file_is_written_through(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with path.open("ab") as file:
        sink = Sink(file.fileno(), _notice)
        assert not sink.nonblocking
        sink.write(_line(1) + _line(2))
        assert path.read_bytes() == _line(1) + _line(2)
        sink.finish(0)


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
