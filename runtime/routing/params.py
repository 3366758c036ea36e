"""The request body an attempt sends: the request's params, filled by the provider's and the
config's `default_params`, overridden by `override_params`, minus `drop_params`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_STEP = re.compile(r"([^.\[\]]+)|\[(\*|[0-9]+)\]")
_ALL = object()  # the `[*]` step
# a key, then `.key`, `[n]` or `[*]` steps; each alternative starts with its own character,
# so matching is linear
_DROP_PATH = re.compile(r"[^.\[\]]+(?:\.[^.\[\]]+|\[(?:\*|[0-9]{1,6})\])*\Z")
MAX_DROP_PATH = 256


def drop_path_problem(path: object) -> str | None:
    """Why `path` is not a `drop_params` path (`a.b`, `tools[*].function.strict`), or None."""
    if not isinstance(path, str):
        return "a path is a string"
    if len(path) > MAX_DROP_PATH:
        return f"a path longer than {MAX_DROP_PATH} characters"
    if not _DROP_PATH.match(path):
        return f"`{path}` is not a path like `a.b`, `tools[0]` or `tools[*].function.strict`"
    return None


def fill(body: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    """Add what the request lacks, recursively into objects it has; never overwrite."""
    for key, value in defaults.items():
        if key not in body:
            body[key] = _plain(value)
        elif isinstance(body[key], dict) and isinstance(value, Mapping):
            fill(body[key], value)


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` over `base`: scalars and lists replaced, mappings merged key by key."""
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def drop(body: Any, path: str) -> None:
    """Remove `a.b`, `tools[*].function.strict` or `tools[0].x` wherever present."""
    if drop_path_problem(path) is not None:
        return  # configs are checked before they get here; never guess at a bad path
    steps: list[Any] = []
    for m in _STEP.finditer(path):
        key, index = m.group(1), m.group(2)
        steps.append(key if key is not None else (_ALL if index == "*" else int(index)))
    _drop(body, steps)


def _drop(node: Any, steps: Sequence[Any]) -> None:
    if not steps:  # only a checked path reaches here; an empty one removes nothing
        return
    head, rest = steps[0], steps[1:]
    if head is _ALL:
        if isinstance(node, list):
            for item in node:
                _drop(item, rest)
            if not rest:
                node.clear()
    elif isinstance(head, int) or (isinstance(node, list) and head.isascii() and head.isdigit()):
        head = int(head)  # `tools.0` means `tools[0]` too
        if isinstance(node, list) and head < len(node):
            if rest:
                _drop(node[head], rest)
            else:
                del node[head]
    elif isinstance(node, dict) and head in node:
        if rest:
            _drop(node[head], rest)
        else:
            del node[head]


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def request_body(
    request: Mapping[str, Any] | None,
    provider_defaults: Mapping[str, Any],
    leaf_params: Mapping[str, Any] | None,
    model: str,
    owned: bool = False,
) -> dict[str, Any]:
    """`owned`: `request` is a private copy this body may become (no second copy)."""
    if owned and type(request) is dict:
        body: dict[str, Any] = request
    else:
        body = _plain(request) if request else {}  # the caller's stay untouched
    params = leaf_params or {}
    fill(body, params.get("default") or {})
    fill(body, provider_defaults)
    body = deep_merge(body, _plain(params.get("override") or {}))
    for path in params.get("drop") or ():
        drop(body, path)
    body["model"] = model
    return body
