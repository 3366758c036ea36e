"""A request body whose framing or content encoding is broken is the client's 400
`malformed_http`, at once: not a 500 (a body that claims gzip and is not), and not a
408 after the client timeout (a bad chunk arriving after the body had begun)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import KEY, bundle, gateway  # noqa: F401

WAIT = 10.0
BODY = json.dumps({"model": "@openai-prod/gpt-4o-mini",
                   "messages": [{"role": "user", "content": "hi"}]}).encode()  # fmt: skip


def _head(gw: Gateway, extra: str) -> bytes:
    host = gw.url.removeprefix("http://")
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}"
            f"\r\nContent-Type: application/json\r\n{extra}\r\n").encode()  # fmt: skip


def _answer(sock: socket.socket) -> tuple[int, dict[str, object], float]:
    start = time.monotonic()
    got = b""
    while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    return int(head[9:12]), json.loads(body), time.monotonic() - start


def _connect(gw: Gateway) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=WAIT)


@pytest.mark.parametrize("bad", [b"zz\r\nxx\r\n0\r\n\r\n", b"-1\r\n", b"5;\x00\r\nhello\r\n",
                                 b"5\r\nhelloXX0\r\n\r\n"])  # fmt: skip
def test_a_bad_chunk_after_the_body_began_is_a_400_at_once(gateway: Gateway, bad: bytes) -> None:  # noqa: F811
    with _connect(gateway) as sock:
        sock.sendall(_head(gateway, "Transfer-Encoding: chunked\r\n") + b'5\r\n{"mod\r\n')
        time.sleep(0.5)  # the handler is reading the body by now
        sock.sendall(bad)
        status, body, took = _answer(sock)
    assert status == 400, body
    assert body["error"]["code"] == "malformed_http"  # type: ignore[index]
    assert took < 3.0  # not the client timeout (30 s)
    assert gateway.request("GET", "/healthz")[0] == 200


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "x-unknown"])
def test_a_body_that_is_not_its_content_encoding_is_a_400(gateway: Gateway, encoding: str) -> None:  # noqa: F811
    with _connect(gateway) as sock:
        sock.sendall(_head(gateway, f"Content-Encoding: {encoding}\r\nContent-Length: "
                           f"{len(BODY)}\r\n") + BODY)  # fmt: skip
        status, body, _ = _answer(sock)
    assert 400 <= status < 500, body
    assert "internal_error" not in gateway.text()
