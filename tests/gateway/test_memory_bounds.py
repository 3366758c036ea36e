"""The gateway's memory stays bounded under a stream of refused requests.

Each refused request below carries a large body (or a new client string). Whatever keeps a
refused request alive past its answer (a reference cycle waiting for the collector, which
the server runs rarely; a cache keyed by what a client sent) shows here as resident memory
that grows with the number of requests: 200 bodies of 1 MiB held would be 200 MiB.
The process is the real `python -m runtime.gateway` (memory store), over real sockets."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.harness import TEAM_KEY, GatewayProcess

BODY = 1024 * 1024  # bytes per refused request
REQUESTS = 200
ALLOWED_GROWTH = 48 * 1024 * 1024  # bytes of resident memory, against 200 MiB if bodies stay


def rss(process: GatewayProcess) -> int:
    assert process.proc is not None
    for line in Path(f"/proc/{process.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def served(bundle: Path) -> Iterator[GatewayProcess]:
    """A gateway of its own: the session's one serves other tests' requests meanwhile."""
    process = GatewayProcess(bundle, bundle.parent / "gateway-memory.log").start()
    try:
        yield process
    finally:
        process.stop()


def post(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> int:
    conn.request("POST", "/v1/chat/completions", body,
                 {"Content-Type": "application/json", **headers})  # fmt: skip
    answer = conn.getresponse()
    answer.read()
    return answer.status


def chat(**extra: object) -> bytes:
    return json.dumps({"model": "@openai-main/gpt-4o-mini",
                       "messages": [{"role": "user", "content": "hi"}], **extra}).encode()  # fmt: skip


TEAM = {"Authorization": f"Bearer {TEAM_KEY}"}
# refusal -> (body of the i-th request, its headers, the status it gets)
REFUSALS = {
    "not JSON": (lambda i: b"{" + b" " * BODY, lambda i: TEAM, 400),
    "bad stream flag": (lambda i: chat(stream=3, pad="x" * BODY), lambda i: TEAM, 400),
    "unknown model": (
        lambda i: chat(model=f"@openai-main/nope-{i}", pad="x" * BODY),
        lambda i: TEAM,
        404,
    ),
    "new trace id, bad config": (
        lambda i: chat(pad="x" * BODY),
        lambda i: {**TEAM, "x-portkey-trace-id": f"t-{i}", "x-portkey-config": "{no"},
        400,
    ),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_refused_requests_leave_nothing_behind(served: GatewayProcess, refusal: str) -> None:
    body, headers, status = REFUSALS[refusal]
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        for i in range(20):  # warm: pools, first-use imports, the allocator's arenas
            assert post(conn, body(i), headers(i)) == status
        before = rss(served)
        for i in range(REQUESTS):
            assert post(conn, body(i), headers(i)) == status
        grown = rss(served) - before
    finally:
        conn.close()
    assert grown < ALLOWED_GROWTH, f"{refusal}: resident memory grew {grown >> 20} MiB"
