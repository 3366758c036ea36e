"""Request heads that never end are bounded per connection and over all connections: a
caller with no key held ~5 MB per connection (128 header lines of 40 KiB, each line within
aiohttp's limits) until the client timeout, and 150 such connections took 1.4 GB
(review, 2026-12-03). Heads that do end, in one piece or several, are served."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path

from runtime.gateway.capped_site import REFUSAL
from runtime.gateway.connection import HEAD_TOO_LARGE, HEADS_FULL, MAX_HEAD, MAX_HEADS
from runtime.gateway.replies import error_body
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import AUTH, bundle, gateway  # noqa: F401

LINE = b"X-Pad-%d: " + b"a" * 30_000 + b"\r\n"


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def _connect(gw: Gateway) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _head(lines: int) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(LINE % i for i in range(lines))


def test_a_head_past_its_bound_is_refused_and_closed(gateway: Gateway) -> None:  # noqa: F811
    with _connect(gateway) as sock:
        sock.sendall(_head(MAX_HEAD // 30_000 + 2))
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert b"request_header_too_large" in answer


def test_heads_that_never_end_are_bounded_over_all_connections(gateway: Gateway) -> None:  # noqa: F811
    assert gateway.proc is not None
    before = _rss_kb(gateway.proc.pid)
    lines = MAX_HEAD // 30_000  # just within one head's bound
    count = MAX_HEADS // (lines * 30_000) + 40  # more than all heads together may hold
    socks = []
    for _ in range(count):
        sock = _connect(gateway)
        sock.sendall(_head(lines))
        socks.append(sock)
    time.sleep(1.0)
    grown_mb = (_rss_kb(gateway.proc.pid) - before) / 1024
    refused = 0
    for sock in socks:
        sock.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            refused += sock.recv(65536).startswith(b"HTTP/1.1 503")
        sock.close()
    assert refused >= 30, refused  # past the sum, new head bytes are refused
    assert grown_mb < 3 * MAX_HEADS / 2**20 + 64, grown_mb  # held: ~2x what is counted
    # a head sent in pieces, and then whole, is served as ever
    with _connect(gateway) as sock:
        head = f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['authorization']}\r\n"
        for part in (head.encode(), b"X-Pad: " + b"b" * 30_000 + b"\r\n", b"\r\n"):
            sock.sendall(part)
            time.sleep(0.05)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert gateway.request("GET", "/healthz")[0] == 200


def test_every_answer_written_before_a_request_has_its_status_s_error_type() -> None:
    """The connection-level refusals are bytes built at import; each must carry the error
    type every other answer of its status carries (the connection cap's 503 said
    `server_error`, the heads' 503 `service_unavailable`)."""
    for raw in (REFUSAL, HEAD_TOO_LARGE, HEADS_FULL):
        head, _, body = raw.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        error = json.loads(body)["error"]
        assert error == json.loads(error_body(status, error["message"], error["code"]))["error"]
