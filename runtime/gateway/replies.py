"""Errors and headers in the shapes clients expect: OpenAI's error body on the OpenAI
endpoints, Anthropic's on `/v1/messages`, Portkey's statuses and `x-portkey-*` headers."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from runtime.bundle.errors import (
    AccessDenied,
    BudgetExceeded,
    ConcurrencyExceeded,
    ModeMismatch,
    RateLimited,
    RequestError,
    StoreUnavailable,
    UnknownConfig,
    UnknownModel,
    UnknownProvider,
    UnknownWorkspace,
    clip,
)
from runtime.gateway.log import log
from runtime.routing.modes import ENDPOINT_PATHS
from runtime.upstream import SERVICES, anthropic_wire, openai

# status -> (OpenAI error type, Anthropic error type)
_TYPES: Mapping[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("authentication_error", "authentication_error"),
    403: ("permission_error", "permission_error"),
    404: ("invalid_request_error", "not_found_error"),
    405: ("invalid_request_error", "invalid_request_error"),
    408: ("timeout_error", "timeout_error"),
    409: ("invalid_request_error", "invalid_request_error"),
    412: ("budget_exceeded", "budget_exceeded"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "invalid_request_error"),
    429: ("rate_limit_error", "rate_limit_error"),
    501: ("not_implemented", "api_error"),
    503: ("service_unavailable", "overloaded_error"),
}


@dataclass
class Failure(Exception):
    """A refusal the gateway answers itself, before or instead of an upstream."""

    status: int
    message: str
    code: str | None  # None: as Portkey answers a request_timeout
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    level: str = ""  # organization | integration | provider | workspace: who refused
    close: bool = False  # close the connection after the answer (a body left unread)

    @property
    def reason(self) -> str:
        """A bounded label for metrics: the code, or what the status means."""
        return self.code or ("request_timeout" if self.status == 408 else f"http_{self.status}")

    def __str__(self) -> str:
        return self.message

    def detached(self) -> Failure:
        """This refusal as data to keep past its `except` block: without its traceback and
        context, whose frames hold the request (and its body) in a reference cycle that only
        the cyclic collector frees, and it runs rarely (runtime/gateway/server.py)."""
        self.__traceback__ = self.__context__ = self.__cause__ = None
        return self


def failure_of(exc: RequestError | StoreUnavailable) -> Failure:
    """A runtime refusal as the client sees it (status, code, Retry-After)."""
    if isinstance(exc, StoreUnavailable):
        _STORE_TROUBLE.said(exc)
        return Failure(503, "the limits store is unavailable; try again later",
                       "store_unavailable", retry_after=1.0)  # fmt: skip
    if isinstance(exc, ModeMismatch):
        exc = _served_by_its_service(exc)
    retry = getattr(exc, "retry_after", None)
    return Failure(exc.status, exc.message, _code(exc),
                   retry_after=float(retry) if retry is not None else None,
                   level=_level(exc))  # fmt: skip


def _served_by_its_service(exc: ModeMismatch) -> ModeMismatch:
    """The remedy names only the endpoints that serve the model's mode *and* that its
    service's API has: a chat model serves /v1/messages by its mode, but only through an
    Anthropic service (an OpenAI model told to use it would get another 400 there)."""
    adapter = SERVICES.get(exc.service or "")
    if adapter is None:
        return exc
    paths = {ENDPOINT_PATHS[e] for e in adapter.endpoints if e in ENDPOINT_PATHS}
    served = tuple(path for path in exc.serving if path in paths)
    return ModeMismatch(exc.target, exc.mode, exc.endpoint, served, exc.service)


class _Trouble:
    """Why the store refused, for the operator: the client is told only that it is
    unavailable, and a full or read-only Redis answers PING (so /readyz stays ready). At
    most one `store_unavailable` line a second, counting those it held back."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.last = -math.inf
        self.held = 0

    def said(self, exc: StoreUnavailable) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            self.held += 1
            return
        log("store_unavailable", cause=clip(str(exc), 400), held_back=self.held)
        self.last, self.held = now, 0


_STORE_TROUBLE = _Trouble()
LEVELS = ("organization", "integration", "provider", "workspace")


def _level(exc: RequestError) -> str:
    """The level of the counter or rule that refused (a catalog word, never request text)."""
    named = getattr(exc, "counter", None) or getattr(exc, "level", None)
    word = str(named).split("/")[0].split(" ")[0] if named else ""
    return word if word in LEVELS else ""


def _code(exc: RequestError) -> str:
    kinds: tuple[tuple[type[RequestError], str], ...] = (
        (UnknownModel, "model_not_found"),
        (UnknownProvider, "provider_not_found"),
        (UnknownConfig, "config_not_found"),
        (UnknownWorkspace, "workspace_not_found"),
        (AccessDenied, "access_denied"),
        (ModeMismatch, "model_mode_mismatch"),
        (BudgetExceeded, "budget_exhausted"),
        (RateLimited, "rate_limit_exceeded"),
        (ConcurrencyExceeded, "concurrency_limit_exceeded"),
    )
    for kind, code in kinds:
        if isinstance(exc, kind):
            return code
    return "invalid_request"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def error_body(status: int, message: str, code: str | None, anthropic: bool = False) -> bytes:
    """The gateway's own refusal in the client's shape (the adapters' shape builders), with
    the error types of the table above."""
    if not message.isascii():  # a header's undecodable bytes (aiohttp's surrogateescape)
        message = _LONE_SURROGATE.sub("\ufffd", message)  # would make it invalid Unicode
    openai_type, anthropic_type = _TYPES.get(
        status, ("api_error", "api_error") if status >= 500 else ("invalid_request_error",) * 2
    )
    if anthropic:
        return anthropic_wire.error_body(status, message, anthropic_type)
    return openai.error_body(status, message, openai_type, code)


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """`Retry-After` in whole seconds, rounded up (clients sleep at least that long)."""
    if seconds is None or not math.isfinite(seconds):
        return {}
    return {"retry-after": str(max(1, math.ceil(seconds)))}
