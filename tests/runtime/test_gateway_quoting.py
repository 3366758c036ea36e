"""What a request names is quoted back clipped, its size bounds count bytes, and no route
invites a body before the caller is known (review, 2026-12-03)."""

from __future__ import annotations

import json
import socket

import pytest

from runtime.bundle.errors import MAX_QUOTED, UnknownConfig, UnknownWorkspace
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import AUTH, bundle, chat, gateway  # noqa: F401


def test_names_from_a_request_are_quoted_clipped(gateway: Gateway) -> None:  # noqa: F811
    long = "m" * 1000  # within the model name bound (1,024)
    status, _, data = gateway.request("POST", "/v1/chat/completions", chat(f"@mock/{long}"), AUTH)
    message = json.loads(data)["error"]["message"]
    assert status == 404 and len(message) < MAX_QUOTED + 200 and long[:MAX_QUOTED] not in message
    status, _, data = gateway.request("POST", "/v1/chat/completions", chat("echo"),
                                      {**AUTH, "x-portkey-config": "c" * 60})  # fmt: skip
    assert status == 404 and "c" * 60 in json.loads(data)["error"]["message"]  # short: whole
    for refusal in (UnknownWorkspace("w" * 15000), UnknownConfig("c" * 15000)):
        assert len(refusal.message) < MAX_QUOTED + 100


def test_metadata_is_bounded_in_bytes(gateway: Gateway) -> None:  # noqa: F811
    def status_with(metadata: str) -> int:
        body = json.dumps(chat()).encode()
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: "
                f"{AUTH['authorization']}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nx-portkey-metadata: {metadata}\r\n\r\n")  # fmt: skip
        host, port = gateway.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head.encode("utf-8") + body)
            return int(sock.recv(65536)[9:12])

    # 3,000 characters are 9,000 bytes: past the 8 KiB bound; 2,000 (6,000 bytes) fit
    assert status_with(json.dumps({"k": "€" * 3000}, ensure_ascii=False)) == 400
    assert status_with(json.dumps({"k": "€" * 2000}, ensure_ascii=False)) == 200


@pytest.mark.parametrize("method, path", [("GET", "/readyz"), ("GET", "/v1/models"),
                                          ("GET", "/v1/catalog/usage"), ("GET", "/metrics"),
                                          ("POST", "/v1/catalog/recover")])  # fmt: skip
def test_no_route_invites_a_body_before_the_caller_is_known(gateway: Gateway, method: str,  # noqa: F811
                                                            path: str) -> None:  # fmt: skip
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     f"Content-Length: {10**12}\r\n\r\n".encode())  # fmt: skip
        first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 ") and not first.startswith(b"HTTP/1.1 100"), first[:80]
