"""The bare pass-through floor on aiohttp: server and upstream client, no governance.

    python -m benchmarks.gateway.floor_aiohttp --port 9200 --upstream http://127.0.0.1:9100 \
        [--loop uvloop|asyncio] [--workers N]

Receives any POST, forwards the body bytes to the upstream at the same path on one shared
keep-alive client session, and answers with the upstream's status and body; an upstream
`text/event-stream` answer is relayed chunk by chunk as it arrives. It parses nothing: what
a gateway costs beyond this is what its own work (auth, JSON, resolve, admit, settle) costs.
`--workers N` runs N processes on one port (SO_REUSEPORT), as `--workers` of a gateway would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
from collections.abc import AsyncIterator

from aiohttp import ClientSession, TCPConnector, web

FORWARD = ("Content-Type", "Authorization")


async def _session(app: web.Application) -> AsyncIterator[None]:
    # limit=0: one keep-alive connection per concurrent request, as many as clients.
    app["session"] = ClientSession(
        connector=TCPConnector(limit=0, keepalive_timeout=60), auto_decompress=False
    )
    yield
    await app["session"].close()


def make_app(upstream: str) -> web.Application:
    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {name: request.headers[name] for name in FORWARD if name in request.headers}
        session: ClientSession = request.app["session"]
        async with session.post(upstream + request.path, data=body, headers=headers) as answer:
            kind = answer.headers.get("Content-Type", "application/json")
            if not kind.startswith("text/event-stream"):
                data = await answer.read()
                return web.Response(body=data, status=answer.status, content_type=kind)
            relay = web.StreamResponse(status=answer.status, headers={
                "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})  # fmt: skip
            await relay.prepare(request)
            async for chunk in answer.content.iter_any():
                await relay.write(chunk)
            await relay.write_eof()
            return relay

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.cleanup_ctx.append(_session)
    app.router.add_post("/{tail:.*}", forward)
    return app


def _serve(sock: socket.socket, upstream: str, loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(make_app(upstream), sock=sock, access_log=None, print=None,
                handle_signals=True)  # fmt: skip


def _socket(host: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # One listening socket per worker with SO_REUSEPORT: the kernel spreads connections.
    sockets = [_socket(args.host, args.port) for _ in range(args.workers)]
    print(json.dumps({"event": "listening", "port": args.port}), flush=True)
    if args.workers == 1:
        _serve(sockets[0], args.upstream, args.loop)
        return
    workers = [
        multiprocessing.Process(target=_serve, args=(sock, args.upstream, args.loop))
        for sock in sockets
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
