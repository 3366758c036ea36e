"""The request body an attempt sends: the request's params, filled by the provider's and the
config's `default_params`, overridden by `override_params`, minus `drop_params`."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runtime.configs import deep_merge

_STEP = re.compile(r"([^.\[\]]+)|\[(\*|\d+)\]")


def fill(body: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    """Add what the request lacks, recursively into objects it has; never overwrite."""
    for key, value in defaults.items():
        if key not in body:
            body[key] = _plain(value)
        elif isinstance(body[key], dict) and isinstance(value, Mapping):
            fill(body[key], value)


def drop(body: Any, path: str) -> None:
    """Remove `a.b`, `tools[*].function.strict` or `tools[0].x` wherever present."""
    steps = [m.group(1) if m.group(1) is not None else m.group(2) for m in _STEP.finditer(path)]
    _drop(body, steps)


def _drop(node: Any, steps: Sequence[str]) -> None:
    head, rest = steps[0], steps[1:]
    if head == "*" and isinstance(node, list):
        for item in node:
            if rest:
                _drop(item, rest)
        if not rest:
            node.clear()
    elif head.isdigit() and isinstance(node, list):
        i = int(head)
        if i < len(node):
            if rest:
                _drop(node[i], rest)
            else:
                del node[i]
    elif isinstance(node, dict) and head in node:
        if rest:
            _drop(node[head], rest)
        else:
            del node[head]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def request_body(
    request: Mapping[str, Any] | None,
    provider_defaults: Mapping[str, Any],
    leaf_params: Mapping[str, Any] | None,
    model: str,
) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(dict(request)) if request else {}
    params = leaf_params or {}
    fill(body, params.get("default") or {})
    fill(body, provider_defaults)
    body = deep_merge(body, _plain(params.get("override") or {}))
    for path in params.get("drop") or ():
        drop(body, path)
    body["model"] = model
    return body
