"""The words the bundle's checks are written in: the bounds (the compiler's, and the
runtime's own that keep a hostile bundle finite), the shape of every member, and primitive
checks that raise `Bad` naming the member they were given.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from runtime.bundle.canonical import MAX_SAFE_INTEGER, is_double_text
from runtime.bundle.hosts import CREDENTIAL_HEADERS

# -- the compiler's bounds (its model/common.py, types.py, routing.py) ------------------
MAX_BUDGET_USD = 10**9
MAX_COUNT = 10**15
MAX_REFILL_YEARS = 100
PER_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
MAX_PRICE_PER_M = Decimal(10_000)
MAX_PER_REQUEST = Decimal(100)
PRICE_PLACES = 10  # USD per 1M tokens: one token costs a whole number of 1e-16 USD
PER_REQUEST_PLACES = 16
MAX_RETRY_ATTEMPTS = 5

# -- the runtime's own bounds: generous; they keep a hostile bundle finite ----------------
MAX_TEXT = 4096  # names, patterns, slugs, URLs, references
MAX_DECIMAL_TEXT = 64
MAX_WEIGHT = Decimal(10) ** 30
MAX_HOSTS = 256
MAX_HOST = 260  # a DNS name (253) with a port
MAX_DROP_PATH = 256
MAX_JSON_DEPTH = 64  # free-form values: params, query values, carried fields
MAX_TREE_DEPTH = 64  # strategies inside strategies

APIS = ("anthropic", "bedrock", "cohere", "google", "openai")
AUTHS = ("api-key", "aws-sigv4", "bearer", "google-service-account", "none", "x-api-key",
         "x-goog-api-key")  # fmt: skip
PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "per_request", "cache_write_1h")
VARIANT_FIELDS = ("tiers", "batch", "service_tiers")  # tables inside a price table
SERVICE_TIERS = ("flex", "priority")
PRICE_SOURCES = frozenset({"registry", "model", "integration", "provider"})
BUDGET_UNITS = frozenset({"usd", "tokens", "requests"})
RATE_UNITS = frozenset({"requests", "tokens"})
COUNTER_LEVELS = frozenset({"integration", "provider", "workspace"})
ORG_COUNTER = "organization"

_PERIOD = re.compile(r"(?:daily|weekly|monthly|none|[1-9][0-9]{0,3}d)\Z")
_DECIMAL = re.compile(r"[0-9]+(?:\.([0-9]+))?\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_HEX = re.compile(r"[0-9a-f]*\Z")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_SECRET_REF = re.compile(r"(?:env:[A-Za-z_][A-Za-z0-9_]*|file:\S.*)\Z", re.S)
_URL = re.compile(r"https?://[^\s/?#]+", re.I)
_HOST = re.compile(r"[^\s/?#@]+\Z")
MAX_HEADERS = 64  # custom headers of one integration, provider or model
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}\Z")
_HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*\Z")
_DROP_STEP = re.compile(r"[^.\[\]]|\[(?:\*|[0-9]+)\]")  # a drop path names at least one step
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")


class Shape:
    """The members an object of one kind must have, and may have."""

    __slots__ = ("allowed", "required")

    def __init__(self, required: str, optional: str = "") -> None:
        self.required = frozenset(required.split())
        self.allowed = self.required | frozenset(optional.split())


TOP = Shape("format digest organization counters integrations providers workspaces configs "
            "provenance")  # fmt: skip
ORGANIZATION = Shape("name currency epoch access", "admin_keys alerts")
ALERTS = Shape("webhook secret")
ACCESS = Shape("allow deny")
COUNTER = Shape("budgets rate_limits", "concurrency")
BUDGET = Shape("unit period limit", "alert_threshold")
RATE_LIMIT = Shape("unit per limit burst")
INTEGRATION = Shape("service api auth base_url credentials settings workspaces access exposed",
                    "headers")  # fmt: skip
PROVIDER = Shape("integration base_url default_params workspaces access custom chain models",
                 "allowed_hosts headers")  # fmt: skip
MODEL = Shape("mode prices price_sources", "context_window max_output_tokens base_url headers")
REF = Shape("ref")
WORKSPACE = Shape("providers access pricing counter default_config api_keys", "aliases")
ALIAS = Shape("from", "provider model config")
PRICE_RULE = Shape("model", "prices free")
API_KEY = Shape("name sha256 disabled")
CONFIG = Shape("workspaces tree")
PROVENANCE = Shape("compiler registry_as_of files origins")
FILE = Shape("path sha256")
COMMON = "name weight on_status_codes"
BRANCH = Shape("mode strategy targets", COMMON)
LEAF = Shape("mode params", f"provider service api_key model retry cache request_timeout "
                            f"custom_host carried {COMMON}")  # fmt: skip
STRATEGY = Shape("", "on_status_codes conditions default sticky cb_config")
CONDITION = Shape("query then")
STICKY = Shape("", "enabled hash_fields ttl")
PARAMS = Shape("override default drop")
RETRY = Shape("attempts", "on_status_codes use_retry_after_headers use_retry_after_header")
CACHE = Shape("mode", "max_age")


class Bad(Exception):
    """A problem, and the path to it, collected step by step as it unwinds."""

    def __init__(self, message: str, *steps: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.steps: list[str | int] = list(reversed(steps))  # innermost first

    def within(self, step: str | int) -> Bad:
        self.steps.append(step)
        return self

    @property
    def path(self) -> str:
        return where(tuple(reversed(self.steps)))


def where(path: tuple[str | int, ...]) -> str:
    """("providers", "openai-prod", "chain", 2) -> `providers.openai-prod.chain[2]`."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _SIMPLE_KEY.match(step):
            out += f".{step}" if out else step
        else:
            out += f"[{json.dumps(step, ensure_ascii=False)[:200]}]"
    return out


def kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


# -- primitives: each raises Bad naming the member it was given ---------------------------


def obj(value: Any, shape: Shape, *steps: str | int) -> dict[str, Any]:
    """An object with the members its kind requires, and none it does not know."""
    if type(value) is not dict:
        raise Bad(f"expected an object, found {kind(value)}", *steps)
    keys = value.keys()
    if not (keys >= shape.required and keys <= shape.allowed):
        missing = sorted(shape.required - keys)
        if missing:
            raise Bad(f"missing member `{missing[0]}`", *steps)
        extra = sorted(keys - shape.allowed)[0]
        raise Bad("unknown member (this runtime does not read it)", *steps, extra)
    return value


def mapping(value: Any, *steps: str | int) -> dict[str, Any]:
    if type(value) is not dict:
        raise Bad(f"expected an object, found {kind(value)}", *steps)
    return value


def array(value: Any, *steps: str | int, nonempty: bool = False) -> list[Any]:
    if type(value) is not list:
        raise Bad(f"expected a list, found {kind(value)}", *steps)
    if nonempty and not value:
        raise Bad("must not be empty", *steps)
    return value


def text(value: Any, *steps: str | int, limit: int = MAX_TEXT, empty: bool = False) -> str:
    if type(value) is not str or not (0 if empty else 1) <= len(value) <= limit:
        if type(value) is not str:
            raise Bad(f"expected a string, found {kind(value)}", *steps)
        raise Bad(f"a string of {len(value)} characters (1 to {limit})", *steps)
    return value


def all_text(items: Any, limit: int = MAX_TEXT, empty: bool = False) -> bool:
    """Every item a string of 1 (or 0) to `limit` characters; long lists at C speed."""
    if len(items) < 8:
        low = 0 if empty else 1
        for v in items:  # noqa: SIM110 - a loop: a generator costs more for short lists
            if type(v) is not str or not low <= len(v) <= limit:
                return False
        return True
    if set(map(type, items)) != {str}:
        return False
    lengths = set(map(len, items))
    return (empty or 0 not in lengths) and max(lengths) <= limit


def texts(value: Any, *steps: str | int, limit: int = MAX_TEXT) -> list[str]:
    items = array(value, *steps)
    if not all_text(items, limit):
        for i, v in enumerate(items):
            text(v, *steps, i, limit=limit)
    return items


def text_map(value: Any, *steps: str | int) -> None:
    items = mapping(value, *steps)
    if not (all_text(items.keys()) and all_text(items.values(), empty=True)):
        for key, v in items.items():
            text(key, *steps, key)
            text(v, *steps, key, empty=True)


def seen(cache: set[Any], key: Any) -> bool:
    """Was this exact value checked before? Values that cannot be hashed never were."""
    try:
        return key in cache
    except TypeError:
        return False


def flag(value: Any, *steps: str | int) -> bool:
    if type(value) is not bool:
        raise Bad(f"expected true or false, found {kind(value)}", *steps)
    return value


def integer(value: Any, low: int, high: int, *steps: str | int) -> int:
    if type(value) is not int or not low <= value <= high:
        if type(value) is not int:
            raise Bad(f"expected a whole number, found {kind(value)}", *steps)
        raise Bad(f"{str(value)[:40]} is outside {low:,}..{high:,}", *steps)
    return value


def decimal(value: Any, high: Decimal, places: int | None, *steps: str | int) -> Decimal:
    """A non-negative exact decimal written as a string: "2.5", "0", "10000"."""
    if type(value) is not str:
        raise Bad(f'expected a decimal string such as "2.5", found {kind(value)}', *steps)
    found = _DECIMAL.match(value) if len(value) <= MAX_DECIMAL_TEXT else None
    if found is None:
        raise Bad(f'`{value[:40]}` is not a decimal such as "2.5"', *steps)
    amount = Decimal(value)
    if amount > high:
        raise Bad(f"{value} is above {high:,}", *steps)
    if places is not None and found.group(1) and len(found.group(1).rstrip("0")) > places:
        raise Bad(f"{value} has more than {places} decimal places", *steps)
    return amount


def secret_ref(value: Any, *steps: str | int) -> None:
    if type(value) is not str or len(value) > MAX_TEXT or not _SECRET_REF.match(value):
        raise Bad("expected a secret reference `env:NAME` or `file:PATH`, never a value", *steps)


def url(value: Any, *steps: str | int) -> None:
    found = _URL.match(text(value, *steps))
    if not found:
        raise Bad("expected an http(s) URL", *steps)
    if found[0].partition("//")[2].rpartition("@")[0].partition(":")[2]:
        # the compiler refuses credentials in a URL (E0301); a bundle is only sealed, and
        # anyone can seal one again: a password here would be sent, and shown by the tools
        raise Bad("a URL carries a password; a secret reference holds it", *steps)


def url_or_ref(value: Any, *steps: str | int) -> None:
    if type(value) is dict:
        secret_ref(obj(value, REF, *steps)["ref"], *steps, "ref")
    else:
        url(value, *steps)


def endpoint(entry: dict[str, Any]) -> None:
    """`base_url` (null, a URL, or `{"ref": …}`) and the optional `headers` of an
    integration, a provider or a model (refs.py of the compiler; runtime/gateway/endpoints.py)."""
    if entry.get("base_url") is not None:
        url_or_ref(entry["base_url"], "base_url")
    if "headers" not in entry:
        return
    headers = mapping(entry["headers"], "headers")
    if len(headers) > MAX_HEADERS:
        raise Bad(f"{len(headers)} headers (at most {MAX_HEADERS})", "headers")
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise Bad("not a header name", "headers", name)
        if type(value) is dict:
            secret_ref(obj(value, REF, "headers", name)["ref"], "headers", name, "ref")
        elif not _HEADER_VALUE.match(text(value, "headers", name, empty=True)):
            raise Bad("a header value has no control characters", "headers", name)
        elif name.lower() in CREDENTIAL_HEADERS and value.strip():  # as the compiler does
            raise Bad("a credential header takes a secret reference, not a literal",
                      "headers", name)  # fmt: skip


def json_value(value: Any, depth: int = 0) -> None:
    """Free-form JSON (params, query values, carried fields): bounded and exact."""
    if depth > MAX_JSON_DEPTH:
        raise Bad(f"nested deeper than {MAX_JSON_DEPTH} levels")
    t = type(value)
    if t is dict or t is list:
        for step, v in value.items() if t is dict else enumerate(value):
            if type(v) is not str:
                try:
                    json_value(v, depth + 1)
                except Bad as bad:
                    raise bad.within(step) from None
    elif t is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER and not is_double_text(value):
            raise Bad("an integer beyond ±(2^53-1) (JSON numbers are doubles)")
    elif t is float:
        if not math.isfinite(value):
            raise Bad("NaN and infinities are not JSON")
    elif t is not str and t is not bool and value is not None:
        raise Bad(f"unexpected {kind(value)}")


def json_object(value: Any, *steps: str | int) -> None:
    if value == {} and type(value) is dict:
        return
    try:
        json_value(mapping(value))
    except Bad as bad:
        for step in reversed(steps):
            bad.within(step)
        raise


def status_codes(value: Any, *steps: str | int) -> None:
    codes = array(value, *steps)
    if not all(type(c) is int and 100 <= c <= 599 for c in codes):
        for i, c in enumerate(codes):
            integer(c, 100, 599, *steps, i)


def access(value: Any, *steps: str | int) -> None:
    rules = obj(value, ACCESS, *steps)
    if rules["allow"] is not None:
        texts(rules["allow"], *steps, "allow")
    texts(rules["deny"], *steps, "deny")


def each(items: Mapping[str, Any], check: Callable[[str, Any], None]) -> None:
    if not all_text(items.keys()):
        for key in items:
            text(key, key)
    for key, value in items.items():
        try:
            check(key, value)
        except Bad as bad:
            raise bad.within(key) from None


def each_item(items: list[Any], check: Callable[[int, Any], None]) -> None:
    for i, value in enumerate(items):
        try:
            check(i, value)
        except Bad as bad:
            raise bad.within(i) from None


def section(name: str | int, check: Callable[..., Any], *args: Any) -> Any:
    try:
        return check(*args)
    except Bad as bad:
        raise bad.within(name) from None
