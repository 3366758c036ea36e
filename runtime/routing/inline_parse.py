"""Parsing an inline config strictly: bytes bounded, strict JSON (no NaN or Infinity, no
duplicate keys), integers and nesting bounded, and a reason a client can read when it fails.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.bundle.errors import InvalidConfig
from runtime.routing.inline_fields import MAX_CONFIG_BYTES, MAX_INT_DIGITS, MAX_JSON_DEPTH


# -- parsing --------------------------------------------------------------------------------
def parse_config(data: bytes | str, limit: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """A config object from JSON text (UTF-8 bytes or str), strictly; InvalidConfig if not."""
    if isinstance(data, str):
        if len(data) > limit:  # each character is at least one byte
            raise InvalidConfig([f"config: larger than {limit} bytes"])
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidConfig(["config: not valid Unicode text"]) from None
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        raise InvalidConfig(["config: expected JSON text"])
    if len(raw) > limit:
        raise InvalidConfig([f"config: larger than {limit} bytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidConfig(["config: not UTF-8 text"]) from None
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise InvalidConfig([f"config: nesting deeper than {MAX_JSON_DEPTH} levels"])
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except InvalidConfig:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidConfig([f"config: not valid JSON ({_json_reason(exc)})"]) from None
    if not isinstance(value, dict):
        raise InvalidConfig(["config: a routing config is a JSON object"])
    return value


def json_depth(text: str) -> int:
    """The deepest nesting of `[`/`{` outside strings, in one linear pass (before the parser
    could recurse into a bomb of 160 KB of `[`)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidConfig([f"config: the key `{key[:80]}` appears twice in one object"])
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise InvalidConfig([f"config: `{name}` is not a JSON number"])


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidConfig([f"config: an integer with more than {MAX_INT_DIGITS} digits"])
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidConfig([f"config: the number `{text[:40]}` is beyond the float range"])
    return value


def _json_reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return type(exc).__name__
