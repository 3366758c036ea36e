"""`--workers N`, SIGTERM: once the workers drain, a new connection is refused and the port
can be bound by a new gateway (a rolling restart), as with one process. The supervisor kept
its copy of the listening socket open: the kernel completed handshakes no worker would
accept (reset after the drain), and the port stayed taken until the old gateway exited."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

from tests.redis_server import RedisServer
from tests.runtime.conftest import compile_files
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import AUTH, CREDENTIAL, _wait, catalog, chat


def refused(port: int, within: float) -> bool:
    """Whether a connection to `port` is refused, trying until `within` seconds pass."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)
    return False


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as listen() does
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
        return True


def test_draining_workers_refuse_new_connections_and_free_the_port(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", catalog()))
    gw = Gateway(path, "--workers", "2", "--redis", own_redis.url, "--namespace", "drain",
                 env={"GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    try:
        _wait(lambda: len(gw.events("listening")) == 2)
        answers: list[int] = []
        slow = threading.Thread(target=lambda: answers.append(gw.request(
            "POST", "/v1/chat/completions", chat(), {**AUTH, "x-mock-latency-ms": "3000"},
            timeout=30)[0]))  # fmt: skip
        slow.start()
        time.sleep(0.5)  # under way: the mock waits 3 s before answering
        gw.signal(signal.SIGTERM)
        _wait(lambda: len(gw.events("draining")) == 2)
        assert refused(gw.port, within=2)
        assert bindable(gw.port)
        slow.join(30)
        assert answers == [200]  # what was in flight still finishes
    finally:
        assert gw.stop(30) == 0
