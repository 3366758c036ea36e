"""Whatever a client sends, the gateway answers: no internal error, no hang, no answer
outside HTTP, an error body in the client's shape, and no secret in its log. Hypothesis
writes whole requests (method, path, Portkey's headers with any values, JSON bodies with
any fields) onto raw loopback sockets of one real gateway process."""

from __future__ import annotations

import json
import socket
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.gateway.app import ENDPOINTS, GETS
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import CREDENTIAL, KEY, bundle, gateway  # noqa: F401

TIMEOUT = 10.0  # seconds an answer may take at most (the mock answers at once)

PATHS = [*ENDPOINTS, *GETS, "/", "/v1", "/v1/chat/completions/", "/v1/models?workspace=ops",
         "/v1/chat/completions?stream=true", "/v1/../v1/models", "/%00", "//v1/models",
         # request targets that are not paths: no route's pattern can take them
         "*", "example.com:443", "http://gw", "http://gw/v1/models", "http://gw?x=1",
         "/v1/models/@mock/echo", "/v1/models/@mock%2Fecho", "/v1/models/%00"]  # fmt: skip
NAMES = [
    "x-portkey-config", "x-portkey-provider",
    "x-portkey-virtual-key", "x-portkey-metadata", "x-portkey-trace-id",
    "x-portkey-request-timeout", "x-portkey-forward-headers", "x-portkey-cache-force-refresh",
    "traceparent", "tracestate", "content-type", "anthropic-version", "expect",
    "accept-encoding", "x-portkey-custom-host", "x-portkey-strict-open-ai-compliance",
]  # fmt: skip
VALUES = [
    f"Bearer {KEY}", KEY, "Bearer ", "@mock", "@openai-prod", "@nope", "mock", "{}", "[]",
    "null", '{"provider": "@mock"}', '{"provider": "@openai-prod", "retry": {"attempts": 2}}',
    '{"strategy": {"mode": "fallback"}, "targets": [{"provider": "@openai-prod"}, '
    '{"provider": "@mock"}]}',
    '{"strategy": {"mode": "loadbalance"}, "targets": [{"provider": "@mock", "weight": 0}]}',
    '{"request_timeout": 1}', '{"custom_host": "http://127.0.0.1:9"}', '{"a": [[[[[[]]]]]]}',
    "100-continue", "application/json", "text/plain", "-1", "0", "1e309", "authorization",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x" * 300,
]  # fmt: skip


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` three times in four (`|` alone picks each side half the time)."""
    return st.one_of(usual, usual, usual, other)


latin1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
values = st.sampled_from(VALUES) | st.text(latin1, max_size=120)
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))  # fmt: skip
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
MESSAGES = [{"role": "user", "content": "one two three"}]
models = mostly(st.sampled_from(["@mock/echo"] * 6 + ["@openai-prod/local-model", "echo",
                                "@mock/ecko", "", "@mock/", "@/echo", "local-model"]),
                anything)  # fmt: skip
# a valid chat request with up to three fields set or changed, each mostly to a valid value
FIELDS = {
    "messages": st.just(MESSAGES), "stream": st.booleans(), "max_tokens": st.integers(-5, 2**70),
    "input": st.just("hi"), "stream_options": st.just({"include_usage": True}),
    "n": st.integers(0, 3), "tools": st.just([]), "system": st.just("be brief"),
    "prompt": st.just("hi"), "metadata": st.just({"a": "b"}), "max_output_tokens": st.just(5),
    "temperature": st.floats(0, 2),
}  # fmt: skip
changes = st.lists(
    st.sampled_from(sorted(FIELDS)).flatmap(lambda name: st.tuples(st.just(name), mostly(FIELDS[name], anything))),
    max_size=3,
)  # fmt: skip
bodies = st.builds(
    lambda model, changed: json.dumps({"model": model, "messages": MESSAGES, **dict(changed)}).encode(),
    models, changes,
)  # fmt: skip
# any request line, key and headers: mostly refused at the gates
requests = st.fixed_dictionaries({
    "method": st.sampled_from(["POST", "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT"]),
    "path": st.sampled_from(PATHS),
    "auth": st.none() | st.tuples(st.sampled_from(["authorization", "x-portkey-api-key"]),
                                  st.sampled_from([f"Bearer {KEY}", KEY]) | values),
    "headers": st.dictionaries(st.sampled_from(NAMES), values, max_size=3),
    "body": bodies | st.binary(max_size=100),
})  # fmt: skip
# the caller known and an endpoint's POST: what gets past the gates to the router and upstream
admitted = st.fixed_dictionaries({
    "method": st.just("POST"),
    "path": st.sampled_from(list(ENDPOINTS)),
    "auth": st.sampled_from([("authorization", f"Bearer {KEY}"), ("x-portkey-api-key", KEY)]),
    "headers": mostly(st.just({}), st.dictionaries(st.sampled_from(NAMES), values, max_size=2)),
    "body": bodies,
})  # fmt: skip


def exchange(gw: Gateway, request: dict[str, Any]) -> bytes:
    """The request on a fresh connection (`Connection: close`), and all the gateway sent."""
    host, port = gw.url.removeprefix("http://").split(":")
    headers = dict(request["headers"])
    if request["auth"] is not None:
        name, value = request["auth"]
        headers[name] = value
    body: bytes = request["body"]
    head = f"{request['method']} {request['path']} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    holds_body = headers.get("expect", "").lower() == "100-continue"  # until invited
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(head.encode("latin-1") + (b"" if holds_body else body))
        got = b""
        while chunk := _recv(sock):
            got += chunk
            if holds_body and got.startswith(b"HTTP/1.1 100 ") and got.endswith(b"\r\n\r\n"):
                sock.sendall(body)  # invited
                holds_body, got = False, b""
        return got


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:  # closed after its answer with our bytes unread
        return b""


def check(answer: bytes, method: str) -> None:
    # an answer, within TIMEOUT (HTTP/1.0 when the request line itself was refused)
    assert answer[:9] in (b"HTTP/1.1 ", b"HTTP/1.0 "), answer[:200]
    status = int(answer[9:12])
    assert 200 <= status < 600 and status != 500, answer[:600]
    head, _, body = answer.partition(b"\r\n\r\n")
    if status >= 400:  # every refusal in JSON, aiohttp's own too
        assert b"\r\ncontent-type: application/json" in head.lower(), answer[:600]
    if status >= 400 and method != "HEAD":
        error = json.loads(body)  # whole, and in OpenAI's or Anthropic's shape
        assert "error" in error and (error.get("type") == "error" or "message" in error["error"])


def test_any_request_gets_a_typed_answer_and_nothing_leaks(gateway: Gateway) -> None:  # noqa: F811
    for kind, count in ((requests, 250), (admitted, 350)):

        @settings(max_examples=count, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
        @given(request=kind)
        def one(request: dict[str, Any]) -> None:
            check(exchange(gateway, request), request["method"])

        one()
    assert gateway.request("GET", "/healthz")[0] == 200  # and it still serves
    text = gateway.text()
    assert "internal_error" not in text and "Traceback" not in text, text[-3000:]
    assert KEY not in text and CREDENTIAL not in text
    assert all(line.startswith("{") for line in text.splitlines()), text[-2000:]


# a request with the caller's key, then one fault an HTTP parser must refuse (or not)
GOOD_HEAD = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {KEY}\r\n"
             "Content-Type: application/json\r\n")  # fmt: skip
BODY = json.dumps({"model": "@mock/echo", "messages": MESSAGES}).encode()
JUNK = st.sampled_from(list(b'\x00\x01\x0b\x7f\x80\xff \t:;\r\n"\\'))


@st.composite
def malformed(draw: st.DrawFn) -> bytes:
    """A request that is not HTTP/1.1, holding the key and `KEY`-like bytes in odd places."""
    head, body = GOOD_HEAD, BODY
    kind = draw(st.sampled_from(["byte", "length", "chunks", "long", "many", "tls"]))
    if kind == "length":
        length = draw(st.sampled_from(["-1", "1e3", KEY, "0x10", "1 2", ""]))
        head += f"Content-Length: {length}\r\n"
    elif kind == "chunks":
        size = draw(st.sampled_from(["zz", KEY, "-5", "1;" + "x" * 20000, "ffffffffffffffffff"]))
        head += "Transfer-Encoding: chunked\r\n"
        body = f"{size}\r\n{KEY}\r\n0\r\n\r\n".encode()
    elif kind == "long":
        where = draw(st.sampled_from(["x-long", "path"]))
        filler = KEY * draw(st.sampled_from([1100, 2100, 3000]))
        head = (head.replace("/v1/chat/completions", "/v1/" + filler) if where == "path"
                else head + f"x-long: {filler}\r\n")  # fmt: skip
    elif kind == "many":
        head += "".join(f"x-{i}: {KEY}\r\n" for i in range(draw(st.integers(120, 400))))
    elif kind == "tls":
        return b"\x16\x03\x01\x02\x00\x01\x00" + KEY.encode() + b"\r\n\r\n"
    if kind != "chunks":
        head += f"Content-Length: {len(body)}\r\n"
    raw = (head + "\r\n").encode() + body
    if kind == "byte":
        at = draw(st.integers(0, raw.index(b"\r\n\r\n")))
        raw = raw[:at] + bytes([draw(JUNK)]) * draw(st.integers(1, 3)) + raw[at:]
    return raw


def test_what_is_not_http_is_answered_in_json_quoting_nothing(gateway: Gateway) -> None:  # noqa: F811
    """aiohttp's own answer to an unparsable request is text/plain and quotes its bytes."""
    host, port = gateway.url.removeprefix("http://").split(":")

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(raw=malformed())
    def one(raw: bytes) -> None:
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)  # nothing more comes: no wait for a body
            got = b""
            while chunk := _recv(sock):
                got += chunk
        if not got:
            return  # incomplete, then the client went: nothing to answer
        assert got.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), got[:200]
        status = int(got[9:12])
        assert status != 500, got[:600]
        head, _, body = got.partition(b"\r\n\r\n")
        if status >= 400:
            assert b"content-type: application/json" in head.lower(), got[:600]
            assert "message" in json.loads(body)["error"]
        assert KEY.encode() not in got, got[:600]

    one()
    assert gateway.request("GET", "/healthz")[0] == 200
    assert "internal_error" not in gateway.text() and "Traceback" not in gateway.text()
