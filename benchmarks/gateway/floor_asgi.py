"""The bare pass-through floor as an ASGI app (uvicorn, granian) and an RSGI app (granian),
with the aiohttp client upstream: the same work as floor_aiohttp, another server.

    BENCH_UPSTREAM=http://127.0.0.1:9100 uvicorn benchmarks.gateway.floor_asgi:app \
        --port 9200 --loop uvloop --http httptools --no-access-log --lifespan off
    BENCH_UPSTREAM=... granian --interface asgi benchmarks.gateway.floor_asgi:app --port 9200
    BENCH_UPSTREAM=... granian --interface rsgi benchmarks.gateway.floor_asgi:rsgi_app ...

The client session is made on first use, inside the server's own event loop (both servers
own their loop; neither needs lifespan for this).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import ClientSession, TCPConnector

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9100")
FORWARD = (b"content-type", b"authorization")
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_session: ClientSession | None = None


def session() -> ClientSession:
    global _session
    if _session is None:
        _session = ClientSession(
            connector=TCPConnector(limit=0, keepalive_timeout=60), auto_decompress=False
        )
    return _session


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in FORWARD}
    async with session().post(UPSTREAM + scope["path"], data=b"".join(parts),
                              headers=headers) as answer:  # fmt: skip
        kind = answer.headers.get("Content-Type", "application/json")
        if not kind.startswith("text/event-stream"):
            data = await answer.read()
            await send({"type": "http.response.start", "status": answer.status, "headers": [
                (b"content-type", kind.encode()), (b"content-length", str(len(data)).encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": data})
            return
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": SSE_HEADERS})  # fmt: skip
        async for chunk in answer.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def rsgi_app(scope: Any, protocol: Any) -> None:
    body = await protocol()
    headers = {name: scope.headers.get(name) for name in ("content-type", "authorization")
               if scope.headers.get(name) is not None}  # fmt: skip
    async with session().post(UPSTREAM + scope.path, data=body, headers=headers) as answer:
        kind = answer.headers.get("Content-Type", "application/json")
        if not kind.startswith("text/event-stream"):
            data = await answer.read()
            protocol.response_bytes(answer.status, [("content-type", kind)], data)
            return
        stream = protocol.response_stream(answer.status, [
            ("content-type", "text/event-stream"), ("cache-control", "no-cache")])  # fmt: skip
        async for chunk in answer.content.iter_any():
            await stream.send_bytes(chunk)
