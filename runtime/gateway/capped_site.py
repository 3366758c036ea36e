"""The listening site, with a bound on open client connections.

Every connection holds a descriptor, and the process needs descriptors of its own for the
upstreams and the store: a flood of connections (each lives up to `--client-timeout` idle)
must not leave none for them, or every caller gets 502s. Beyond `--max-connections`, a new
connection is answered 503 with `Retry-After: 1` and closed at once, before aiohttp reads
anything from it; those already open are served as before.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
from typing import Any

from aiohttp import web

CAP = 10_000  # connections, at most, when chosen from the descriptor limit
_BODY = json.dumps({"error": {"message": "the gateway has too many open connections; retry",
                              "type": "server_error", "param": None,
                              "code": "too_many_connections"}}).encode()  # fmt: skip
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(_BODY)
) + _BODY


def default_max_connections() -> int:
    """Half the process's descriptors (the rest for upstreams, the store, files), at most
    CAP, at least 64."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return CAP
    return max(64, min(CAP, soft // 2))


class _Refuse(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(REFUSAL)  # type: ignore[attr-defined]
        transport.close()


class CappedSite(web.SockSite):
    """`web.SockSite` that refuses connections beyond `limit` (aiohttp has no such bound)."""

    __slots__ = ("_limit",)

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, limit: int) -> None:
        super().__init__(runner, sock)
        self._limit = limit

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; SockSite.start would serve
        server: Any = self._runner.server
        assert server is not None
        live: dict[Any, Any] = server._connections  # aiohttp's own count of open ones
        limit = self._limit

        def accept() -> asyncio.BaseProtocol:
            return _Refuse() if len(live) >= limit else server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(accept, sock=self._sock, backlog=self._backlog)
