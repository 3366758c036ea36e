"""What an upstream adapter does: turn one attempt of a client's request into the request its
upstream understands, and the upstream's answer (whole or streamed) back into the shape the
client asked for, with the usage to settle. Adapters are pure: they build bytes and parse
bytes; the gateway owns sockets, time and money.

One module per API family (runtime/upstream/openai.py, anthropic.py); the table in
runtime/upstream/__init__.py maps each catalog service to its adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import field
from typing import Any, Protocol

from runtime.bundle.money import Usage
from runtime.bundle.values import value

# The gateway's endpoints, by the wire format the *client* speaks.
ENDPOINTS: Mapping[str, str] = {
    "chat": "openai",  # POST /v1/chat/completions
    "completions": "openai",  # POST /v1/completions
    "embeddings": "openai",  # POST /v1/embeddings
    "responses": "openai",  # POST /v1/responses
    "messages": "anthropic",  # POST /v1/messages
}


class Unsupported(Exception):
    """This adapter cannot serve this endpoint (400) or this service has no adapter (501)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class UpstreamProtocolError(Exception):
    """The upstream answered something its API never sends (not JSON, wrong shape): 502."""

    # in a stream: the client's bytes translated from the same read before the fault, which
    # go out ahead of the error event (what the client was sent is what it is charged)
    partial = b""


@value
class Call:
    """One attempt, as the gateway hands it to an adapter."""

    endpoint: str  # a key of ENDPOINTS
    body: Mapping[str, Any]  # the merged request body in the client's format; `model` is the
    #                          upstream's model name (no `@provider/`)
    stream: bool
    base_url: str  # e.g. "https://api.openai.com/v1" (custom_host or the provider's)
    # credential name -> value; and `header:NAME` -> a header value read from a reference,
    # there only so that an answer echoing it is scrubbed (common.redact)
    secrets: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, str] = field(default_factory=dict)  # integration settings
    headers: Mapping[str, str] = field(default_factory=dict)  # client headers to forward,
    #   lower-case names (anthropic-version, anthropic-beta, x-mock-*)
    include_usage: bool = False  # the client itself asked stream_options.include_usage
    service: str = "openai"  # the catalog service id (azure-openai, groq, mock, ...)
    auth: str = "bearer"  # bearer | x-api-key | api-key | none (runtime/bundle Integration.auth)
    # client headers a config's `forward_headers` passes on as they are; never one the
    # adapter sets itself (authentication, content type)
    passed: Mapping[str, str] = field(default_factory=dict)


@value
class Outbound:
    """The HTTP request to send upstream."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@value
class Reply:
    """A whole (non-streamed) upstream answer in the client's shape."""

    status: int
    body: bytes  # JSON in the client's format; for an error, the client format's error body
    usage: Usage | None  # None: the upstream reported no usage
    retry_after: float | None = None  # seconds, from `retry-after` / `retry-after-ms`


class StreamTranslator(Protocol):
    """Turns upstream server-sent-event bytes into the client's, as they arrive."""

    usage: Usage | None  # the latest usage the upstream reported (may grow while streaming)
    done: bool  # the upstream sent its terminal event: the answer is complete
    failed: bool  # that event was the upstream's own error (relayed as it came): done too
    final: bool  # `usage` came with the terminal event, failed or not: the whole account

    def feed(self, data: bytes) -> bytes:
        """Raw upstream bytes in (any split, even mid-line); client bytes to send now."""

    def finish(self) -> bytes:
        """The upstream closed the stream: the client's closing bytes (`data: [DONE]`...).
        Called only when `done`; a cut stream gets `error_event` instead."""

    def error_event(self, status: int, message: str) -> bytes:
        """An SSE error event in the client's format (a cut upstream, a timeout)."""


class Adapter(Protocol):
    family: str  # "openai" | "anthropic"
    endpoints: frozenset[str]  # the gateway endpoints its API serves ("chat", "messages", ...)

    def prepare(self, call: Call) -> Outbound:
        """The upstream request; raises Unsupported when the endpoint is not served."""

    def output_cap(self, call: Call) -> int | None:
        """The most output tokens `prepare` asks the upstream for when the body names none
        (Anthropic requires a number: the adapter sends one); None when it asks no cap.
        Admission reserves this much, never less than the upstream may write."""

    def reply(self, call: Call, status: int, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Translate a whole upstream answer (success or error) for the client.
        `headers` have lower-case names. Raises UpstreamProtocolError on a 2xx that is not
        what the API sends."""

    def stream(self, call: Call) -> StreamTranslator:
        """A translator for one streamed answer (only called for a 2xx upstream status)."""


class Response(Protocol):
    """An upstream HTTP response as the gateway reads it (aiohttp's, or the mock's)."""

    status: int
    headers: Mapping[str, str]  # looked up by lower-case name

    async def read(self, limit: int) -> bytes:
        """The whole body; raises ValueError when it exceeds `limit` bytes."""

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (streaming)."""

    def close(self) -> None:
        """Abandon the response (a client went away): the upstream connection is closed."""
