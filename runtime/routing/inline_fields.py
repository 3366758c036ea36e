"""What each field of an inline config may hold: the bounds of a client's config, the
fields refused (secrets, destinations), one check per kind of value, and the tables mapping
each field of a target, strategy, condition, retry, cache and sticky setting to its check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from runtime.bundle.hosts import HostError, credential_header, parse_origin
from runtime.routing.bounds import CONFIG_BOUNDS
from runtime.routing.configs import secret_ref

if TYPE_CHECKING:
    from runtime.routing.inline import Checker

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


def _params(value: Any, path: tuple[str | int, ...], c: Checker) -> None:
    """`override_params`/`default_params`: an object, and not the client's `stream`."""
    _object(value, path, c)
    if isinstance(value, dict) and "stream" in value:
        c.add(
            (*path, "stream"),
            "a config may not set `stream`: the request's own `stream` decides whether its "
            "answer streams",
            "remove it, and send `stream: true` in the request body to stream",
        )


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
    "override_params": _params, "default_params": _params, "drop_params": _drops,
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
