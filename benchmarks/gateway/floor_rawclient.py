"""The bare pass-through on aiohttp's server with a minimal upstream client instead of
aiohttp's: a data point for the HTTP stack decision, not a client to serve with.

    python -m benchmarks.gateway.floor_rawclient --port 9260 --upstream http://127.0.0.1:9100

The client is the least an HTTP/1.1 keep-alive client does: a pool of idle connections,
the request written in one write, the answer parsed by httptools (llhttp), its body
handed on as it arrives. No TLS, redirects, proxies, decompression, timeouts or limits:
what it measures is how much of the floor's latency is aiohttp's client
(benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from urllib.parse import urlsplit

import httptools
from aiohttp import web

from benchmarks.gateway.upstream import install_uvloop

FORWARD = ("Content-Type", "Authorization")


class _Connection(asyncio.Protocol):
    def __init__(self, pool: list[_Connection]) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.head: asyncio.Future[tuple[int, dict[str, str]]] | None = None
        self.headers: dict[str, str] = {}
        self.parts: list[bytes] = []
        self.more: asyncio.Event = asyncio.Event()
        self.ended = False
        self.broken = False

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.connection_lost(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.broken = self.ended = True
        if self.head is not None and not self.head.done():
            self.head.set_exception(ConnectionError("upstream closed"))
        self.more.set()

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_result((self.parser.get_status_code(), self.headers))

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)
        self.more.set()

    def on_message_complete(self) -> None:
        self.ended = True
        self.more.set()

    # -- the client
    def send(self, request: bytes) -> asyncio.Future[tuple[int, dict[str, str]]]:
        self.headers, self.parts, self.ended = {}, [], False
        self.more.clear()
        self.head = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return self.head

    async def chunks(self):  # type: ignore[no-untyped-def]
        while True:
            if self.parts:
                parts, self.parts = self.parts, []
                yield b"".join(parts)
                continue
            if self.ended:
                break
            self.more.clear()
            await self.more.wait()
        if not self.broken and self.parser.should_keep_alive():
            self.pool.append(self)
        elif self.transport is not None:
            self.transport.close()


def make_app(upstream: str) -> web.Application:
    parts = urlsplit(upstream)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pool: list[_Connection] = []

    async def connection() -> _Connection:
        while pool:
            found = pool.pop()
            if not found.broken:
                return found
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Connection(pool), host, port)
        return conn

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        lines = [f"POST {request.path} HTTP/1.1", f"Host: {parts.netloc}",
                 f"Content-Length: {len(body)}"]  # fmt: skip
        lines += [f"{k}: {request.headers[k]}" for k in FORWARD if k in request.headers]
        conn = await connection()
        status, headers = await conn.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        kind = headers.get("content-type", "application/json")
        if not kind.startswith("text/event-stream"):
            data = b"".join([part async for part in conn.chunks()])
            return web.Response(body=data, status=status, content_type=kind)
        relay = web.StreamResponse(status=status, headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})  # fmt: skip
        await relay.prepare(request)
        async for chunk in conn.chunks():
            await relay.write(chunk)
        await relay.write_eof()
        return relay

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    install_uvloop()
    print(json.dumps({"event": "listening", "port": args.port}), flush=True)
    web.run_app(make_app(args.upstream), host=args.host, port=args.port, access_log=None,
                print=None)  # fmt: skip


if __name__ == "__main__":
    main()
