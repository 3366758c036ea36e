"""A relay of bytes, no HTTP: what any proxy costs on this machine before it does anything.

    python -m benchmarks.gateway.floor_tcp --port 9250 --upstream http://127.0.0.1:9100

Each client connection gets its own upstream connection; bytes are copied both ways as they
arrive (asyncio Protocols on uvloop, no parsing, no copy beyond the socket's). No gateway can
add less latency than this: the hops between processes, and waking the CPUs that run them,
are all it measures (benchmarks/RESULTS.md, "What the one-client and first-byte targets
measure here").
"""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import urlsplit

from benchmarks.gateway.upstream import install_uvloop, serve


class _Half(asyncio.Protocol):
    """One side of a relay: what arrives is written to the other side."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.early: list[bytes] = []  # from the client before the upstream connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.early.append(data)
        else:
            peer.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class _Client(_Half):
    host = "127.0.0.1"
    port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(_Half, self.host, self.port)
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        upstream.peer, self.peer = self, upstream
        for data in self.early:
            assert upstream.transport is not None
            upstream.transport.write(data)
        self.early.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    parts = urlsplit(args.upstream)
    _Client.host, _Client.port = parts.hostname or "127.0.0.1", parts.port or 80
    install_uvloop()
    asyncio.run(serve(args.host, args.port, _Client))


if __name__ == "__main__":
    main()
