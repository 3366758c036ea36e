"""Requests that are not HTTP/1.1 at all, answered in the OpenAI error shape.

aiohttp answers a request it cannot parse (a bad request line, a header line too long or
too many of them, a bad Content-Length or chunk size, TLS sent to the plain port) before
any route runs, in text/plain and quoting the offending bytes back: a header that held a
key, say. Here the answer is JSON, names the kind of fault only, and the connection still
closes after it (aiohttp cannot tell where the next request would begin)."""

from __future__ import annotations

from typing import Any

from aiohttp import http_exceptions as faults
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

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


class TypedErrors(RequestHandler):
    """aiohttp's connection handler, answering what it cannot parse as the routes answer."""

    __slots__ = ()  # so that a handler aiohttp made can take this class (`typed`)

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


def typed(handler: RequestHandler) -> RequestHandler:
    """`handler` (made by aiohttp's server, with its settings) answering in JSON."""
    handler.__class__ = TypedErrors
    return handler


def _said(status: int, exc: BaseException | None) -> tuple[str, str]:
    if status >= 500:
        return "the gateway failed to answer this request", "internal_error"
    for kind, said, code in _SAID:
        if isinstance(exc, kind):
            return said, code
    if isinstance(exc, faults.BadHttpMessage) and str(exc.message).startswith("Too many"):
        return "the request has more header lines than the gateway accepts", "too_many_headers"
    return "the request is not valid HTTP/1.1", "malformed_http"
