"""Shapes of Anthropic's Messages API that the adapter, its stream translators and the
gateway share: error bodies, usage (with cache reads and writes), stop reasons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.bundle.money import Usage
from runtime.upstream.base import UpstreamProtocolError
from runtime.upstream.common import count, dumps

DEFAULT_VERSION = "2023-06-01"  # `anthropic-version` when neither client nor settings say

ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# Messages `stop_reason` -> Chat Completions `finish_reason`
FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
_TTL_COUNTS = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str, type: str | None = None) -> bytes:
    """Anthropic's error shape, `{"type": "error", "error": {"type", "message"}}`."""
    error = {"type": type or error_type(status), "message": message}
    return dumps({"type": "error", "error": error})


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


class Meter:
    """Usage as a Messages answer reports it: whole in a reply; in a stream, `message_start`
    carries input and cache counts and `message_delta` the (cumulative) output, and newer
    API versions repeat the others there. Every count is a running total, so the largest
    value reported wins: a later `input_tokens: 0` (servers that fill the delta's counts
    with zeros) or a delta that overtook `message_start` lowers nothing. Usage without both
    `input_tokens` and `output_tokens` is no usage (None): the request is settled as one
    whose upstream reported none, not at zero input."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, usage: Any, where: str) -> Usage | None:
        """Take in a `usage` object (None: nothing reported); the usage so far."""
        if usage is None:
            return self.usage()
        if not isinstance(usage, Mapping):
            raise UpstreamProtocolError(f"upstream `{where}` is not an object")
        counts = self._counts
        for name in _COUNTS:
            if usage.get(name) is not None:
                counts[name] = max(counts.get(name, 0), count(usage, name, where))
        by_ttl = usage.get("cache_creation")  # the writes by TTL, within the total above
        if isinstance(by_ttl, Mapping):
            for name in _TTL_COUNTS:
                if by_ttl.get(name) is not None:
                    found = count(by_ttl, name, f"{where}.cache_creation")
                    counts[name] = max(counts.get(name, 0), found)
        return self.usage()

    def usage(self) -> Usage | None:
        if "input_tokens" not in self._counts or "output_tokens" not in self._counts:
            return None
        c = self._counts.get
        hour = c("ephemeral_1h_input_tokens", 0)
        written = c("cache_creation_input_tokens")
        if written is None:  # only the split was reported
            written = hour + c("ephemeral_5m_input_tokens", 0)
        hour = min(hour, written)  # a 1-hour count above the total is capped, not trusted
        return Usage(
            c("input_tokens", 0),
            c("output_tokens", 0),
            c("cache_read_input_tokens", 0),
            written - hour,
            hour,
        )


def usage_of(usage: Any, where: str = "usage") -> Usage | None:
    return Meter().add(usage, where)


def chat_usage(usage: Usage) -> dict[str, Any]:
    """Chat Completions' usage for an Anthropic answer: the prompt counts everything read,
    cached or not; cache reads are `cached_tokens`, cache writes `cache_write_tokens` (the
    openai SDK's field, which the OpenAI adapter reads: a gateway in front prices them)."""
    prompt = usage.prompt_tokens
    written = usage.cache_write_tokens + usage.cache_write_1h_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens,
                                  "cache_write_tokens": written},
    }  # fmt: skip


def thinking_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """A `thinking` or `redacted_thinking` block as a chat client gets it in
    `thinking_blocks`: its own fields only, to be sent back unchanged (they are signed;
    a compatible server that signs nothing gives no `signature`)."""
    if block.get("type") == "redacted_thinking":
        if isinstance(block.get("data"), str):
            return {"type": "redacted_thinking", "data": block["data"]}
    elif isinstance(block.get("thinking"), str):
        out = {"type": "thinking", "thinking": block["thinking"]}
        if isinstance(block.get("signature"), str):
            out["signature"] = block["signature"]
        return out
    raise UpstreamProtocolError(f"upstream `{block.get('type')}` block is missing its fields")
