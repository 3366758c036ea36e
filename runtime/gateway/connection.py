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
        RequestHandler.data_received(self, data)
        messages = self._messages
        if messages and type(messages[-1][0]) is _ErrInfo:
            self._fail_body()

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
