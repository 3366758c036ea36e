"""Routing configs a client sends with its request (the gateway's `x-portkey-config`).

A client is not the catalog's author, so an inline config is held to more than a compiled
one (docs/inline-configs.md):

- it is parsed strictly (`parse_config`: bytes bounded, no NaN/Infinity, no duplicate keys,
  integers and nesting bounded) and bounded as a value (`runtime.bounds`);
- its structure is checked field by field, numbers within their ranges, then normalized by
  the same rules as a compiled config (`runtime.configs.normalize`);
- it routes only to catalog providers (`@slug`): no raw services, no credentials of any
  kind (literal or `{env:}`/`{file:}` reference: the gateway would read its own environment
  or files for the client), no field that moves a provider to another resource or region,
  no forwarding of credential headers;
- a `custom_host` is accepted only where the catalog lets that provider's credentials go
  (`check_destination`, with the bundle: AccessDenied, 403, names the provider's rule).

Every problem is an InvalidConfig naming the path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from runtime.bounds import CONFIG_BOUNDS, plain_json, where
from runtime.config_syntax import MODE_SYNONYMS, MODES, query_field
from runtime.configs import Normalized, Problem, normalize, secret_ref
from runtime.errors import AccessDenied, InvalidConfig
from runtime.hosts import HostError, credential_header, host_allowed, parse_origin
from runtime.suggest import did_you_mean

MAX_CONFIG_BYTES = 32 * 1024  # a header value; servers commonly cap all headers at 8-32 KiB
MAX_JSON_DEPTH = CONFIG_BOUNDS.depth
MAX_INT_DIGITS = 19  # 2^63 has 19 digits
MAX_TARGETS = 128  # in the whole tree
MAX_TARGET_DEPTH = 8  # strategies inside strategies
MAX_CONDITIONS = 64  # per strategy
MAX_QUERY_NODES = 256  # per condition
MAX_REGEXES = 8  # `$regex` operators per config (each costs up to ~2 ms per request)
MAX_CODES = 100
MAX_HEADERS = 64
MAX_HOOKS = 64
MAX_WEIGHT = Decimal(1_000_000)
MAX_WEIGHT_PLACES = 16  # what a float prints; more would make the weighted pick's integers huge
MAX_TIMEOUT_MS = 3_600_000
MAX_COUNT = 2**31 - 1
MAX_NAME = 256

# Fields that move a provider to another resource, region or project: the catalog's
# integration settings decide those, never a client.
DESTINATION_FIELDS = (
    "resource_name", "azure_resource_name", "azure_endpoint_name", "azure_region",
    "azure_deployment_type", "aws_region", "vertex_project_id", "vertex_region",
)  # fmt: skip
SECRET_FIELDS = ("api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                 "vertex_service_account_json", "Authorization")  # fmt: skip
STRATEGY_FIELDS = ("mode", "on_status_codes", "conditions", "default", "sticky", "cb_config")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}\Z")

Check = Callable[[Any, tuple[str | int, ...], "Checker"], None]


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
            self.add(path, f"more than {MAX_TARGETS} targets in one config")
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
            self.add(path, f"a query of more than {MAX_QUERY_NODES} values")

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


# -- value checks (one per kind of field) ---------------------------------------------------
def _string(limit: int = MAX_NAME) -> Check:
    def check(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
        if not isinstance(value, str):
            c.add(path, "expected a string")
        elif len(value) > limit:
            c.add(path, f"a string longer than {limit} characters")

    return check


def _integer(low: int, high: int, what: str) -> Check:
    def check(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            c.add(path, f"expected {what} ({low}-{high})")

    return check


def _flag(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    if not isinstance(value, bool):
        c.add(path, "expected true or false")


def _object(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    if not isinstance(value, dict):
        c.add(path, "expected an object")
        return
    _no_secret_refs(value, path, c)


def _no_secret_refs(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    """`{env: …}`/`{file: …}` anywhere would ask the gateway to read its own secrets."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, path)]
    while stack:
        node, here = stack.pop()
        if isinstance(node, dict):
            if secret_ref(node) is not None:
                c.add(
                    here,
                    "an inline config may not name a secret reference (`env`/`file`)",
                    "credentials live in the catalog; name a provider `@slug` instead",
                )
                continue
            stack.extend((v, (*here, k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*here, i)) for i, v in enumerate(node))


def _provider(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    if not isinstance(value, str) or len(value) > MAX_NAME:
        c.add(path, "expected a provider `@slug`")
    elif not value.startswith("@"):
        c.add(path, f"`{value}` is a raw service: an inline config routes only to catalog "
                    "providers", "name a catalog provider as `@slug`")  # fmt: skip


def _secret(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    c.add(
        path,
        "an inline config may not carry credentials (literal or `env`/`file` reference)",
        "route to a catalog provider `@slug`: it holds the credentials",
    )


def _destination(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    c.add(
        path,
        f"an inline config may not move a provider to another resource, region or project "
        f"(`{path[-1]}`)",
        "the catalog's integration settings decide it",
    )


def _weight(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        c.add(path, "a weight is a number (0 or more)")
        return
    try:
        number = Decimal(str(value)).normalize()
    except (InvalidOperation, ValueError):
        c.add(path, "a weight is a number (0 or more)")
        return
    exponent = number.as_tuple().exponent
    if not number.is_finite() or not 0 <= number <= MAX_WEIGHT:
        c.add(path, f"a weight is between 0 and {MAX_WEIGHT}")
    elif isinstance(exponent, int) and exponent < -MAX_WEIGHT_PLACES:
        c.add(path, f"a weight has at most {MAX_WEIGHT_PLACES} decimal places")


def _codes(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    if c.sized_list(value, path, MAX_CODES):
        for i, code in enumerate(value):
            if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
                c.add((*path, i), "expected an HTTP status code (100-599)")


def _drops(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    if c.sized_list(value, path, 64):  # each string's syntax is the normalizer's (shared) check
        for i, item in enumerate(value):
            if not isinstance(item, str):
                c.add((*path, i), "a `drop_params` path is a string")


def _custom_host(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    try:
        parse_origin(value)
    except HostError as exc:
        c.add(path, f"`custom_host`: {exc}", "write `https://host[:port]/path`")


def _headers(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    if not c.sized_list(value, path, MAX_HEADERS):
        return
    for i, name in enumerate(value):
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            c.add((*path, i), "expected an HTTP header name")
        elif credential_header(name):
            c.add((*path, i), f"`{name}` carries credentials: an inline config may not "
                              "forward it to a provider")  # fmt: skip


def _hooks(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    if not c.sized_list(value, path, MAX_HOOKS):
        return
    for i, hook in enumerate(value):
        if isinstance(hook, dict):
            if not isinstance(hook.get("id", ""), str):
                c.add((*path, i, "id"), "a hook `id` is a string")
            _no_secret_refs(hook, (*path, i), c)
        elif not isinstance(hook, str):
            c.add((*path, i), "expected a guardrail id or an object with `id`")


def _list_of(check: Check, most: int) -> Check:
    def each(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
        if c.sized_list(value, path, most):
            for i, item in enumerate(value):
                check(item, (*path, i), c)

    return each


def _shape(checks: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    def check(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
        if c.keys(value, checks, path):
            for name in required:
                if value.get(name) is None:
                    c.add(path, f"`{name}` is required here")

    return check


def _one_of(*choices: str) -> Check:
    def check(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
        if value not in choices:
            c.add(path, f"expected one of {', '.join(choices)}")

    return check


_COUNT = _integer(0, MAX_COUNT, "a whole number")
_TEXT = _string()
CB_CHECKS: dict[str, Check] = {
    "failure_threshold": _COUNT, "failure_threshold_percentage": _integer(0, 100, "a percentage"),
    "minimum_requests": _COUNT, "cooldown_interval": _COUNT, "failure_status_codes": _codes,
}  # fmt: skip
STICKY_CHECKS: dict[str, Check] = {
    "enabled": _flag,
    "hash_fields": lambda v, p, c: c.hash_fields(v, p),
    "ttl": _integer(1, MAX_COUNT, "seconds"),
}
STRATEGY_CHECKS: dict[str, Check] = {
    "mode": lambda v, p, c: None,  # checked with its synonyms in Checker.strategy
    "on_status_codes": _codes,
    "conditions": lambda v, p, c: c.conditions(v, p),
    "default": _TEXT,
    "sticky": _shape(STICKY_CHECKS),
    "cb_config": _shape(CB_CHECKS),
}
CONDITION_CHECKS: dict[str, Check] = {"query": lambda v, p, c: c.query(v, p), "then": _TEXT}
RETRY_CHECKS: dict[str, Check] = {
    "attempts": _integer(0, 5, "retry attempts"), "on_status_codes": _codes,
    "use_retry_after_headers": _flag, "use_retry_after_header": _flag,
}  # fmt: skip
CACHE_CHECKS: dict[str, Check] = {
    "mode": _one_of("simple", "semantic"), "max_age": _COUNT,
}  # fmt: skip
DEPLOYMENT_CHECKS: dict[str, Check] = {
    "deployment_id": _TEXT, "alias": _TEXT, "api_version": _TEXT, "is_default": _flag,
}  # fmt: skip
TARGET_FIELDS: dict[str, Check] = {
    "strategy": lambda v, p, c: c.strategy(v, p),
    "targets": lambda v, p, c: None,  # Checker.targets_list (it needs the depth)
    "name": _TEXT, "provider": _provider, "virtual_key": _TEXT,
    "weight": _weight, "on_status_codes": _codes,
    "override_params": _object, "default_params": _object, "drop_params": _drops,
    "retry": _shape(RETRY_CHECKS, ("attempts",)), "cache": _shape(CACHE_CHECKS, ("mode",)),
    "cb_config": _shape(CB_CHECKS), "request_timeout": _integer(1, MAX_TIMEOUT_MS, "milliseconds"),
    "custom_host": _custom_host, "forward_headers": _headers, "passthrough": _flag,
    "strict_open_ai_compliance": _flag, "input_guardrails": _hooks, "output_guardrails": _hooks,
    "before_request_hooks": _hooks, "after_request_hooks": _hooks, "metadata": _object,
    "prompt_id": _TEXT, "deployment_id": _TEXT, "api_version": _TEXT,
    "deployments": _list_of(_shape(DEPLOYMENT_CHECKS, ("deployment_id",)), 64),
    "azure_deployment_id": _TEXT, "azure_api_version": _TEXT, "azure_model_name": _TEXT,
    "azure_deployment_name": _TEXT, "openai_organization": _TEXT, "openai_project": _TEXT,
    **dict.fromkeys(DESTINATION_FIELDS, _destination),
    **dict.fromkeys(SECRET_FIELDS, _secret),
}  # fmt: skip


# -- destinations ---------------------------------------------------------------------------
def check_destination(
    workspace: str,
    provider: Any,  # runtime.bundle.Provider
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
