"""The bytes of request bodies one gateway process holds at once are bounded
(`--max-body-memory`, half of it per workspace): past either a large body is refused with
503 as it arrives, small ones still pass, a body announced larger than `--max-body-bytes` is
refused before any of it is read, and every request gives its share back however it ends.
Real gateway processes on loopback sockets, raw client sockets where a client misbehaves."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.gateway.body_budget import SHARE, SMALL, BodyBudget, Lease
from tests.runtime.conftest import compile_files
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import CREDENTIAL, KEY, catalog, chat

MAX_BODY = 600_000  # --max-body-bytes of these gateways: also one workspace's share
BUDGET = SHARE * MAX_BODY  # --max-body-memory
WAIT = 8.0  # seconds a test waits for the gateway to act at most
OTHERS = ("w2", "w3")  # workspaces besides `ops`, each with the key "<slug>-key-FAKE"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    files = catalog()
    for slug in OTHERS:
        digest = hashlib.sha256(f"{slug}-key-FAKE".encode()).hexdigest()
        files["w.yaml"] += (
            f"---\nkind: Workspace\nslug: {slug}\napi_keys: [{{name: k, sha256: {digest}}}]\n"
        )
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", files))
    return path


@pytest.fixture
def gateway(bundle: Path) -> Iterator[Gateway]:
    gw = Gateway(bundle, "--max-body-bytes", str(MAX_BODY), "--max-body-memory", str(BUDGET),
                 "--client-timeout", "5", env={"GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    try:
        yield gw
    finally:
        gw.stop()


def body_of(size: int) -> bytes:
    """A valid chat request of exactly `size` bytes."""
    base = json.dumps(chat(padding="")).encode()
    return json.dumps(chat(padding="x" * (size - len(base)))).encode()


def connect(gw: Gateway) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=WAIT)


def key(workspace: str) -> str:
    return KEY if workspace == "ops" else f"{workspace}-key-FAKE"


def head(length: int, workspace: str = "ops") -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "
            f"{key(workspace)}\r\nContent-Type: application/json\r\nContent-Length: {length}"
            "\r\n\r\n").encode()  # fmt: skip


def hold(gw: Gateway, size: int, workspace: str = "ops") -> socket.socket:
    """A client that sends all but 10 bytes of a `size`-byte body, then waits."""
    sock = connect(gw)
    sock.sendall(head(size, workspace) + body_of(size)[: size - 10])
    return sock


def post(gw: Gateway, body: bytes, chunked: bool = False,
         workspace: str = "ops") -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    host, port = gw.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        headers = {"Authorization": f"Bearer {key(workspace)}", "Content-Type": "application/json"}
        if chunked:  # no Content-Length: the gateway learns the size as it reads
            parts = (body[i : i + 50_000] for i in range(0, len(body), 50_000))
            conn.request("POST", "/v1/chat/completions", parts, headers, encode_chunked=True)
        else:
            conn.request("POST", "/v1/chat/completions", body, headers)
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    except (ConnectionResetError, BrokenPipeError):  # answered and closed while we sent
        return 0, {}, b""
    finally:
        conn.close()


def until(status: int, send: object, seconds: float = WAIT) -> tuple[int, dict[str, str], bytes]:
    """`send()` again until it answers `status` (the gateway reads and frees concurrently)."""
    end = time.monotonic() + seconds
    while True:
        got = send()  # type: ignore[operator]
        if got[0] == status or time.monotonic() > end:
            return got  # type: ignore[no-any-return]
        time.sleep(0.1)


def test_bodies_past_the_budget_are_refused_and_given_back(gateway: Gateway) -> None:
    # two workspaces each send most of a large body and stop: 1,000,000 of 1,200,000 held
    holders = [hold(gateway, 500_000, "ops"), hold(gateway, 500_000, "w2")]
    # a third workspace's large body does not fit the process's budget (it fits its share):
    # refused, with Retry-After, and its connection closed
    status, headers, answer = until(503, lambda: post(gateway, body_of(300_000), workspace="w3"))
    assert status == 503, (status, answer[:300])
    assert json.loads(answer)["error"]["code"] == "body_memory_full"
    assert headers["retry-after"] == "1" and headers.get("connection") == "close"
    # ordinary requests still pass, whole or chunked
    assert post(gateway, json.dumps(chat()).encode(), workspace="w3")[0] == 200
    assert post(gateway, body_of(SMALL - 1000), chunked=True)[0] == 200
    # the holders go away mid-body: their shares come back, all of them (a body of nearly
    # a whole share fits again only if less than 1,000 bytes are still counted for it)
    for sock in holders:
        sock.close()
    for workspace in ("ops", "w2"):
        status, _, answer = until(200, lambda w=workspace: post(gateway, body_of(MAX_BODY - 1000),
                                                                workspace=w))  # fmt: skip
        assert status == 200, (workspace, status, answer[:300])
    assert not gateway.events("internal_error") and "Traceback" not in gateway.text()


def test_one_workspace_holds_at_most_half_and_the_others_are_served(gateway: Gateway) -> None:
    holders = [hold(gateway, 500_000, "ops")]  # ops floods: most of its share is held
    status, _, answer = until(503, lambda: post(gateway, body_of(150_000)))  # past its share
    assert status == 503 and json.loads(answer)["error"]["code"] == "body_memory_full"
    # another workspace's large body is served meanwhile: the flood took only ops' half
    assert post(gateway, body_of(MAX_BODY - 1000), workspace="w2")[0] == 200
    assert post(gateway, json.dumps(chat()).encode())[0] == 200  # and ops' small ones
    for sock in holders:
        sock.close()
    status, _, _ = until(200, lambda: post(gateway, body_of(MAX_BODY - 1000)))
    assert status == 200


def test_every_way_a_request_ends_gives_its_share_back(gateway: Gateway) -> None:
    big = 200_000
    endings = [
        post(gateway, body_of(big))[0],  # answered
        post(gateway, b"{" + b" " * big)[0],  # not JSON
        post(gateway, json.dumps(chat(model="@mock/none", padding="x" * big)).encode())[0],
        post(gateway, json.dumps(chat(stream=True, padding="x" * big)).encode())[0],  # stream
        post(gateway, body_of(MAX_BODY + 10_000), chunked=True)[0],  # too large, found reading
    ]
    assert endings[:4] == [200, 400, 404, 200] and endings[4] in (413, 0), endings
    sock = connect(gateway)  # a body that never ends: 408 after the client timeout
    sock.sendall(head(big) + body_of(big)[: big - 100])
    assert sock.recv(65536).startswith(b"HTTP/1.1 408")
    sock.close()
    assert post(gateway, body_of(MAX_BODY - 1000))[0] == 200  # nothing was left counted


def test_a_body_announced_too_large_is_refused_before_it_is_sent(gateway: Gateway) -> None:
    sock = connect(gateway)
    sock.sendall(head(10**9))  # and then nothing: the answer must not wait for the body
    start = time.monotonic()
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"request_too_large" in answer and b"Connection: close" in answer
    assert time.monotonic() - start < 2.0  # not the client timeout (5 s)
    sock.close()


def test_announced_lengths_alone_do_not_hold_the_budget(gateway: Gateway) -> None:
    # headers promising large bodies, none of it sent: nothing is counted until it arrives
    silent = [connect(gateway) for _ in range(3)]
    for sock in silent:
        sock.sendall(head(MAX_BODY - 1000))
    time.sleep(0.3)
    assert post(gateway, body_of(MAX_BODY - 1000))[0] == 200
    for sock in silent:
        sock.close()


def test_a_client_gone_mid_body_is_logged_as_gone_not_as_a_fault(gateway: Gateway) -> None:
    sock = connect(gateway)
    sock.sendall(head(100_000) + body_of(100_000)[:40_000])
    time.sleep(0.3)  # the gateway is reading it
    sock.close()
    end = time.monotonic() + WAIT
    while not gateway.events("request") and time.monotonic() < end:
        time.sleep(0.1)
    assert [line["status"] for line in gateway.events("request")] == [499]
    assert not gateway.events("internal_error") and "Traceback" not in gateway.text()


# -- Expect: 100-continue: a body is invited only once it would be read ---------------------

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def expecting(length: int, workspace: str | None = "ops", expect: str = "100-continue",
              path: str = "/v1/chat/completions") -> bytes:  # fmt: skip
    """Headers announcing a body of `length` bytes that the client holds until invited."""
    auth = f"Authorization: Bearer {key(workspace)}\r\n" if workspace else ""
    return (f"POST {path} HTTP/1.1\r\nHost: gw\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {length}\r\nExpect: {expect}\r\n\r\n").encode()  # fmt: skip


def first_answer(sock: socket.socket) -> bytes:
    """What the gateway sends first: an interim 100 alone, or a whole final answer."""
    got = b""
    while b"\r\n\r\n" not in got:
        part = sock.recv(65536)
        if not part:
            return got
        got += part
    if got.startswith(CONTINUE):
        return got
    head_end = got.index(b"\r\n\r\n") + 4
    length = int(got.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    while len(got) < head_end + length:
        got += sock.recv(65536)
    return got


def closed(sock: socket.socket) -> bool:
    """The gateway closed the connection (within WAIT), having sent nothing more."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize(
    ("workspace", "length", "expect", "path", "status", "code"),
    [
        (None, 1000, "100-continue", "", 401, "invalid_api_key"),  # no key: nothing to invite
        ("ops", 10**9, "100-continue", "", 413, "request_too_large"),  # announced too large
        ("ops", 1000, "a-treat", "", 417, "expectation_failed"),  # not an expectation we meet
        ("ops", 1000, "100-continue", "/v1/nowhere", 404, "unknown_endpoint"),  # no route
    ],
)
def test_a_body_refused_before_it_is_read_is_not_invited(
    gateway: Gateway, workspace: str | None, length: int, expect: str, path: str, status: int,
    code: str,
) -> None:  # fmt: skip
    sock = connect(gateway)
    sock.sendall(expecting(length, workspace, expect, path or "/v1/chat/completions"))
    answer = first_answer(sock)  # the refusal itself, no "100 Continue" before it
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert code.encode() in answer and b"Connection: close" in answer
    if expect != "100-continue":  # an expectation we do not know holds no body back
        sock.sendall(b"x" * length)
    assert closed(sock)  # and none the client was never asked for is waited on
    sock.close()
    logged = [line["status"] for line in gateway.awaited("request", 0 if path else 1)]
    assert logged == ([] if path else [status])  # an unrouted path is not a request


def test_an_expectation_we_do_not_meet_is_refused_however_the_body_came(gateway: Gateway) -> None:
    """A review: `Expect: a-treat` was a 417 when the body came after the head, and a 200
    when it came in the same write (the expectation was looked at only to invite a body)."""
    data = body_of(1_000)
    sock = connect(gateway)
    sock.sendall(expecting(len(data), "ops", "a-treat") + data)
    answer = first_answer(sock)
    assert answer.startswith(b"HTTP/1.1 417 "), answer[:200]
    assert b"expectation_failed" in answer and b"a-treat" not in answer
    sock.close()


@pytest.mark.parametrize("expect", ["100-continue,", ", 100-continue", ""])
def test_an_empty_expectation_item_is_none(gateway: Gateway, expect: str) -> None:
    """RFC 9110 5.6.1: empty list items are ignored (the fixes' review: a trailing comma
    was a 417)."""
    sock = connect(gateway)
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: gw\r\nExpect: {expect}\r\n"
                 "Expect: \r\n\r\n".encode())  # fmt: skip
    assert first_answer(sock).startswith(b"HTTP/1.1 200 ")
    sock.close()


@pytest.mark.parametrize("head", [
    "GET /v1/models HTTP/1.1\r\nExpect: a-treat\r\n",  # a route that reads no body
    "GET /readyz HTTP/1.1\r\nExpect: a-treat\r\n",
    "POST /v1/chat/completions HTTP/1.1\r\nExpect: 100-continue\r\nExpect: a-treat\r\n"
    "Content-Length: 2\r\n",  # a second header
    "POST /v1/chat/completions HTTP/1.1\r\nExpect: 100-continue, a-treat\r\n"
    "Content-Length: 2\r\n",  # a list
])  # fmt: skip
def test_an_unmet_expectation_is_refused_on_every_route(gateway: Gateway, head: str) -> None:
    sock = connect(gateway)
    auth = f"Authorization: Bearer {key('ops')}\r\nHost: gw\r\n"
    sock.sendall((head + auth + "\r\n").encode() + (b"{}" if "Length" in head else b""))
    answer = first_answer(sock)
    assert answer.startswith(b"HTTP/1.1 417 "), answer[:200]
    assert b"expectation_failed" in answer and b"a-treat" not in answer
    sock.close()


def test_what_no_route_takes_is_answered_in_the_clients_error_shape(gateway: Gateway) -> None:
    status, headers, answer = gateway.request("GET", "/v1/images/generations")
    assert status == 404 and headers["content-type"].startswith("application/json")
    error = json.loads(answer)["error"]
    assert error["code"] == "unknown_endpoint" and "/v1/chat/completions" in error["message"]
    assert "images" not in error["message"]  # nothing the client sent is quoted back
    status, headers, answer = gateway.request("GET", "/v1/chat/completions")
    assert status == 405 and headers["allow"] == "POST"
    assert json.loads(answer)["error"]["code"] == "method_not_allowed"
    status, headers, answer = gateway.request("DELETE", "/v1/models")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, _, answer = gateway.request("GET", "/v1/messages")  # Anthropic's shape there
    assert status == 405 and json.loads(answer)["type"] == "error"
    assert gateway.request("GET", "/healthz")[0] == 200  # the routes themselves still answer


def test_a_body_that_fits_is_invited_once_and_served(gateway: Gateway) -> None:
    sock = connect(gateway)
    data = body_of(200_000)
    for _ in range(2):  # and the connection stays usable for the next request
        sock.sendall(expecting(len(data)))
        assert first_answer(sock) == CONTINUE
        sock.sendall(data)
        answer = first_answer(sock)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
        assert CONTINUE not in answer and b"Connection: close" not in answer
    sock.close()


def test_a_body_the_budget_has_no_room_for_is_not_invited(gateway: Gateway) -> None:
    holders = [hold(gateway, 500_000, "ops"), hold(gateway, 500_000, "w2")]
    time.sleep(0.3)  # both are counted
    sock = connect(gateway)
    sock.sendall(expecting(300_000, "w3"))
    answer = first_answer(sock)
    assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
    assert b"body_memory_full" in answer and closed(sock)
    sock.close()
    for holder in holders:
        holder.close()
    # with room again, the same request is invited
    sock = until_invited(gateway, expecting(300_000, "w3"))
    sock.sendall(body_of(300_000))
    assert first_answer(sock).startswith(b"HTTP/1.1 200 ")
    sock.close()


def until_invited(gw: Gateway, headers: bytes) -> socket.socket:
    end = time.monotonic() + WAIT
    while True:
        sock = connect(gw)
        sock.sendall(headers)
        if first_answer(sock) == CONTINUE or time.monotonic() > end:
            return sock
        sock.close()
        time.sleep(0.1)


# -- the budget's own law -------------------------------------------------------------------

steps = st.lists(
    st.one_of(
        st.tuples(st.just("take"), st.integers(0, 5), st.integers(0, 3 * SMALL)),
        st.tuples(st.just("close"), st.integers(0, 5), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(SMALL, 8 * SMALL), program=steps)
def test_the_budget_counts_exactly_and_only_small_bodies_pass_it(
    limit: int, program: list[tuple[str, int, int]]
) -> None:
    budget = BodyBudget(limit)
    leases: dict[int, Lease] = {}  # lease i belongs to workspace "w{i % 3}"
    for op, which, size in program:
        if which not in leases:
            leases[which] = budget.lease()
            leases[which].workspace = f"w{which % 3}"
        lease = leases[which]
        if op == "close":
            lease.close()
            continue
        before_held, before_size = budget.held, lease.size
        own = sum(one.size for one in leases.values() if one.workspace == lease.workspace)
        fits = budget.held + size <= limit and own + size <= limit // SHARE
        assert lease.fits(size) == (fits or before_size + size <= SMALL)  # and takes nothing
        taken = lease.take(size)
        assert taken == (fits or before_size + size <= SMALL)
        assert (budget.held, lease.size) == (
            (before_held + size, before_size + size) if taken else (before_held, before_size)
        )
        assert budget.held == sum(one.size for one in leases.values())
        for workspace in ("w0", "w1", "w2"):  # per workspace, exact, and no entry at 0
            held = sum(one.size for one in leases.values() if one.workspace == workspace)
            assert budget.by_workspace.get(workspace) == (held or None)
    for lease in leases.values():
        lease.close()
    assert budget.held == 0 and budget.by_workspace == {}
