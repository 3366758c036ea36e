"""The gateway app in the test process: served over a real socket on 127.0.0.1 from the
fakes' event loop, for tests that look inside the serving process (its heap, its timing)."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

from aiohttp import web

from runtime.bundle.load import Bundle
from runtime.gateway.app import Gateway, build_app
from runtime.gateway.books import Books
from runtime.gateway.execute import Engine
from runtime.gateway.live import Live
from runtime.gateway.metrics import Metrics
from runtime.gateway.transport import Transport
from runtime.limits.memory import MemoryStore
from runtime.routing.router import Router
from tests.gateway.fakes import Fakes

MAX_BODY = 256 * 1024  # the app's body limit here, so a body past it is quick to send


class InProcess:
    """The gateway app on the fakes' event loop, answering on a free loopback port."""

    def __init__(self, fakes: Fakes, bundle: Path) -> None:
        self.loop = fakes.loop
        router = Router(Bundle.load(bundle), MemoryStore())
        self.live = Live.of(router.bundle, False)
        self.transport = Transport()
        engine = Engine(router, self.transport)
        self.gw = Gateway(router, self.live, engine, "memory", books=Books(metrics=Metrics()))
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        await self.transport.open()
        self.runner = web.AppRunner(build_app(self.gw, MAX_BODY), access_log=None)
        await self.runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self.runner, sock).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        await self.transport.close()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json", **headers})
            answer = conn.getresponse()
            answer.read()
            return answer.status
        finally:
            conn.close()

    def cut_stream(self, body: bytes, headers: dict[str, str]) -> int:
        """A streamed request whose client hangs up after the first bytes."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", "/v1/chat/completions", body,
                         {"Content-Type": "application/json", **headers})  # fmt: skip
            answer = conn.getresponse()
            answer.read(1)
            return answer.status
        finally:
            conn.close()
