"""The OpenAI-compatible family: OpenAI, Azure OpenAI, Groq, Together, Fireworks, DeepSeek,
Mistral, OpenRouter, xAI, Perplexity, Cerebras, Ollama, vLLM, any OpenAI-compatible server,
and the in-process mock. The client speaks this API too, so bodies pass through: the
request gets its credentials (and, for a stream, `stream_options.include_usage` so the
exact cost can be settled), the answer is relayed as the upstream sent it, less the usage
chunk a client that did not ask for it would not expect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from runtime.bundle.money import Usage
from runtime.upstream.base import Call, Outbound, Reply, Unsupported, UpstreamProtocolError
from runtime.upstream.common import (
    add_auth,
    count,
    credential,
    details,
    dumps,
    excerpt,
    forward,
    join_url,
    load_json,
    load_object,
    redact,
    retry_after,
)
from runtime.upstream.sse import Event, SSEParser

PATHS: Mapping[str, str] = {
    "chat": "chat/completions",
    "completions": "completions",
    "embeddings": "embeddings",
    "responses": "responses",
}
STREAMED_USAGE = frozenset({"chat", "completions"})  # endpoints with stream_options
# Azure's data-plane API version when the integration sets no `api_version`: the GA version
# that has `stream_options`; the Responses API exists only in preview versions.
AZURE_API_VERSION = "2024-10-21"
AZURE_RESPONSES_API_VERSION = "2025-04-01-preview"

ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    409: "conflict_error",
    412: "budget_exceeded",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def error_object(
    status: int, message: str, type: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": type or error_type(status),
            "code": code,
            "param": None,
        }
    }


# Statuses whose OpenAI-shaped body Portkey's gateway relays as it is (its non-streaming
# handler passes 408 and 412 through before any provider transform).
UNTOUCHED = frozenset({408, 412})


def provider_error(service: str, error: Mapping[str, Any]) -> bytes:
    """An upstream's error object as Portkey's gateway answers it, so that clients written
    against Portkey read the same fields: its message prefixed with the service, its
    `type`/`param`/`code` (null when absent), and the service as top-level `provider`."""
    said = error.get("message")
    message = said[:2000] if isinstance(said, str) else json.dumps(said)[:2000]
    fields = {k: error.get(k) for k in ("type", "param", "code")}
    return dumps({"error": {"message": f"{service} error: {message}", **fields},
                  "provider": service})  # fmt: skip


def error_body(
    status: int, message: str, type: str | None = None, code: str | None = None
) -> bytes:
    """OpenAI's error shape, `{"error": {"message", "type", "code", "param": null}}`."""
    return dumps(error_object(status, message, type, code))


class OpenAIAdapter:
    """One row of the service table: the family, with what a service needs different."""

    __slots__ = ("azure", "endpoints", "family", "stream_options")

    def __init__(self, *, stream_options: bool = True, azure: bool = False) -> None:
        self.family = "openai"
        self.endpoints = frozenset(PATHS)
        # False for services that refuse `stream_options` (Mistral: 422 "extra inputs are not
        # permitted") and report streamed usage in their last chunk anyway.
        self.stream_options = stream_options
        self.azure = azure  # deployments in the URL, `api-version` query, `api-key` header

    def output_cap(self, call: Call) -> int | None:
        return None  # what the body says is what the upstream gets

    def prepare(self, call: Call) -> Outbound:
        path = PATHS.get(call.endpoint)
        if path is None:
            raise Unsupported(
                f"service `{call.service}` speaks the OpenAI API: it does not serve "
                f"/v1/{call.endpoint} (use /v1/chat/completions)"
            )
        if call.stream and call.endpoint == "embeddings":
            raise Unsupported("embeddings cannot be streamed")
        headers = {"content-type": "application/json"}
        add_auth(call, headers)
        for secret, header in (("organization", "openai-organization"),
                               ("project", "openai-project")):  # fmt: skip
            value = credential(call, secret)
            if value is not None:
                headers[header] = value
        if call.service == "mock":
            for name, value in call.headers.items():
                if name.startswith("x-mock-"):
                    headers[name] = value
        forward(call, headers, ())
        return Outbound("POST", self._url(call, path), headers, dumps(self._body(call)))

    def _body(self, call: Call) -> Mapping[str, Any]:
        given = call.body if call.endpoint != "chat" else without_thinking(call.body)
        if not call.stream:
            return given if isinstance(given, dict) else dict(given)
        body = dict(given)
        body["stream"] = True
        if call.endpoint in STREAMED_USAGE:
            if self.stream_options:
                asked = body.get("stream_options")
                options = dict(asked) if isinstance(asked, Mapping) else {}
                options["include_usage"] = True
                body["stream_options"] = options
            else:
                body.pop("stream_options", None)
        return body

    def _url(self, call: Call, path: str) -> str:
        if not self.azure:
            return join_url(call.base_url, path)
        if call.endpoint == "responses":  # not per deployment: `model` names the deployment
            version = call.settings.get("api_version") or AZURE_RESPONSES_API_VERSION
            return f"{join_url(call.base_url, path)}?api-version={quote(version, safe='')}"
        deployment = call.settings.get("deployment") or str(call.body.get("model") or "")
        if not deployment:
            raise Unsupported(
                "Azure OpenAI needs a deployment: a `model` or the `deployment` setting"
            )
        version = call.settings.get("api_version") or AZURE_API_VERSION
        where = join_url(call.base_url, f"deployments/{quote(deployment, safe='')}/{path}")
        return f"{where}?api-version={quote(version, safe='')}"

    def reply(self, call: Call, status: int, body: bytes, headers: Mapping[str, str]) -> Reply:
        if 200 <= status < 300:
            answer = load_object(body, "answer")
            usage = usage_of(call.endpoint, answer.get("usage"), answer.get("service_tier"))
            return Reply(status, body, usage)
        return Reply(status, relay_error(call, status, body), None, retry_after(headers))

    def stream(self, call: Call) -> OpenAIStream:
        return OpenAIStream(call, added=self.stream_options and call.endpoint in STREAMED_USAGE)


def without_thinking(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """`body` without the thinking an Anthropic answer gave the client (`thinking_blocks`,
    `reasoning_content`: see anthropic.to_chat) on the assistant messages it sends back:
    OpenAI-family servers refuse or ignore them, and a fallback from an Anthropic target
    to one of them must not fail on what the gateway itself added."""
    messages = body.get("messages")
    if type(messages) is not list:
        return body
    for message in messages:  # a loop, not any(): this runs for every chat request
        if _thought(message):
            break
    else:
        return body
    kept = [{k: v for k, v in m.items() if k not in _THINKING} if _thought(m) else m
            for m in messages]  # fmt: skip
    return {**body, "messages": kept}


_THINKING = ("thinking_blocks", "reasoning_content")


def _thought(message: Any) -> bool:
    return type(message) is dict and (
        "thinking_blocks" in message or "reasoning_content" in message
    )


def usage_of(endpoint: str, usage: Any, tier: Any = None) -> Usage | None:
    """The Usage an OpenAI-family answer reports (None: it reported none), with the
    service tier it says it served (`tier`: the answer's `service_tier`)."""
    if usage is None:
        return None
    if not isinstance(usage, Mapping):
        raise UpstreamProtocolError("upstream `usage` is not an object")
    if endpoint == "responses":
        found = _usage(usage, "input_tokens", "output_tokens", "input_tokens_details")
    else:
        found = _usage(usage, "prompt_tokens", "completion_tokens", "prompt_tokens_details")
    served = served_tier(tier)
    return replace(found, service_tier=served) if served is not None else found


def served_tier(tier: Any) -> str | None:
    """The tier to charge for an answer's `service_tier`: flex and priority have their own
    prices; any other string ("default", "scale", an unknown one) is the default table."""
    if type(tier) is not str:
        return None
    return tier if tier in ("flex", "priority") else "default"


def _usage(usage: Mapping[str, Any], prompt_name: str, output_name: str, detail: str) -> Usage:
    if prompt_name not in usage:
        raise UpstreamProtocolError(f"upstream `usage` has no `{prompt_name}`")
    prompt = count(usage, prompt_name, "usage")
    output = count(usage, output_name, "usage")
    inner = details(usage, detail, "usage")
    if "cached_tokens" in inner:
        cached = count(inner, "cached_tokens", f"usage.{detail}")
    else:  # DeepSeek reports its cache hits beside the prompt
        cached = count(usage, "prompt_cache_hit_tokens", "usage")
    if cached > prompt:
        raise UpstreamProtocolError(
            f"upstream usage reports {cached} cached tokens in a prompt of {prompt}"
        )
    # Cache writes are part of the prompt too. OpenAI documents the count as "unadjusted",
    # so one above what remains of the prompt is capped there, not refused.
    written = min(count(inner, "cache_write_tokens", f"usage.{detail}"), prompt - cached)
    return Usage(prompt - cached - written, output, cached, written)


def relay_error(call: Call, status: int, body: bytes) -> bytes:
    """An upstream error for the client: an OpenAI-shaped one as Portkey's gateway relays it
    (provider_error), else the same status explained in OpenAI's shape. The credential is
    scrubbed first."""
    body = redact(body, call)
    try:
        parsed = load_json(body, "error")
    except UpstreamProtocolError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        if status in UNTOUCHED:
            return body
        return provider_error(call.service, parsed["error"])
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        parsed = {"message": parsed["error"]}  # Ollama's `{"error": "..."}`
    message = f"upstream `{call.service}` answered HTTP {status}"
    said = parsed.get("message") if isinstance(parsed, dict) else None
    if isinstance(said, str) and said:
        message += ": " + said[:1000]
    elif isinstance(parsed, dict) and said is not None:
        message += ": " + excerpt(json.dumps(said).encode(), 1000)
    elif parsed is None and body.strip():
        message += ": " + excerpt(body)
    return error_body(status, message, error_type(status), "upstream_error")


_TERMINAL = ("response.completed", "response.incomplete", "response.failed")
_ENDS = (*_TERMINAL, '"error"')  # what an event without an `event:` line may end with


class OpenAIStream:
    """Relays an OpenAI-family stream event by event, byte for byte, watching for usage.

    Only events that can carry usage (or end a Responses stream) are parsed. The usage
    chunk (`choices: []`) goes to the client only if it asked for it: we may have added
    `include_usage` ourselves. `done` comes with `data: [DONE]` or, for /v1/responses, the
    terminal `response.completed` / `response.incomplete` / `response.failed` event."""

    __slots__ = ("_drop", "_endpoint", "_parser", "_responses", "_strip", "done", "failed",
                 "final", "usage")  # fmt: skip

    def __init__(self, call: Call, added: bool = True) -> None:
        """`added`: the gateway asked for usage (`include_usage`) on its own."""
        self.usage: Usage | None = None
        self.done = self.failed = self.final = False
        self._drop = not call.include_usage
        self._strip = added and self._drop
        self._responses = call.endpoint == "responses"
        self._parser = SSEParser()
        self._endpoint = call.endpoint

    def feed(self, data: bytes) -> bytes:
        # nothing after the terminal event is part of the answer
        events = [] if self.done else self._parser.feed(data)
        # sse.client_bytes, inlined: this loop runs for every event of every stream
        out: list[bytes] = []
        keep: Callable[[Event], bool | bytes] = (
            self._keep_event if self._responses else self._keep_chunk
        )
        try:
            for event in events:
                if self.done:
                    break
                kept = keep(event)
                if kept is True:
                    out.append(event.raw)
                elif kept:  # the chunk with its usage taken out
                    out.append(kept)
        except UpstreamProtocolError as exc:
            exc.partial = b"".join(out)
            raise
        return b"".join(out)

    def _keep_chunk(self, event: Event) -> bool | bytes:
        """True: relay the event as it came; False: drop it; bytes: relay these instead."""
        data = event.data
        if data is None:
            return True  # a comment: a keep-alive the client may want too
        if data.strip() == "[DONE]":
            self.done = True
            return True
        if '"error"' in data and _failed(load_object(data, "stream chunk")):
            self.done = self.failed = True  # some OpenAI-compatible servers end so mid-stream
            return True
        at = data.find('"usage"')
        if at < 0 or (data.startswith('"usage":null', at) and data.find('"usage"', at + 7) < 0):
            return True  # (with include_usage, every chunk but the last has `"usage":null`)
        chunk = load_object(data, "stream chunk")
        usage = chunk.get("usage")
        extra = chunk.get("x_groq")
        if usage is None and isinstance(extra, dict):
            usage = extra.get("usage")  # Groq's place for it
        if usage is None:
            return True
        self.usage = usage_of(self._endpoint, usage, chunk.get("service_tier"))
        if not self._drop:
            return True
        if not chunk.get("choices"):
            return False  # the usage chunk the gateway asked for, not the client
        if not self._strip or chunk.get("usage") is None:
            return True  # usage the server always sends (Mistral's; Groq's `x_groq`): as it came
        # asked for by the gateway, some servers report it on the last content chunk: that
        # chunk goes on, without the usage the client did not ask for
        del chunk["usage"]
        return b"data: " + dumps(chunk) + b"\n\n"

    def _keep_event(self, event: Event) -> bool:
        data = event.data
        if data is None:
            return True
        if event.event == "error":  # the Responses API's own error event ends the stream
            self.done = self.failed = True
            return True
        if event.event is not None and event.event not in _TERMINAL:
            return True
        if event.event is None and not any(name in data for name in _ENDS):
            return True
        payload = load_object(data, "stream event")
        kind = payload.get("type")
        if kind == "error":  # the same error event from a server that names no `event:`
            self.done = self.failed = True
            return True
        if kind not in _TERMINAL:
            return True
        response = payload.get("response")
        if isinstance(response, dict):
            usage = usage_of("responses", response.get("usage"), response.get("service_tier"))
            if usage is not None:  # the response's own account, even of a failed one
                self.usage, self.final = usage, True
        self.done = True
        self.failed = kind == "response.failed"  # booked as the upstream's error, not an ok
        return True

    def finish(self) -> bytes:
        return b""  # `[DONE]` and terminal events are relayed as they arrive

    def error_event(self, status: int, message: str) -> bytes:
        return b"data: " + error_body(status, message) + b"\n\n"


def _failed(chunk: dict[str, Any]) -> bool:
    """A chunk that is the upstream's error: `{"error": {...}}`, maybe beside a last choice
    with `finish_reason: "error"` (OpenRouter's shape; the SDKs raise on `error`)."""
    return isinstance(chunk.get("error"), dict)
