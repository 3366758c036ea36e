"""The upstream transport on real sockets: what it keeps between requests."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest

from runtime.gateway.transport import Transport
from runtime.upstream.base import Outbound
from tests.gateway.fakes import Answer, Fakes


def test_an_upstream_cookie_is_not_kept_for_later_requests(fakes: Fakes) -> None:
    """One connection pool serves every workspace: a cookie an upstream sets must not ride
    along on the next request, someone else's perhaps. (By a host name: aiohttp's default
    jar already ignores cookies from IP addresses.)"""
    fakes.openai.script(Answer(headers={"Set-Cookie": "session=FAKE-upstream-state; Path=/"}))
    url = fakes.openai.url.replace("127.0.0.1", "localhost") + "/chat/completions"
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    out = Outbound("POST", url, {"content-type": "application/json"}, body)

    async def twice() -> list[int]:
        transport = Transport()
        await transport.open()
        try:
            statuses = []
            for _ in range(2):
                resp = await transport.send(out, "openai", {})
                await resp.read(1 << 20)
                statuses.append(resp.status)
            return statuses
        finally:
            await transport.close()

    assert fakes.loop.run(twice()) == [200, 200]
    first, second = fakes.openai.requests
    assert "cookie" not in first.headers and "cookie" not in second.headers


def test_a_decompression_bomb_is_cut_at_the_read_limit(fakes: Fakes) -> None:
    """256 MiB of zeros gzipped to a few hundred KiB: the answer is refused once its
    decompressed size passes the read limit, decompressed a bounded step at a time, never
    held whole."""
    limit = 8 << 20
    bomb = gzip.compress(b"\0" * (256 << 20), compresslevel=9)
    fakes.openai.script(Answer(body=bomb, headers={"Content-Encoding": "gzip"}))
    out = Outbound("POST", fakes.openai.url + "/chat/completions",
                   {"content-type": "application/json"}, b"{}")  # fmt: skip

    async def read() -> tuple[str, int]:
        transport = Transport()
        await transport.open()
        try:
            resp = await transport.send(out, "openai", {})
            tracemalloc.start()
            try:
                with pytest.raises(ValueError) as refused:
                    await resp.read(limit)
                return str(refused.value), tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        finally:
            await transport.close()

    message, peak = fakes.loop.run(read(), timeout=60)
    assert f"larger than {limit} bytes" in message
    assert peak < 2 * limit, f"{peak >> 20} MiB held at the peak"


def _answer(text: str) -> bytes:
    body = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


@pytest.mark.parametrize("late", [
    _answer("STALE late duplicate of answer 1"),  # a whole second answer
    _answer("STALE")[:20],  # the start of one: headers not even whole
    b"\r\n",  # a stray line end
])  # fmt: skip
def test_a_connection_that_talks_out_of_turn_is_not_reused(late: bytes) -> None:
    """The pool kept a connection on which the server, after its answer, sent more; the
    next request on it (another workspace's, say) was handed those bytes as its answer
    and billed for them, and its own answer was never read."""
    import asyncio

    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            size = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length")))  # fmt: skip
            asked = json.loads(await reader.readexactly(size))["ask"]
            writer.write(_answer(f"answer to {asked}"))
            await writer.drain()
            await asyncio.sleep(0.2)  # the gateway has pooled the connection by now
            writer.write(late)
            await writer.drain()

    async def run() -> list[str]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = Transport()
        await transport.open()
        try:
            said = []
            for ask in ("one", "two", "three"):
                out = Outbound("POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                               {"content-type": "application/json"},
                               json.dumps({"ask": ask}).encode())  # fmt: skip
                resp = await transport.send(out, "openai", {})
                said.append(
                    json.loads(await resp.read(1 << 20))["choices"][0]["message"]["content"]
                )
                await asyncio.sleep(0.5)  # the late bytes arrive while it sits in the pool
            return said
        finally:
            await transport.close()
            server.close()

    assert asyncio.run(run()) == ["answer to one", "answer to two", "answer to three"]
    assert len(connections) == 3  # each talked out of turn: none was reused


def test_a_well_behaved_connection_is_still_reused(fakes: Fakes) -> None:
    """The guard costs nothing to an upstream that speaks in turn: one connection serves
    request after request, whole answers and streams alike."""
    from runtime.gateway.upstream_pool import GuardedHandler

    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    whole = Outbound("POST", fakes.openai.url + "/chat/completions",
                     {"content-type": "application/json"}, body)  # fmt: skip
    streamed = Outbound("POST", fakes.openai.url + "/chat/completions",
                        {"content-type": "application/json"},
                        body[:-1] + b', "stream": true}')  # fmt: skip

    async def run() -> int:
        transport = Transport()
        await transport.open()
        try:
            for out in (whole, streamed, whole, streamed):
                resp = await transport.send(out, "openai", {})
                await resp.read(1 << 20)
            pool = transport._session.connector  # type: ignore[union-attr]
            handlers = [h for conns in pool._conns.values() for h, _ in conns]  # type: ignore[union-attr]
            assert all(isinstance(h, GuardedHandler) for h in handlers)
            return len(handlers)
        finally:
            await transport.close()

    assert fakes.loop.run(run()) == 1  # one connection, kept after four answers


def test_one_hung_upstream_cannot_take_every_upstream_connection(
    bundle: Path, fakes: Fakes, tmp_path: Path
) -> None:
    """The upstream pool held 1,024 connections for every upstream together: 1,030
    requests to one that never answers took them all, and another provider's request waited
    for a slot until its timeout (408). Now the pool is as large as the client cap (each
    client connection has one request at a time), so only a full gateway turns one away."""
    import socket

    from tests.gateway.harness import TEAM_KEY, GatewayProcess, http

    hung = 1_030
    fakes.openai.script(*[Answer(latency=30.0)] * hung)
    gateway = GatewayProcess(
        bundle, tmp_path / "gw.log", ["--max-connections", "1200", "--drain-timeout", "1"]
    ).start()
    body = json.dumps({"model": "@openai-main/gpt-4o-mini", "stream": True,  # let go at once
                       "messages": [{"role": "user", "content": "hang"}]}).encode()  # fmt: skip
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
               b"\r\nAuthorization: Bearer " + TEAM_KEY.encode() +
               b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip
    waiting: list[socket.socket] = []
    try:
        for _ in range(hung):
            sock = socket.create_connection(("127.0.0.1", gateway.port))
            sock.sendall(request)
            waiting.append(sock)
        fakes.openai.wait_for(lambda seen: len(seen) >= 1_024, timeout=60)
        status, _, data = http("POST", gateway.v1 + "/chat/completions",
                               {"model": "@backup/backup-chat", "messages": [
                                   {"role": "user", "content": "hi"}]},
                               {"Authorization": f"Bearer {TEAM_KEY}",
                                "x-portkey-request-timeout": "3000"})  # fmt: skip
        assert status == 200, data
    finally:
        for sock in waiting:
            sock.close()
        gateway.stop()
        fakes.openai.hurry()
