"""The HTTP layer against a hostile client, byte by byte (a review, 2026-12-03): a path is
routed as it was sent, only HTTP/1.x is spoken, a coding the gateway cannot undo is refused,
a key header sent twice is no key, and no answer carries invalid Unicode."""

from __future__ import annotations

import gzip
import json
import socket

import pytest

from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import AUTH, KEY, bundle, chat, gateway  # noqa: F401


def exchange(gw: Gateway, raw: bytes) -> tuple[int, bytes]:
    """One request as raw bytes: the answer's status and its whole text (read to close or
    to the length the answer names)."""
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        got = b""
        while b"\r\n\r\n" not in got or len(got.partition(b"\r\n\r\n")[2]) < _length(got):
            part = sock.recv(65536)
            if not part:
                break
            got += part
    return int(got.split(b" ", 2)[1]), got


def _length(got: bytes) -> int:
    for line in got.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


def request(method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"",
            version: str = "HTTP/1.1") -> bytes:  # fmt: skip
    lines = [f"{method} {target} {version}", "Host: gw", *(f"{k}: {v}" for k, v in
             (headers or {}).items())]  # fmt: skip
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


BODY = json.dumps(chat()).encode()
JSON = {"Content-Type": "application/json", **AUTH}


@pytest.mark.parametrize("target", ["/%6detrics", "/metric%73", "/%72eadyz", "/v1/chat%2Fcompletions",
                                    "/%761/chat/completions", "/v1%2Fmodels"])  # fmt: skip
def test_a_path_is_routed_as_it_was_sent(gateway: Gateway, target: str) -> None:  # noqa: F811
    """aiohttp matched the decoded path: `/%6detrics` was /metrics past a front proxy that
    filters the literal path, and an escaped slash got a 405 naming the endpoint's method."""
    method = "POST" if "chat" in target or "v1/" in target.replace("%2F", "/") else "GET"
    status, got = exchange(
        gateway, request(method, target, JSON, BODY if method == "POST" else b"")
    )
    assert status == 404 and b"unknown_endpoint" in got, got[:300]


def test_a_model_id_may_be_escaped(gateway: Gateway) -> None:  # noqa: F811
    """SDKs escape the slash of `@provider/model` in `GET /v1/models/{id}`."""
    status, got = exchange(gateway, request("GET", "/v1/models/%40mock%2Fecho", AUTH))
    assert status == 200 and json.loads(got.partition(b"\r\n\r\n")[2])["id"] == "@mock/echo"


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/0.9"])
def test_only_http_1_is_spoken(gateway: Gateway, version: str) -> None:  # noqa: F811
    status, got = exchange(gateway, request("POST", "/v1/chat/completions", JSON, BODY, version))
    assert status == 505 and b"http_version_not_supported" in got, got[:300]
    assert exchange(gateway, request("GET", "/healthz", version="HTTP/1.0"))[0] == 200


@pytest.mark.parametrize(("headers", "status"), [
    ({"Content-Encoding": "x-foo"}, 415),
    ({"Content-Encoding": "gzip, gzip"}, 415),
    ({"Transfer-Encoding": "gzip, chunked"}, 501),
    ({"Transfer-Encoding": "identity, chunked"}, 501),
])  # fmt: skip
def test_a_coding_the_gateway_cannot_undo_is_refused(
    gateway: Gateway,  # noqa: F811
    headers: dict[str, str],
    status: int,
) -> None:
    """Each was read as if the body had no coding: `gzip, chunked` lost its gzip layer."""
    chunked = "Transfer-Encoding" in headers
    body = gzip.compress(BODY) if "gzip" in str(headers.values()) else BODY
    framed = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" if chunked else body
    head = ["POST /v1/chat/completions HTTP/1.1", "Host: gw",
            *(f"{k}: {v}" for k, v in {**JSON, **headers}.items())]  # fmt: skip
    if not chunked:
        head.append(f"Content-Length: {len(body)}")
    got_status, got = exchange(gateway, ("\r\n".join(head) + "\r\n\r\n").encode() + framed)
    assert got_status == status, got[:300]
    assert b"connection: close" in got.lower()


def test_codings_the_gateway_decodes_are_served(gateway: Gateway) -> None:  # noqa: F811
    body = gzip.compress(BODY)
    headers = {**JSON, "Content-Encoding": "GZIP"}
    assert exchange(gateway, request("POST", "/v1/chat/completions", headers, body))[0] == 200
    chunked = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json"
               b"\r\nAuthorization: Bearer " + KEY.encode() + b"\r\nTransfer-Encoding: Chunked\r\n"
               b"\r\n" + f"{len(BODY):x}\r\n".encode() + BODY + b"\r\n0\r\n\r\n")  # fmt: skip
    assert exchange(gateway, chunked)[0] == 200


@pytest.mark.parametrize("twice", [
    "x-portkey-api-key: {key}\r\nx-portkey-api-key: {key}",
    "Authorization: Bearer {key}\r\nAuthorization: Bearer other",
])  # fmt: skip
def test_a_key_header_sent_twice_is_no_key(gateway: Gateway, twice: str) -> None:  # noqa: F811
    raw = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n{twice.format(key=KEY)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode()
    assert exchange(gateway, raw + BODY)[0] == 401


def test_only_http_spaces_are_trimmed_from_a_key(gateway: Gateway) -> None:  # noqa: F811
    for pad in ("\u00a0", "\u3000"):
        raw = request("POST", "/v1/chat/completions", {"Content-Type": "application/json"}, BODY)
        raw = raw.replace(b"Host: gw", b"Host: gw\r\nx-portkey-api-key: " + (KEY + pad).encode())
        assert exchange(gateway, raw)[0] == 401
    raw = request("POST", "/v1/chat/completions", {"Content-Type": "application/json"}, BODY)
    raw = raw.replace(b"Host: gw", b"Host: gw\r\nx-portkey-api-key: \t" + KEY.encode() + b" ")
    assert exchange(gateway, raw)[0] == 200


def test_no_answer_quotes_a_lone_surrogate(gateway: Gateway) -> None:  # noqa: F811
    """A header's bytes that are not UTF-8 came back as `\\udce9` escapes: JSON that strict
    parsers (serde_json) refuse."""
    raw = request("POST", "/v1/chat/completions", JSON, BODY)
    raw = raw.replace(b"Host: gw", b"Host: gw\r\nx-portkey-config: by-ti\xe9r")
    status, got = exchange(gateway, raw)
    text = got.partition(b"\r\n\r\n")[2].decode("utf-8")
    assert status == 404 and "\\ud" not in text.lower(), text
    json.loads(text)["error"]["message"].encode("utf-8")  # valid Unicode throughout
