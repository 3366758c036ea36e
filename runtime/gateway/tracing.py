"""W3C trace context through the gateway, and OpenTelemetry spans when it is installed.

A client's `traceparent` (and `tracestate`) is checked against the W3C format; a malformed
one is ignored, as the recommendation says, never an error. With the `opentelemetry` API
installed (the `otel` extra) each request is a server span in the client's trace and each
upstream attempt a client span under it, and the upstream receives that span as its parent.
Without it, the client's valid trace context is forwarded unchanged. Span attributes are
catalog slugs, statuses and counts, never request text."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\Z")
MAX_TRACESTATE = 512  # the W3C limit is 32 list members; 512 characters is what we pass


def trace_context(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's trace context headers, if valid (lower-case names)."""
    parent = headers.get("traceparent")
    if parent is None:
        return {}
    match = _TRACEPARENT.match(parent.strip())
    if match is None:
        return {}
    version, trace_id, span_id, _ = match.groups()
    if version == "ff" or trace_id == "0" * 32 or span_id == "0" * 16:
        return {}
    found = {"traceparent": match.group(0)}
    state = headers.get("tracestate")
    if state and len(state) <= MAX_TRACESTATE and state.isascii() and state.isprintable():
        found["tracestate"] = state
    return found


class Tracing:
    """Spans through the OpenTelemetry API, or nothing when it is not installed."""

    def __init__(self) -> None:
        self._trace: Any = None
        try:  # optional: typed as Any, so no stubs are needed where it is not installed
            trace: Any = importlib.import_module("opentelemetry.trace")
            propagate: Any = importlib.import_module("opentelemetry.propagate")
        except ImportError:  # the otel extra is not installed: trace context only
            return
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            return  # no SDK configured (e.g. by opentelemetry-instrument): spans would be no-ops
        self._trace = trace
        self._propagate = propagate
        self._tracer = trace.get_tracer("catalog-compiler.gateway")

    @property
    def on(self) -> bool:
        return self._trace is not None

    def request_span(self, name: str, context: Mapping[str, str]) -> Any:
        """A server span in the client's trace (a new trace without one)."""
        if self._trace is None:
            return None
        parent = self._propagate.extract(dict(context)) if context else None
        return self._tracer.start_span(name, context=parent, kind=self._trace.SpanKind.SERVER)

    def attempt_span(self, parent: Any, provider: str, model: str, retry: int) -> Any:
        if self._trace is None or parent is None:
            return None
        context = self._trace.set_span_in_context(parent)
        return self._tracer.start_span(
            "upstream", context=context, kind=self._trace.SpanKind.CLIENT,
            attributes={"catalog.provider": provider, "catalog.model": model,
                        "catalog.retry": retry},
        )  # fmt: skip

    def headers(self, span: Any, client: Mapping[str, str]) -> dict[str, str]:
        """The trace context to send upstream: the attempt's span, else the client's."""
        if span is None:
            return dict(client)
        carrier: dict[str, str] = {}
        self._propagate.inject(carrier, context=self._trace.set_span_in_context(span))
        return carrier or dict(client)

    def end(self, span: Any, status: int, **attributes: Any) -> None:
        if span is None:
            return
        span.set_attribute("http.response.status_code", status)
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(f"catalog.{key}", value)
        if status >= 500:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        span.end()
