"""The Anthropic family, both ways.

- Native (`/v1/messages`, the client speaks Messages): the body passes through with the
  credential, `anthropic-version` (the client's, else the integration's `anthropic_version`
  setting, else 2023-06-01) and the client's `anthropic-beta`; answers and streams are
  relayed unchanged while their usage is metered (cache reads and writes apart).
- Translated (`/v1/chat/completions`, the client speaks Chat Completions): the request is
  rewritten as Messages (anthropic_request.py), the answer back as a chat completion, the
  stream event by event (anthropic_stream.py), errors in OpenAI's shape with the same
  status. The other OpenAI endpoints have no Messages equivalent: 400.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from runtime.bundle.money import Usage
from runtime.upstream import anthropic_wire as wire
from runtime.upstream import openai
from runtime.upstream.anthropic_request import default_max_tokens, to_messages
from runtime.upstream.anthropic_stream import ChatStream, NativeStream
from runtime.upstream.anthropic_wire import (
    DEFAULT_VERSION,
    chat_usage,
    error_body,
    error_type,
    finish_reason,
    usage_of,
)
from runtime.upstream.base import (
    Call,
    Outbound,
    Reply,
    StreamTranslator,
    Unsupported,
    UpstreamProtocolError,
)
from runtime.upstream.common import (
    add_auth,
    dumps,
    excerpt,
    forward,
    join_url,
    load_json,
    load_object,
    redact,
    retry_after,
)

__all__ = ["AnthropicAdapter", "error_body"]


class AnthropicAdapter:
    __slots__ = ("endpoints", "family")

    def __init__(self) -> None:
        self.family = "anthropic"
        self.endpoints = frozenset({"chat", "messages"})

    def output_cap(self, call: Call) -> int | None:
        # a native request's `max_tokens` is the client's (Anthropic refuses one without)
        return default_max_tokens(call.body, call.settings) if call.endpoint == "chat" else None

    def prepare(self, call: Call) -> Outbound:
        betas = _betas(call.body.get("anthropic_beta"))
        if call.endpoint == "messages":
            body: Mapping[str, Any] = call.body
            if betas is not None:  # a header's value: Anthropic refuses it in a body
                body = {k: v for k, v in body.items() if k != "anthropic_beta"}
            if call.stream:
                body = {**body, "stream": True}
        elif call.endpoint == "chat":
            body = to_messages(call.body, call.settings, call.stream)
        else:
            raise Unsupported(
                f"service `{call.service}` speaks Anthropic's Messages API: /v1/{call.endpoint} "
                "has no equivalent there (use /v1/chat/completions or /v1/messages)"
            )
        headers = {"content-type": "application/json"}
        add_auth(call, headers)
        headers["anthropic-version"] = (
            call.headers.get("anthropic-version")
            or call.settings.get("anthropic_version")
            or DEFAULT_VERSION
        )
        forward(call, headers, ("anthropic-beta",))
        if betas is not None:  # Portkey's body form, under the header (Portkey's order)
            headers.setdefault("anthropic-beta", betas)
        url = join_url(call.base_url, "messages")
        return Outbound("POST", url, headers, dumps(body if isinstance(body, dict) else dict(body)))

    def reply(self, call: Call, status: int, body: bytes, headers: Mapping[str, str]) -> Reply:
        native = call.endpoint == "messages"
        if not 200 <= status < 300:
            relayed = _relay_error(call, status, body, native)
            return Reply(status, relayed, None, retry_after(headers))
        message = load_object(body, "answer")
        usage = usage_of(message.get("usage"))
        if native:
            return Reply(status, body, usage)
        return Reply(status, dumps(to_chat(message, usage)), usage)

    def stream(self, call: Call) -> StreamTranslator:
        return NativeStream() if call.endpoint == "messages" else ChatStream(call)


def to_chat(message: Mapping[str, Any], usage: Usage | None) -> dict[str, Any]:
    """A Messages answer as a chat completion: text blocks joined, tool_use blocks as
    tool_calls (input as a JSON string), thinking as `reasoning_content` (its text) and
    `thinking_blocks` (the blocks whole, signed: what a client sends back next turn)."""
    content = message.get("content")
    if not isinstance(content, list):
        raise UpstreamProtocolError("upstream answer has no `content` list")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            raise UpstreamProtocolError("upstream answer has a content block that is not an object")
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            calls.append(_tool_call(block))
        elif kind == "thinking" or kind == "redacted_thinking":
            thinking.append(wire.thinking_block(block))
    text = "".join(texts) if texts or not calls else None  # OpenAI: null beside tool calls
    reply: dict[str, Any] = {"role": "assistant", "content": text}
    if thinking:
        reply["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
        reply["thinking_blocks"] = thinking
    if calls:
        reply["tool_calls"] = calls
    chat: dict[str, Any] = {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model"),
        "choices": [{
            "index": 0,
            "message": reply,
            "logprobs": None,
            "finish_reason": finish_reason(message.get("stop_reason")),
        }],
    }  # fmt: skip
    if usage is not None:
        chat["usage"] = chat_usage(usage)
    return chat


def _tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    ident, name = block.get("id"), block.get("name")
    if not isinstance(ident, str) or not isinstance(name, str):
        raise UpstreamProtocolError("upstream tool_use block needs a string `id` and `name`")
    arguments = json.dumps(block.get("input", {}), ensure_ascii=False, separators=(",", ":"))
    return {"id": ident, "type": "function", "function": {"name": name, "arguments": arguments}}


def _relay_error(call: Call, status: int, body: bytes, native: bool) -> bytes:
    """The upstream's error in the client's shape, the credential scrubbed: Anthropic's body
    unchanged for a native client; its type and message in OpenAI's shape for a chat one."""
    body = redact(body, call)
    try:
        parsed = load_json(body, "error")
    except UpstreamProtocolError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and native:
        return body
    said = error.get("message") if isinstance(error, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    if isinstance(said, str) and said:
        message = said[:2000]
    else:
        message = f"upstream `{call.service}` answered HTTP {status}"
        if parsed is None and body.strip():
            message += ": " + excerpt(body)
    if not isinstance(kind, str):
        kind = error_type(status) if native else openai.error_type(status)
    if native:
        return error_body(status, message, kind)
    if isinstance(error, dict):  # as Portkey relays a provider's error to a chat client
        return openai.provider_error(call.service, {"message": message, "type": kind})
    return openai.error_body(status, message, kind)


_BETA = re.compile(r"[A-Za-z0-9._-]{1,100}")


def _betas(given: Any) -> str | None:
    """`anthropic_beta` in a body (Portkey's other form of the `anthropic-beta` header): a
    name or a list of names, sent as the header's comma-separated value."""
    if given is None:
        return None
    names = [given] if isinstance(given, str) else given
    if not isinstance(names, list) or not 0 < len(names) <= 32:
        raise Unsupported("`anthropic_beta` must be a beta's name or a list of up to 32")
    if not all(isinstance(n, str) and _BETA.fullmatch(n) for n in names):
        raise Unsupported("`anthropic_beta` names a beta in letters, digits, `.`, `_` and `-`")
    return ",".join(names)
