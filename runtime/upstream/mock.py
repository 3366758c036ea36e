"""The `mock` service: an upstream that answers in process, with no network and no keys.

It receives the Outbound the OpenAI adapter prepared (so the whole adapter path runs) and
answers like an OpenAI server would (runtime/upstream/mock_answers.py): chat, completions,
embeddings and responses, whole or streamed. Controls come from the integration's settings,
overridden per request by `x-mock-*` headers (which the gateway forwards to the mock only):

    setting      header               meaning                                    bounds
    latency_ms   x-mock-latency-ms    delay before answering                     0..60000
    chunk_ms     x-mock-chunk-ms      delay between stream chunks                0..60000
    status       x-mock-status        answer this status (non-2xx: an error)     100..599
    retry_after  x-mock-retry-after   `retry-after` seconds sent with an error   0..86400
    cut_after    x-mock-cut-after     stream: stop after N chunks, no terminal   0..10^6

A control out of bounds, or a body the mock cannot read, is answered with a 400 in OpenAI's
error shape: the mock never raises on what a client sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from runtime.upstream import mock_answers as answers
from runtime.upstream.base import Outbound
from runtime.upstream.openai import error_body

# control -> (header, lowest, highest)
CONTROLS: Mapping[str, tuple[str, int, int]] = {
    "latency_ms": ("x-mock-latency-ms", 0, 60_000),
    "chunk_ms": ("x-mock-chunk-ms", 0, 60_000),
    "status": ("x-mock-status", 100, 599),
    "retry_after": ("x-mock-retry-after", 0, 86_400),
    "cut_after": ("x-mock-cut-after", 0, 1_000_000),
}
_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "text/event-stream", "cache-control": "no-cache"}


class MockResponse:
    """A finished answer (whole, or as its list of SSE events) behind base.Response."""

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        events: list[bytes],
        chunk_seconds: float = 0.0,
    ) -> None:
        self.status = status
        self.headers = headers
        self._events = events
        self._pause = chunk_seconds
        self.closed = False

    async def read(self, limit: int) -> bytes:
        body = b"".join(self._events)
        if len(body) > limit:
            raise ValueError(f"the answer is larger than {limit} bytes")
        return body

    def chunks(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        for i, event in enumerate(self._events):
            if i and self._pause:
                await asyncio.sleep(self._pause)
            if self.closed:
                return
            yield event

    def close(self) -> None:
        self.closed = True


@dataclass(frozen=True, slots=True)
class Controls:
    latency_ms: int = 0
    chunk_ms: int = 0
    status: int | None = None
    retry_after: int | None = None
    cut_after: int | None = None


class ControlError(Exception):
    pass


def controls(settings: Mapping[str, str], headers: Mapping[str, str]) -> Controls:
    values: dict[str, int] = {}
    for name, (header, low, high) in CONTROLS.items():
        raw = headers.get(header)
        source = header
        if raw is None:
            raw, source = settings.get(name), f"setting `{name}`"
        if raw is None:
            continue
        text = raw.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 9 and low <= int(text) <= high):
            raise ControlError(f"mock: `{source}` must be a whole number from {low} to {high}")
        values[name] = int(text)
    return Controls(**values)


class MockUpstream:
    """Stateless and deterministic: the same request and controls give the same bytes."""

    async def send(self, out: Outbound, settings: Mapping[str, str]) -> MockResponse:
        headers = {k.lower(): v for k, v in out.headers.items()}
        try:
            control = controls(settings, headers)
        except ControlError as error:
            return _error(400, str(error))
        if control.latency_ms:
            await asyncio.sleep(control.latency_ms / 1000)
        if control.status is not None and not 200 <= control.status < 300:
            extra = {}
            if control.retry_after is not None:
                extra["retry-after"] = str(control.retry_after)
            message = f"mock: answering HTTP {control.status} as asked"
            return _error(control.status, message, "mock_status", extra)
        try:
            return self._answer(out, control)
        except answers.BadRequest as error:
            return _error(400, f"mock: {error}")

    def _answer(self, out: Outbound, control: Controls) -> MockResponse:
        if out.method != "POST":
            raise answers.BadRequest(f"method {out.method} is not served")
        path = urlsplit(out.url).path
        endpoint = next((e for suffix, e in _ENDPOINTS if path.endswith(suffix)), None)
        if endpoint is None:
            return _error(404, f"mock: no endpoint at `{path[-100:]}`")
        try:
            body = json.loads(out.body)
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            raise answers.BadRequest("the request body is not a JSON object")
        status = control.status or 200
        if endpoint == "embeddings":
            return MockResponse(status, _JSON, [answers.embeddings_body(body)])
        whole, streamed, terminal = _BUILDERS[endpoint]
        echo = _ECHOES[endpoint](body, out.body)
        if body.get("stream") is not True:
            return MockResponse(status, _JSON, [whole(echo, body)])
        events = streamed(echo, body)
        if terminal:
            events.append(terminal)
        if control.cut_after is not None:  # the terminal event never comes
            events = events[: min(control.cut_after, len(events) - 1)]
        return MockResponse(status, _SSE, events, control.chunk_ms / 1000)


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, Mapping) and options.get("include_usage") is True


def _error(
    status: int, message: str, code: str = "mock_error", extra: Mapping[str, str] | None = None
) -> MockResponse:
    body = error_body(status, message, None, code)
    return MockResponse(status, {**_JSON, **(extra or {})}, [body])


_ENDPOINTS = (
    ("/chat/completions", "chat"),
    ("/completions", "completions"),
    ("/embeddings", "embeddings"),
    ("/responses", "responses"),
)
_ECHOES: Mapping[str, Callable[[Mapping[str, Any], bytes], answers.Echo]] = {
    "chat": answers.chat_echo,
    "completions": answers.completion_echo,
    "responses": answers.responses_echo,
}
_Whole = Callable[[answers.Echo, Mapping[str, Any]], bytes]
_Streamed = Callable[[answers.Echo, Mapping[str, Any]], list[bytes]]
_DONE = b"data: [DONE]\n\n"
_BUILDERS: Mapping[str, tuple[_Whole, _Streamed, bytes | None]] = {
    "chat": (
        lambda echo, body: answers.chat_body(echo),
        lambda echo, body: answers.chat_events(echo, _include_usage(body)),
        _DONE,
    ),
    "completions": (
        lambda echo, body: answers.completion_body(echo),
        lambda echo, body: answers.completion_events(echo, _include_usage(body)),
        _DONE,
    ),
    "responses": (answers.responses_body, answers.responses_events, None),
}
