"""Which of the request forms a request uses: `model: "@provider/model"`, the
`x-portkey-provider` (or legacy `x-portkey-virtual-key`) header with a bare model, the
`x-portkey-config` header (a slug or inline JSON), or none (the workspace's default_config).
Everything here comes from the client and is checked before the router sees it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import InvalidConfig
from runtime.gateway.replies import Failure
from runtime.inline import parse_config
from runtime.money import MAX_TOKENS

_TRACE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}\Z")
MAX_METADATA_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class Form:
    model: str | None
    provider: str | None
    config: str | dict[str, Any] | None
    metadata: dict[str, Any] | None
    trace_id: str


def read_form(headers: Mapping[str, str], body: Mapping[str, Any]) -> Form:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise Failure(400, "`model` must be a string", "invalid_request")
    return Form(model, _provider(headers), _config(headers), _metadata(headers),
                _trace_id(headers))  # fmt: skip


def _provider(headers: Mapping[str, str]) -> str | None:
    named = headers.get("x-portkey-provider")
    legacy = headers.get("x-portkey-virtual-key")
    if named is not None and legacy is not None and named.removeprefix("@") != legacy:
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
    if len(value) > MAX_METADATA_BYTES:
        raise Failure(400, f"`x-portkey-metadata` is longer than {MAX_METADATA_BYTES} bytes",
                      "invalid_request")  # fmt: skip
    try:
        found = json.loads(value)
    except (ValueError, RecursionError):
        raise Failure(400, "`x-portkey-metadata` is not a JSON object", "invalid_request") from None
    if not isinstance(found, dict):
        raise Failure(400, "`x-portkey-metadata` is not a JSON object", "invalid_request")
    return found


def any_trace_id(headers: Mapping[str, str]) -> str:
    """The client's trace id when it is well formed, else a new one (for error answers)."""
    given = headers.get("x-portkey-trace-id")
    return given if given is not None and _TRACE_ID.match(given) else uuid.uuid4().hex


def _trace_id(headers: Mapping[str, str]) -> str:
    given = headers.get("x-portkey-trace-id")
    if given is None:
        return uuid.uuid4().hex
    if not _TRACE_ID.match(given):
        raise Failure(400, "`x-portkey-trace-id` is 1-128 characters of A-Z a-z 0-9 _ . : -",
                      "invalid_request")  # fmt: skip
    return given


def max_output(body: Mapping[str, Any], endpoint: str) -> int | None:
    """The most tokens the client lets the model write (None: the model's own limit)."""
    if endpoint == "embeddings":
        return 0
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
            raise Failure(400, f"`{name}` must be an integer from 0 to {MAX_TOKENS}",
                          "invalid_request")  # fmt: skip
        return value
    return None
