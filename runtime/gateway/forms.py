"""Which of the request forms a request uses: `model: "@provider/model"`, the
`x-portkey-provider` (or legacy `x-portkey-virtual-key`) header with a bare model, the
`x-portkey-config` header (a slug or inline JSON), or none (the workspace's default_config).
Everything here comes from the client and is checked before the router sees it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from runtime.bundle.errors import InvalidConfig
from runtime.bundle.hosts import credential_header
from runtime.bundle.money import MAX_TOKENS
from runtime.bundle.values import value
from runtime.gateway.replies import Failure
from runtime.routing.inline import parse_config
from runtime.routing.unique import Ids

_TRACE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}\Z")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]{1,256}\Z")
MAX_FORWARDED = 64
# headers that frame or route the request: the gateway's own to set, never a client's
# framing; trace context, which goes upstream only as validated (tracing.py); and which
# OpenAI organization and project are billed, which is the catalog's to say (its secrets)
NOT_FORWARDED = frozenset({
    "host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive",
    "te", "trailer", "upgrade", "expect", "accept-encoding", "content-encoding",
    "traceparent", "tracestate", "openai-organization", "openai-project",
})  # fmt: skip
MAX_METADATA_BYTES = 8 * 1024


MAX_TIMEOUT_MS = 3_600_000  # as an inline config's request_timeout


@value
class Form:
    model: str | None
    provider: str | None
    config: str | dict[str, Any] | None
    metadata: dict[str, Any] | None
    trace_id: str
    timeout_ms: int | None = None  # x-portkey-request-timeout: wins over the config's
    forward: tuple[str, ...] | None = None  # x-portkey-forward-headers: wins over the config's


def read_form(
    headers: Mapping[str, str], body: Mapping[str, Any], trace_id: str | None = None
) -> Form:
    """`trace_id`: the id to use when the client sends none (else a new one)."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise Failure(400, "`model` must be a string", "invalid_request")
    if not _portkey_headers(headers):  # the common case: the body names everything
        return Form(model, None, None, None, trace_id or new_trace_id())
    return Form(model, _provider(headers), _config(headers), _metadata(headers),
                _trace_id(headers, trace_id), _timeout(headers), _forward(headers))  # fmt: skip


def _forward(headers: Mapping[str, str]) -> tuple[str, ...] | None:
    """Client headers to pass upstream as they are (Portkey's comma list); never one that
    may carry a credential (the gateway key among them) or that frames the request."""
    value = headers.get("x-portkey-forward-headers")
    if value is None:
        return None
    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    if len(names) > MAX_FORWARDED:
        raise Failure(400, f"`x-portkey-forward-headers` names more than {MAX_FORWARDED} "
                      "headers", "invalid_request")  # fmt: skip
    for name in names:
        if not _HEADER_NAME.match(name) or name in NOT_FORWARDED:
            raise Failure(400, f"`x-portkey-forward-headers`: `{name[:64]}` cannot be forwarded",
                          "invalid_request")  # fmt: skip
        if credential_header(name):
            raise Failure(400, f"`x-portkey-forward-headers`: `{name}` may carry a credential; "
                          "the catalog's own authenticate", "invalid_request")  # fmt: skip
    return tuple(dict.fromkeys(names))


def _timeout(headers: Mapping[str, str]) -> int | None:
    value = headers.get("x-portkey-request-timeout")
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 7
            and 1 <= int(text) <= MAX_TIMEOUT_MS):  # fmt: skip
        raise Failure(400, "`x-portkey-request-timeout` is a whole number of milliseconds "
                      f"from 1 to {MAX_TIMEOUT_MS}", "invalid_request")  # fmt: skip
    return int(text)


# Portkey's headers that move a provider to another host, resource, region or account, or
# carry its credentials: the catalog decides those (as for inline configs), so a request
# that sends one is refused rather than silently routed elsewhere than it asked.
_DESTINATION_PREFIXES = ("x-portkey-aws-", "x-portkey-azure-", "x-portkey-vertex-",
                         "x-portkey-bedrock-")  # fmt: skip


def _portkey_headers(headers: Mapping[str, str]) -> bool:
    """Whether the request sends any `x-portkey-*` header, in one pass over the names that
    also refuses the destination headers (all of them `x-portkey-*`)."""
    found = False
    for name in headers:
        low = name.lower()
        if not low.startswith("x-portkey-"):
            continue
        found = True
        if low == "x-portkey-custom-host" or low.startswith(_DESTINATION_PREFIXES):
            raise Failure(400, f"`{low[:64]}` is not accepted: the catalog sets where a provider "
                          "is and how it authenticates (a custom_host goes in a config, held to "
                          "the catalog's allowed_hosts)", "invalid_request")  # fmt: skip
    return found


def _provider(headers: Mapping[str, str]) -> str | None:
    named = headers.get("x-portkey-provider")
    legacy = headers.get("x-portkey-virtual-key")
    if (named is not None and legacy is not None
            and named.strip().removeprefix("@") != legacy.strip().removeprefix("@")):  # fmt: skip
        raise Failure(400, "`x-portkey-provider` and `x-portkey-virtual-key` name different "
                      "providers", "invalid_request")  # fmt: skip
    found = named if named is not None else legacy
    if found is not None and not found.strip():
        raise Failure(400, "an empty provider header", "invalid_request")
    return found.strip() if found is not None else None


def _config(headers: Mapping[str, str]) -> str | dict[str, Any] | None:
    value = headers.get("x-portkey-config")
    if value is None:
        return None
    text = value.strip()
    if text.startswith("{"):
        return parse_config(text)  # InvalidConfig (400) names what is wrong
    if not text:
        raise InvalidConfig(["`x-portkey-config` is empty: a config slug or a JSON object"])
    return text


def _metadata(headers: Mapping[str, str]) -> dict[str, Any] | None:
    value = headers.get("x-portkey-metadata")
    if value is None:
        return None
    if len(value) > MAX_METADATA_BYTES // 4 and _utf8_size(value) > MAX_METADATA_BYTES:
        raise Failure(400, f"`x-portkey-metadata` is longer than {MAX_METADATA_BYTES} bytes",
                      "invalid_request")  # fmt: skip
    try:
        found = json.loads(value)
    except (ValueError, RecursionError):
        raise Failure(400, "`x-portkey-metadata` is not a JSON object", "invalid_request") from None
    if not isinstance(found, dict):
        raise Failure(400, "`x-portkey-metadata` is not a JSON object", "invalid_request")
    return found


def _utf8_size(text: str) -> int:
    """Bytes, as the bound says: a header's characters may be up to four bytes each."""
    return len(text.encode("utf-8", "surrogatepass"))


def any_trace_id(headers: Mapping[str, str]) -> str:
    """The client's trace id when it is well formed, else a new one (for error answers)."""
    given = headers.get("x-portkey-trace-id")
    return given if given is not None and _TRACE_ID.match(given) else new_trace_id()


_TRACE_IDS = Ids(20, digits=12)  # unique across replicas and forked workers


def new_trace_id() -> str:
    return _TRACE_IDS.next()


def _trace_id(headers: Mapping[str, str], fallback: str | None) -> str:
    given = headers.get("x-portkey-trace-id")
    if given is None:
        return fallback or new_trace_id()
    if not _TRACE_ID.match(given):
        raise Failure(400, "`x-portkey-trace-id` is 1-128 characters of A-Z a-z 0-9 _ . : -",
                      "invalid_request")  # fmt: skip
    return given


MAX_CHOICES = 1_000_000  # what a reservation multiplies its output cap by, at most


def choices(body: Mapping[str, Any], endpoint: str) -> int:
    """How many completions the body asks for, each up to its output cap: `n` on chat;
    `n` or `best_of` (the upstream writes and bills all of those) times the prompts on
    completions (a list of strings or of token lists is several prompts; a list of
    token numbers, one). A value the upstream will refuse counts as 1."""
    if endpoint == "chat":
        return _count(body.get("n"))
    if endpoint != "completions":
        return 1
    prompt = body.get("prompt")
    prompts = 1
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        prompts = len(prompt)
    return min(max(_count(body.get("n")), _count(body.get("best_of"))) * prompts, MAX_CHOICES)


_STORED = ("previous_response_id", "conversation", "prompt")  # Responses input kept upstream


def remote_input(body: Mapping[str, Any], endpoint: str) -> bool:
    """Whether the body names input it does not carry, which the upstream bills by its
    size, not the body's: an image or file by URL or id, a stored response, conversation,
    prompt or item (the body's bytes then bound nothing: the context window does)."""
    if endpoint == "responses":
        if any(body.get(name) is not None for name in _STORED):
            return True
        return _names_remote(body.get("input"), 0)
    if endpoint == "messages":
        return _messages_remote(body)
    if endpoint != "chat":
        return False
    messages = body.get("messages")
    if type(messages) is not list:
        return False
    for message in messages:  # a loop, not any(): this runs for every chat request
        content = message.get("content") if type(message) is dict else None
        if type(content) is list and _names_remote(content, 1):
            return True
    return False


def _names_remote(items: Any, depth: int) -> bool:
    if type(items) is not list:
        return False
    for part in items:
        if type(part) is not dict:
            continue
        if "file_id" in part or "file_url" in part or part.get("type") == "item_reference":
            return True
        image = part.get("image_url")
        url = image.get("url") if type(image) is dict else image
        if type(url) is str and not url.startswith("data:"):
            return True
        file = part.get("file")
        if type(file) is dict and ("file_id" in file or "file_url" in file):
            return True
        if depth < 1 and _names_remote(part.get("content"), depth + 1):  # a Responses item
            return True
    return False


_SOURCES = frozenset({"url", "file"})  # a Messages block's `source` not in the body


def _messages_remote(body: Mapping[str, Any]) -> bool:
    """Anthropic's Messages: an image or document block whose `source` is a URL or a file
    id, in a message, the system prompt, or a tool result's or a document's content."""
    stack: list[tuple[Any, int]] = [(body.get("system"), 0)]
    messages = body.get("messages")
    if type(messages) is list:
        stack += [(m.get("content"), 0) for m in messages if type(m) is dict]
    while stack:
        blocks, depth = stack.pop()
        if type(blocks) is not list:
            continue
        for block in blocks:
            if type(block) is not dict:
                continue
            source = block.get("source")
            if type(source) is dict:
                if source.get("type") in _SOURCES or "file_id" in source or "url" in source:
                    return True
                if depth < 2:
                    stack.append((source.get("content"), depth + 1))  # a document's blocks
            if depth < 2:
                stack.append((block.get("content"), depth + 1))  # a tool result's blocks
    return False


def _count(value: Any) -> int:
    if type(value) is int and 1 <= value <= MAX_CHOICES:
        return value
    return 1


# the fields that cap an endpoint's output, first found first: only the endpoint's own (a
# `max_tokens` on /v1/responses caps nothing there, and must not shrink the reservation)
_CAPS: Mapping[str, tuple[str, ...]] = {
    "chat": ("max_completion_tokens", "max_tokens"),
    "responses": ("max_output_tokens",),
}


def max_output(body: Mapping[str, Any], endpoint: str) -> int | None:
    """The most tokens the client lets the model write (None: the model's own limit)."""
    if endpoint == "embeddings":
        return 0
    for name in _CAPS.get(endpoint, ("max_tokens",)):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
            raise Failure(400, f"`{name}` must be an integer from 0 to {MAX_TOKENS}",
                          "invalid_request")  # fmt: skip
        return value
    return None
