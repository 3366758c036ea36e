"""Slow clients cannot hold the gateway: a connection idle, or sending its headers or body
slower than `--client-timeout`, or not reading what is streamed to it, is closed, and what
a stream used is settled. Real gateway processes on loopback sockets, raw client sockets."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.gateway.capped_site import SCAN
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import AUTH, CREDENTIAL, KEY, bundle, chat  # noqa: F401

TIMEOUT = 1.0  # --client-timeout of these gateways
WAIT = 8.0  # how long a test waits for the gateway to act at most


@pytest.fixture
def gateway(bundle: Path) -> Iterator[Gateway]:  # noqa: F811  # bundle: the shared fixture
    gw = Gateway(bundle, "--client-timeout", str(TIMEOUT), env={"GW_OPS_FAKE_KEY": CREDENTIAL})
    try:
        yield gw
    finally:
        gw.stop()


def connect(gw: Gateway) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Did the gateway close the connection within `seconds`? And what it sent before."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
        return True, got
    except TimeoutError:
        return False, got
    except ConnectionResetError:
        return True, got


def head(body: bytes, length: int | None = None) -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length or len(body)}\r\n\r\n"
            ).encode()  # fmt: skip


def served(gw: Gateway) -> socket.socket:
    """A new connection whose chat request is answered 200 (the connection stays open)."""
    sock = connect(gw)
    body = json.dumps(chat()).encode()
    sock.sendall(head(body) + body)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    return sock


def test_an_idle_connection_and_one_whose_headers_never_end_are_closed(gateway: Gateway) -> None:
    idle, partial = connect(gateway), connect(gateway)
    partial.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
    start = time.monotonic()
    for sock in (idle, partial):
        closed, _ = closed_within(sock, WAIT)
        assert closed
        sock.close()
    assert time.monotonic() - start < TIMEOUT + 5
    # meanwhile and after, others are served
    assert gateway.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
    assert not gateway.events("internal_error") and "Traceback" not in gateway.text()


def test_a_connection_idle_between_requests_is_closed(gateway: Gateway) -> None:
    sock = connect(gateway)
    body = json.dumps(chat()).encode()
    sock.sendall(head(body) + body)
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200")
    closed, _ = closed_within(sock, WAIT)
    assert closed
    sock.close()


def test_a_body_that_does_not_arrive_in_time_gets_408(gateway: Gateway) -> None:
    sock = connect(gateway)
    body = json.dumps(chat()).encode()
    sock.sendall(head(body, len(body) + 100) + body)  # 100 bytes short, and never sent
    # answered at once; closed once aiohttp's lingering read (10 s) of the rest gives up
    closed, got = closed_within(sock, TIMEOUT + 10 + WAIT)
    sock.close()
    assert closed and got.startswith(b"HTTP/1.1 408"), got[:200]
    assert b"connection: close" in got.lower()  # never reused: its body was not read
    error = json.loads(got.split(b"\r\n\r\n", 1)[1].split(b"\r\n")[-1] or b"{}")
    assert error["error"]["code"] == "request_body_timeout"
    line = next(line for line in gateway.awaited("request") if line["status"] == 408)
    assert line["workspace"] == "ops"
    assert not gateway.events("internal_error") and "Traceback" not in gateway.text()


def test_a_stream_the_client_stops_reading_is_ended_and_settled(gateway: Gateway) -> None:
    """The mock echoes each word as an event: 300,000 words make ~50 MB of events, more than
    the sockets can buffer, so the gateway's writes wait for a client that never reads."""
    sock = connect(gateway)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    words = " ".join(["w"] * 300_000)
    body = json.dumps(chat(stream=True, messages=[{"role": "user", "content": words}])).encode()
    sock.sendall(head(body) + body)
    deadline = time.monotonic() + WAIT + 10
    lines: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        lines = [line for line in gateway.events("request") if line.get("stream")]
        if lines:
            break
        time.sleep(0.2)
    sock.close()
    assert lines, gateway.text()[-2000:]
    # our write deadline ends it, or the kernel's TCP_USER_TIMEOUT (same length) drops the
    # connection first: either way it ends, as the client's doing (499), and is settled
    assert lines[0]["stream"] in ("client_timeout", "client_gone") and lines[0]["status"] == 499
    assert lines[0]["cost_usd"] != "0"  # what it used is charged: the input at least
    assert gateway.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
    assert not gateway.events("internal_error") and "Traceback" not in gateway.text()


def test_a_slow_upstream_is_not_a_slow_client(gateway: Gateway) -> None:
    """A stream that lasts several client timeouts (the upstream paces it), read as it
    comes, and a slow whole answer, are served to the end."""
    words = " ".join(["w"] * 8)
    body = chat(stream=True, messages=[{"role": "user", "content": words}])
    started = time.monotonic()
    status, _, data = gateway.request("POST", "/v1/chat/completions", body,
                                      {**AUTH, "x-mock-chunk-ms": "400"}, timeout=30)  # fmt: skip
    assert status == 200 and data.rstrip().endswith(b"data: [DONE]")
    assert time.monotonic() - started > 3 * TIMEOUT
    status, _, _ = gateway.request("POST", "/v1/chat/completions", chat(),
                                   {**AUTH, "x-mock-latency-ms": "2500"}, timeout=30)  # fmt: skip
    assert status == 200
    assert [line["stream"] for line in gateway.events("request") if "stream" in line] == ["ok"]


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux's TCP_USER_TIMEOUT")
def test_a_whole_answer_the_client_stops_reading_is_dropped(gateway: Gateway) -> None:
    """A ~6 MB echo answer, more than the sockets buffer, to a client that reads nothing for
    a while: the connection is dropped (the kernel's TCP_USER_TIMEOUT, set from
    --client-timeout), so what the client reads later is cut short."""
    sock = connect(gateway)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    words = " ".join(["w"] * 3_000_000)
    body = json.dumps(chat(messages=[{"role": "user", "content": words}])).encode()
    sock.sendall(head(body) + body)
    time.sleep(TIMEOUT + 4)
    _, got = closed_within(sock, WAIT)
    sock.close()
    header, _, answer = got.partition(b"\r\n\r\n")
    assert header.startswith(b"HTTP/1.1 200"), got[:200]
    length = int(re.search(rb"(?i)content-length: (\d+)", header)[1])  # type: ignore[index]
    assert len(answer) < length  # dropped, not held until the client came back for it
    assert gateway.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
    assert not gateway.events("internal_error") and "Traceback" not in gateway.text()


@dataclass
class Capped:
    gw: Gateway  # with --max-connections 4
    held: list[socket.socket]  # the test's client sockets, closed after it


@pytest.fixture
def capped(bundle: Path) -> Iterator[Capped]:  # noqa: F811
    """A gateway with `--max-connections 4`; after the test its sockets are closed, the
    gateway is stopped, and it must have logged no internal error."""
    cap = Capped(Gateway(bundle, "--max-connections", "4", env={"GW_OPS_FAKE_KEY": CREDENTIAL}),
                 [])  # fmt: skip
    try:
        yield cap
    finally:
        for sock in cap.held:
            sock.close()
        cap.gw.stop()
    assert not cap.gw.events("internal_error") and "Traceback" not in cap.gw.text()


def test_at_the_cap_a_new_connection_takes_the_place_of_the_oldest_waiting_one(
    capped: Capped,
) -> None:
    gw, held = capped.gw, capped.held
    assert gw.events("listening")[0]["max_connections"] == 4
    held.extend(connect(gw) for _ in range(3))
    partial = connect(gw)  # headers that never end: waiting for its request, too
    partial.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
    held.append(partial)
    time.sleep(0.3)  # accepted and counted
    body = json.dumps(chat()).encode()
    for expected in range(2):  # each newcomer is served; the oldest waiting one goes
        held.append(served(gw))
        closed, got = closed_within(held[expected], WAIT)
        assert closed and got == b"", got[:200]  # closed, nothing written to it
    held[2].sendall(head(body) + body)  # the others are served as before
    assert held[2].recv(65536).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/nowhere"])
def test_at_the_cap_connections_answered_before_their_body_was_read_make_room(
    capped: Capped, path: str
) -> None:
    # no key (401) or no such path (aiohttp's 404): answered at once, and then aiohttp reads
    # and drops the body for up to 10 s; a caller without a key must not hold slots that way
    gw, held = capped.gw, capped.held
    for _ in range(4):
        sock = connect(gw)
        held.append(sock)
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json"
                     "\r\nContent-Length: 1000000\r\n\r\n{".encode())  # fmt: skip
        assert sock.recv(65536).split(b" ")[1] in (b"401", b"404")
    held.append(served(gw))
    closed, _ = closed_within(held[0], WAIT)  # the oldest of them made room
    assert closed


def trickle(gw: Gateway, held: list[socket.socket], count: int) -> bytes:
    """`count` connections, one after another, each sending all of a request but the rest
    of its body after the first 10 bytes; the whole body is returned."""
    body = json.dumps(chat()).encode()
    for _ in range(count):
        held.append(connect(gw))
        held[-1].sendall(head(body) + body[:10])
        time.sleep(0.05)  # in this order
    return body


def test_at_the_cap_the_slowest_body_is_cut_for_a_newcomer(capped: Capped) -> None:
    # callers with a key trickle bodies on every connection: the one whose body has been
    # arriving longest is cut (logged 408 request_body_too_slow)
    gw, held = capped.gw, capped.held
    body = trickle(gw, held, 4)
    time.sleep(0.3)  # all four are reading
    held.append(served(gw))
    closed, _ = closed_within(held[0], WAIT)  # the oldest trickler
    assert closed
    held[1].sendall(body[10:])  # the others go on
    assert held[1].recv(65536).startswith(b"HTTP/1.1 200")
    gw.stop()  # its log is complete
    assert 408 in [line["status"] for line in gw.events("request")]


def test_at_the_cap_a_waiting_connection_goes_before_any_body(capped: Capped) -> None:
    # three bodies arriving, then a connection that sends nothing: the connection goes, the
    # bodies go on. (The cap compared when each began: the oldest body was cut, so a client
    # opening connections that send nothing cut every upload begun before it: a review.)
    gw, held = capped.gw, capped.held
    body = trickle(gw, held, 3)
    quiet = connect(gw)
    time.sleep(0.3)
    held.append(served(gw))
    assert closed_within(quiet, WAIT)[0]  # the one serving no request
    quiet.close()
    for sock in held[:3]:  # each body, the oldest too, arrives whole and is answered
        sock.sendall(body[10:])
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_flood_of_connections_sending_nothing_cuts_no_upload(capped: Capped) -> None:
    gw, held = capped.gw, capped.held
    body = trickle(gw, held, 1)
    for _ in range(12):  # no key, no bytes: each takes the place of the one before
        held.append(connect(gw))
        time.sleep(0.05)
    held[0].sendall(body[10:])
    assert held[0].recv(65536).startswith(b"HTTP/1.1 200")


def test_when_every_connection_is_busy_a_new_one_is_refused(capped: Capped) -> None:
    gw, busy = capped.gw, capped.held
    body = json.dumps(chat()).encode()
    slow = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {KEY}"
            "\r\nContent-Type: application/json\r\nx-mock-latency-ms: 3000\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip
    busy.extend(connect(gw) for _ in range(4))
    for sock in busy:  # a request in progress on each: its upstream answers in 3 s
        sock.sendall(slow)
    time.sleep(0.3)
    refused = connect(gw)
    closed, got = closed_within(refused, WAIT)
    refused.close()
    assert closed and got.startswith(b"HTTP/1.1 503"), got[:200]
    assert b"retry-after: 1" in got.lower() and b"too_many_connections" in got
    assert busy[0].recv(65536).startswith(b"HTTP/1.1 200")  # those open are served
    for sock in busy[1:]:
        sock.close()
    time.sleep(0.3)  # their slots are free again
    assert gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200


def test_at_the_cap_idle_connections_behind_the_oldest_busy_ones_make_room(
    bundle: Path,  # noqa: F811
) -> None:
    # more requests in progress (waiting on their upstream) than the cap's first look covers
    # (the oldest SCAN connections), then idle connections filling the table: newcomers are
    # still served, each in the place of an idle one, not refused because the oldest are busy
    busy, idle = SCAN + 4, 8
    gw = Gateway(bundle, "--max-connections", str(busy + idle), "--drain-timeout", "1",
                 env={"GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    held: list[socket.socket] = []
    try:
        body = json.dumps(chat()).encode()
        slow = head(body).replace(b"\r\n\r\n", b"\r\nx-mock-latency-ms: 10000\r\n\r\n")
        for _ in range(busy):
            held.append(connect(gw))
            held[-1].sendall(slow + body)
        time.sleep(1.0)  # all in progress
        held.extend(connect(gw) for _ in range(idle))
        time.sleep(0.3)  # the table is full
        for _ in range(3):
            held.append(served(gw))
        assert not gw.events("internal_error")
    finally:
        for sock in held:
            sock.close()
        gw.stop()
