"""Sending an adapter's Outbound: aiohttp for real upstreams, the in-process mock for
`service: mock`. Both answer with a runtime.upstream.base.Response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp

from runtime.gateway.upstream_pool import connector
from runtime.upstream.base import Outbound, Response
from runtime.upstream.held import Held
from runtime.upstream.mock import MockUpstream

CONNECTIONS = 1_024  # open upstream connections per gateway process, unless told
READ_CHUNK = 64 * 1024


class UpstreamUnreachable(Exception):
    """The request never reached the upstream (DNS, refused, TLS): nothing to charge."""


# what a broken upstream connection raises mid-answer (resets, disconnects, bad framing)
BROKEN: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError)


class HttpResponse:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers  # looked up case-insensitively

    async def read(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        held = Held()  # in the process's sum of answers being read (runtime/upstream/held.py)
        try:
            while chunk := await self._resp.content.read(READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ValueError(f"the upstream answer is larger than {limit} bytes")
                held.grow(size, "a whole answer")
                parts.append(chunk)
        finally:
            held.release()
            self._resp.release()
        return b"".join(parts)

    def chunks(self) -> AsyncIterator[bytes]:
        return self._resp.content.iter_any()  # as it is: a generator around it costs a frame

    def close(self) -> None:
        self._resp.close()


class Transport:
    """One per gateway process; opened on the server's loop."""

    def __init__(self, connections: int = CONNECTIONS) -> None:
        self._connections = connections  # open at once, in use or kept, every upstream's
        self._session: aiohttp.ClientSession | None = None
        self._mock: MockUpstream | None = None

    async def open(self) -> None:
        pool = connector(self._connections)  # one that talks out of turn is not reused
        # No session timeout: each attempt runs under its own deadline (request_timeout).
        # No cookie jar: the pool serves every workspace, and a cookie one answer set would
        # go out with the next request to that host, whoever sent it.
        self._session = aiohttp.ClientSession(
            connector=pool, timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True, skip_auto_headers=("User-Agent",), trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )  # fmt: skip

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, out: Outbound, service: str, settings: Mapping[str, str]) -> Response:
        if service == "mock":
            return await self._mock_upstream().send(out, settings)
        assert self._session is not None, "Transport.open() first"
        try:
            resp = await self._session.request(
                out.method, out.url, data=out.body, headers=dict(out.headers),
                allow_redirects=False,
            )  # fmt: skip
        except (aiohttp.ClientConnectorError, aiohttp.InvalidURL) as exc:
            raise UpstreamUnreachable(type(exc).__name__) from None
        return HttpResponse(resp)

    def _mock_upstream(self) -> MockUpstream:
        if self._mock is None:
            self._mock = MockUpstream()
        return self._mock
