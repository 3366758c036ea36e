"""The upstream connection pool's one guard against a server that talks out of turn.

aiohttp pools a keep-alive connection after its answer and reuses it if the socket is
still open. A server that then sends more (a late duplicate answer, a body after a 204)
leaves bytes in that connection's parser; the next request on it, maybe another
workspace's, was handed those bytes as its own answer, and billed for them. A connection
that received anything while no answer was asked of it is not reused (closed instead).

It reads three aiohttp internals (`set_response_params`, `_payload`, the connector's
`_factory`); tests/gateway/test_transport.py fails if they change."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler


class GuardedHandler(ResponseHandler):
    """A ResponseHandler that knows whether an answer was asked of it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._asked = False  # a request went out and its answer has not ended yet
        self._unasked = False  # bytes came while none was asked: never reuse
        self._watched: object = None  # the answer body whose end is watched

    def set_response_params(self, **params: Any) -> None:  # before each request is written
        self._asked = True
        super().set_response_params(**params)

    def data_received(self, data: bytes) -> None:
        if data and not self._asked:
            self._unasked = True
        super().data_received(data)
        payload = self._payload
        if self._asked and payload is not None and payload is not self._watched:
            self._watched = payload
            if payload.is_eof():
                self._asked = False
            else:
                payload.on_eof(self._answered)

    def _answered(self) -> None:
        self._asked = False

    def is_connected(self) -> bool:  # what the pool asks before reusing or keeping it
        return not self._unasked and super().is_connected()


def connector(limit: int) -> aiohttp.TCPConnector:
    pool = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300)
    pool._factory = functools.partial(GuardedHandler, loop=pool._loop)  # type: ignore[assignment]
    return pool
