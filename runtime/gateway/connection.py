"""The gateway's side of one client connection: aiohttp's handler, with two changes.

Requests that are not HTTP/1.1 at all. aiohttp answers a request it cannot parse (a bad
request line, a header line too long or too many of them, a bad Content-Length or chunk
size, TLS sent to the plain port) before any route runs, in text/plain and quoting the
offending bytes back: a header that held a key, say. Here the answer is JSON, names the
kind of fault only, and the connection still closes after it (aiohttp cannot tell where
the next request would begin).

A client gone while its stream waits on a silent upstream. aiohttp notices a closed
connection at once, but a handler only when it next writes: a stream whose upstream is
thinking would hold its upstream call, its concurrency lease and its reservation until
the upstream's next chunk, or its timeout (minutes). `when_lost` runs a callback (the
stream closes its upstream call) as soon as the connection is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import http_exceptions as faults
from aiohttp import web
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from runtime.gateway.replies import error_body

# what each kind of fault means to the client; nothing of what it sent is quoted
_SAID: tuple[tuple[type[Exception], str, str], ...] = (
    (faults.LineTooLong, "a request line or header is longer than the gateway accepts "
     "(16 KiB for the request line, 40 KiB for a header)", "request_header_too_large"),
    (faults.BadHttpMethod, "not an HTTP/1.1 request (is it TLS sent to a plain-HTTP port, "
     "or a method that is not a token?)", "malformed_http"),
    (faults.PayloadEncodingError, "the request body's framing is malformed "
     "(Content-Length, chunked encoding or content encoding)", "malformed_http"),
)  # fmt: skip


class Connection(RequestHandler):
    """aiohttp's connection handler, answering what it cannot parse as the routes answer,
    and telling `when_lost` callbacks of its end."""

    __slots__ = ()  # so that a handler aiohttp made can take this class (`adopt`)

    def data_received(self, data: bytes) -> None:
        messages = self._messages
        before = len(messages)
        # a body still arriving before these bytes: they are (the start of) its rest
        body = _BODIES.get(self) if _BODIES else None
        if body is not None and body.is_eof():
            del _BODIES[self]
            body = None
        RequestHandler.data_received(self, data)
        if len(messages) > before:  # a request's head completed (the common case: at once)
            message, payload = messages[-1]
            if _HEADS:
                _release(self)
            if type(message) is _ErrInfo:
                self._fail_body()
            elif not payload.is_eof():
                _BODIES[self] = payload  # what follows is its body, until it ends
        elif body is None and not (
            self._force_close or self._close or self._payload_parser is not None
        ):
            self._head_arriving(len(data))

    def _head_arriving(self, size: int) -> None:
        """Bytes of a request head that is not complete yet, which the parser holds: bounded
        per connection and over all of them, as bodies are (body_budget.py). Without it, a
        caller with no key held ~5 MB per connection (128 header lines of 40 KiB) for the
        client timeout, at any number of connections up to the cap: gigabytes."""
        held = _HEADS.get(self, 0) + size
        _HEADS[self] = held
        _TOTAL[0] += size
        if held > MAX_HEAD:
            self._refuse(HEAD_TOO_LARGE)
        elif _TOTAL[0] > MAX_HEADS:
            self._refuse(HEADS_FULL)

    def _refuse(self, answer: bytes) -> None:
        """Answer and close; what else comes is read and dropped for a moment first, as
        closing with unread bytes resets the connection, and the answer with it."""
        _release(self)
        transport = self.transport
        self._force_close = True  # aiohttp drops what else arrives (data_received)
        if self._waiter:
            self._waiter.cancel()
        self.transport = None  # aiohttp's own close, at once, would be such a reset
        if transport is not None:
            transport.write(answer)
            if transport.can_write_eof():
                transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER, transport.close)

    def _fail_body(self) -> None:
        """A framing fault after a request's body had begun (a bad chunk size, say): aiohttp
        queues an error answer for the next request but leaves the body being read waiting,
        so its handler would wait out the client timeout and blame the client. The body
        fails now, and its handler answers 400 (`app._body`)."""
        request = self._current_request
        if request is not None and not request.content.is_eof():
            request.content.set_exception(
                faults.PayloadEncodingError("the request body's framing is malformed")
            )

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        _BODIES.pop(self, None)
        if _HEADS:
            _release(self)
        callback = _LOST.pop(self, None)
        if callback is not None:
            callback()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own: logs the fault by type (our log handler drops its text), and
        # refuses once part of an answer has gone out
        super().handle_error(request, status, exc, message)
        said, code = _said(status, exc)
        response = web.Response(status=status, body=error_body(status, said, code),
                                content_type="application/json")  # fmt: skip
        response.force_close()
        return response


def adopt(handler: RequestHandler) -> RequestHandler:
    """`handler` (made by aiohttp's server, with its settings) as a Connection."""
    handler.__class__ = Connection
    return handler


LINGER = 1.0  # seconds a refused connection is read (and dropped) before it closes
MAX_HEAD = 128 * 1024  # bytes of one request head (its header lines are 40 KiB at most)
MAX_HEADS = 32 * 1024 * 1024  # bytes of all the heads still arriving, over all connections
_HEADS: dict[Any, int] = {}  # connection -> bytes of its head so far (only while incomplete)
_TOTAL = [0]  # their sum
_BODIES: dict[Any, Any] = {}  # connection -> the body still arriving after its head


def _release(handler: Any) -> None:
    _TOTAL[0] -= _HEADS.pop(handler, 0)


def raw_answer(status: str, body: bytes, extra: str = "") -> bytes:
    """A whole JSON answer that closes its connection, as bytes: for refusals written to a
    transport directly, before aiohttp has a request to answer."""
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Connection: close"
            f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip


HEAD_TOO_LARGE = raw_answer("431 Request Header Fields Too Large", error_body(
    431, f"the request's headers are larger than the gateway accepts ({MAX_HEAD // 1024} KiB "
    "in all)", "request_header_too_large"))  # fmt: skip
HEADS_FULL = raw_answer("503 Service Unavailable", error_body(
    503, "the gateway holds as many incomplete request heads as it may at once; retry shortly",
    "too_many_connections"), "Retry-After: 1\r\n")  # fmt: skip


# connection -> what to run when it is lost; one at a time (a connection serves one
# request at a time), removed by its owner when its request ends
_LOST: dict[Any, Callable[[], None]] = {}


def when_lost(handler: Any, callback: Callable[[], None]) -> Callable[[], None]:
    """Run `callback` once if `handler`'s connection is lost before the returned function
    is called (which forgets it). A connection already gone runs it at once."""
    if getattr(handler, "transport", None) is None:
        callback()
        return _nothing
    _LOST[handler] = callback
    return lambda: _forget(handler, callback)


def _forget(handler: Any, callback: Callable[[], None]) -> None:
    if _LOST.get(handler) is callback:
        del _LOST[handler]


def _nothing() -> None:
    pass


def _said(status: int, exc: BaseException | None) -> tuple[str, str]:
    if status >= 500:
        return "the gateway failed to answer this request", "internal_error"
    for kind, said, code in _SAID:
        if isinstance(exc, kind):
            return said, code
    if isinstance(exc, faults.BadHttpMessage) and str(exc.message).startswith("Too many"):
        return "the request has more header lines than the gateway accepts", "too_many_headers"
    return "the request is not valid HTTP/1.1", "malformed_http"
