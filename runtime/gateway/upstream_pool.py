"""The upstream connection pool's one guard against a server that talks out of turn.

aiohttp pools a keep-alive connection after its answer and reuses it if the socket is
still open. A server that then sends more (a late duplicate answer, a body after a 204)
leaves bytes in that connection's parser; the next request on it, maybe another
workspace's, was handed those bytes as its own answer, and billed for them. A connection
that received anything while no answer was asked of it is not reused (closed instead).

It reads aiohttp internals (`set_response_params`, `feed_data`, `_payload`, the
connector's `_factory`); tests/gateway/test_transport.py fails if they change."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

_set_response_params = ResponseHandler.set_response_params
_feed_data = ResponseHandler.feed_data
_data_received = ResponseHandler.data_received


class GuardedHandler(ResponseHandler):
    """A ResponseHandler that counts the answers asked of it and the answers it read. It
    holds nothing of an answer's (a callback on its body would make a cycle that outlives
    a request whose client left)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._asks = 0  # requests sent (set_response_params comes before each is written)
        self._answers = 0  # final answers whose head was read
        self._unasked = False  # bytes came while no answer was awaited: never reuse

    # (the base's methods called directly, not through super(): data_received runs for
    # every read of every upstream answer)
    def set_response_params(self, **params: Any) -> None:
        self._asks += 1
        _set_response_params(self, **params)

    def feed_data(self, data: Any, size: int = 0) -> None:  # one (message, body) per head
        code = getattr(data[0], "code", 0)
        if code >= 200 or code == 101:  # not an interim 1xx: the answer itself
            self._answers += 1
        _feed_data(self, data, size)

    def data_received(self, data: bytes) -> None:
        if self._answers >= self._asks and data:
            payload = self._payload
            if payload is None or payload.is_eof():  # every answer read whole: idle
                self._unasked = True
        _data_received(self, data)

    def is_connected(self) -> bool:  # what the pool asks before reusing or keeping it
        return not self._unasked and super().is_connected()


def connector(limit: int) -> aiohttp.TCPConnector:
    pool = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300)
    pool._factory = functools.partial(GuardedHandler, loop=pool._loop)  # type: ignore[assignment]
    return pool
