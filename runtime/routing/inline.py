"""Routing configs a client sends with its request (the gateway's `x-portkey-config`).

A client is not the catalog's author, so an inline config is held to more than a compiled
one (docs/inline-configs.md):

- it is parsed strictly (`parse_config`: bytes bounded, no NaN/Infinity, no duplicate keys,
  integers and nesting bounded) and bounded as a value (`runtime.routing.bounds`);
- its structure is checked field by field, numbers within their ranges, then normalized by
  the same rules as a compiled config (`runtime.routing.configs.normalize`);
- it routes only to catalog providers (`@slug`): no raw services, no credentials of any
  kind (literal or `{env:}`/`{file:}` reference: the gateway would read its own environment
  or files for the client), no field that moves a provider to another resource or region,
  no forwarding of credential headers;
- a `custom_host` is accepted only where the catalog lets that provider's credentials go
  (`check_destination`, with the bundle: AccessDenied, 403, names the provider's rule).

Every problem is an InvalidConfig naming the path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runtime.bundle.config_syntax import MODE_SYNONYMS, MODES, query_field
from runtime.bundle.errors import AccessDenied, InvalidConfig
from runtime.bundle.hosts import HostError, host_allowed, parse_origin
from runtime.bundle.suggest import did_you_mean
from runtime.routing.bounds import CONFIG_BOUNDS, plain_json, where
from runtime.routing.configs import Normalized, Problem, normalize
from runtime.routing.inline_fields import (
    CACHE_CHECKS,
    CB_CHECKS,
    CONDITION_CHECKS,
    DEPLOYMENT_CHECKS,
    DESTINATION_FIELDS,
    MAX_CODES,
    MAX_CONDITIONS,
    MAX_CONFIG_BYTES,
    MAX_COUNT,
    MAX_HEADERS,
    MAX_HOOKS,
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    MAX_NAME,
    MAX_QUERY_NODES,
    MAX_REGEXES,
    MAX_TARGET_DEPTH,
    MAX_TARGETS,
    MAX_TIMEOUT_MS,
    MAX_WEIGHT,
    MAX_WEIGHT_PLACES,
    RETRY_CHECKS,
    SECRET_FIELDS,
    STICKY_CHECKS,
    STRATEGY_CHECKS,
    STRATEGY_FIELDS,
    TARGET_FIELDS,
    Check,
)
from runtime.routing.inline_parse import json_depth, parse_config


# -- checking -------------------------------------------------------------------------------
def compile_inline(config: Any) -> Normalized:
    """An inline config, bounded, checked and normalized; InvalidConfig listing every problem."""
    copy = plain_json(config, CONFIG_BOUNDS)
    checker = Checker()
    checker.target(copy, (), 0)
    problems = checker.problems
    if not problems:
        normalized = normalize(copy)
        # warnings are the catalog author's to read; a client's config is refused on errors
        problems = [p for p in normalized.problems if not p.code.startswith("W")]
        if not problems:
            return normalized
    raise InvalidConfig([describe(p) for p in problems[:20]])


def describe(problem: Problem) -> str:
    hint = f" ({problem.help})" if problem.help else ""
    return f"{where(problem.path)}: {problem.message}{hint}"


class Checker:
    """Field by field, what an inline config may hold. Collects problems; never raises."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.targets = 0
        self.regexes = 0

    def add(self, path: tuple[str | int, ...], message: str, help: str | None = None) -> None:
        self.problems.append(Problem("E0205", message, path, help))

    # -- targets ----------------------------------------------------------------------------
    def target(self, t: Any, path: tuple[str | int, ...], depth: int) -> None:
        if not isinstance(t, dict):
            self.add(path, "a config (and each target) is a JSON object")
            return
        self.targets += 1
        if self.targets == MAX_TARGETS + 1:
            self.add(path, f"more than {MAX_TARGETS} targets in one config (the config and "
                     "each strategy in it count as one)")  # fmt: skip
        for key, value in t.items():
            here = (*path, key)
            check = TARGET_FIELDS.get(key)
            if check is None:
                guess = did_you_mean(key, TARGET_FIELDS)
                self.add(here, f"unknown field `{key[:80]}`",
                         f"did you mean `{guess}`?" if guess else None)  # fmt: skip
            elif key == "targets":
                self.targets_list(value, here, depth)
            elif value is not None:
                check(value, here, self)
        if "strategy" in t and not t.get("targets"):
            self.add(path, "a `strategy` needs a non-empty `targets` list")
        if t.get("targets") and "strategy" not in t:
            self.add(path, "`targets` need a `strategy` with a `mode`")

    def targets_list(self, value: Any, path: tuple[str | int, ...], depth: int) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            self.add(path, "expected a list of targets")
        elif depth + 1 > MAX_TARGET_DEPTH:
            self.add(path, f"strategies nested deeper than {MAX_TARGET_DEPTH} levels")
        else:
            for i, child in enumerate(value):
                self.target(child, (*path, i), depth + 1)

    # -- strategy ---------------------------------------------------------------------------
    def strategy(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not self.keys(value, STRATEGY_CHECKS, path):
            return
        mode = value.get("mode")
        if mode not in MODES:
            text = str(mode)[:40]
            guess = MODE_SYNONYMS.get(text.lower()) or did_you_mean(text, MODES)
            shown = f"did you mean `{guess}`?" if guess else f"modes: {', '.join(MODES)}"
            self.add((*path, "mode"), f"unknown strategy mode `{text}`", shown)
        if mode == "conditional" and value.get("conditions") is None:
            self.add(path, "a conditional strategy needs `conditions`")

    def conditions(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not self.sized_list(value, path, MAX_CONDITIONS):
            return
        for i, cond in enumerate(value):
            here = (*path, i)
            if self.keys(cond, CONDITION_CHECKS, here):
                for name in ("query", "then"):
                    if name not in cond:
                        self.add(here, f"a condition needs `{name}`")

    def query(self, value: Any, path: tuple[str | int, ...]) -> None:
        """Size and shape; operators and fields are the normalizer's (shared) checks."""
        if not isinstance(value, dict):
            self.add(path, "a query is an object of fields to conditions")
            return
        nodes = 0
        stack: list[Any] = [value]
        while stack:
            node = stack.pop()
            nodes += 1
            if isinstance(node, dict):
                if "$regex" in node:
                    self.regexes += 1
                    if self.regexes == MAX_REGEXES + 1:
                        self.add(path, f"more than {MAX_REGEXES} `$regex` conditions in one config")
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        if nodes > MAX_QUERY_NODES:
            self.add(path, f"a query of more than {MAX_QUERY_NODES} values (its objects and "
                     "lists count as one each)")  # fmt: skip

    def hash_fields(self, value: Any, path: tuple[str | int, ...]) -> None:
        if self.sized_list(value, path, 16):
            for i, name in enumerate(value):
                if not isinstance(name, str) or not query_field(name):
                    self.add((*path, i), "a hash field is `metadata.<key>`, `params.<key>` "
                                         "or `url.pathname`")  # fmt: skip

    # -- shared shapes ----------------------------------------------------------------------
    def keys(self, value: Any, checks: Mapping[str, Check], path: tuple[str | int, ...]) -> bool:
        """An object whose keys `checks` knows, each value checked; False if not an object."""
        if not isinstance(value, dict):
            self.add(path, "expected an object")
            return False
        for key, item in value.items():
            check = checks.get(key)
            if check is None:
                guess = did_you_mean(key, checks)
                self.add((*path, key), f"unknown field `{key[:80]}`",
                         f"did you mean `{guess}`?" if guess else None)  # fmt: skip
            elif item is not None:
                check(item, (*path, key), self)
        return True

    def sized_list(self, value: Any, path: tuple[str | int, ...], most: int) -> bool:
        if not isinstance(value, list):
            self.add(path, "expected a list")
            return False
        if len(value) > most:
            self.add(path, f"a list of more than {most} items")
            return False
        return True


# -- destinations ---------------------------------------------------------------------------
def check_destination(
    workspace: str,
    provider: Any,  # runtime.bundle.load.Provider
    custom_host: str,
    path: tuple[str | int, ...],
    origin_of: Callable[[str], str | None],
) -> None:
    """AccessDenied unless `custom_host` is where `provider`'s credentials may go."""
    try:
        origin = parse_origin(custom_host)
    except HostError as exc:  # checked before; a compiled tree may still hold one
        raise InvalidConfig([f"{where(path)}.custom_host: {exc}"]) from None
    if host_allowed(origin, provider.base_url, provider.allowed_hosts):
        return
    allowed = [f"`{provider.base_url}`"] if provider.base_url else []
    allowed += [f"`{h}`" for h in provider.allowed_hosts]
    raise AccessDenied(
        workspace,
        f"@{provider.slug} via {origin}",
        f"provider `@{provider.slug}`",
        f"sends its credentials only to {', '.join(allowed) or 'its own base URL'} "
        f"(`custom_host` at `{where(path)}`; the catalog's `allowed_hosts` can add hosts)",
        origin_of(f"providers/{provider.slug}/allowed_hosts")
        or origin_of(f"providers/{provider.slug}"),
    )


__all__ = [  # importable from here, as before the split
    "CACHE_CHECKS",
    "CB_CHECKS",
    "CONDITION_CHECKS",
    "DEPLOYMENT_CHECKS",
    "DESTINATION_FIELDS",
    "MAX_CODES",
    "MAX_CONDITIONS",
    "MAX_CONFIG_BYTES",
    "MAX_COUNT",
    "MAX_HEADERS",
    "MAX_HOOKS",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "MAX_NAME",
    "MAX_QUERY_NODES",
    "MAX_REGEXES",
    "MAX_TARGETS",
    "MAX_TARGET_DEPTH",
    "MAX_TIMEOUT_MS",
    "MAX_WEIGHT",
    "MAX_WEIGHT_PLACES",
    "RETRY_CHECKS",
    "SECRET_FIELDS",
    "STICKY_CHECKS",
    "STRATEGY_CHECKS",
    "STRATEGY_FIELDS",
    "TARGET_FIELDS",
    "Check",
    "Checker",
    "check_destination",
    "compile_inline",
    "describe",
    "json_depth",
    "parse_config",
]
