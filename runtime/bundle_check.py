"""Load's gate: a parsed bundle checked against its format, whole, before anything is served.

Every member the runtime reads is checked for its type, its range and what it refers to,
so a bundle that passes can answer every resolve and admission without an internal error.
A failure is a BundleContentError naming the JSON path (`providers.openai-prod.chain[2]`).

The bounds are the compiler's (its model package; a test keeps them equal): whatever
the compiler emits loads. Checks the compiler makes only after loading its own bundle (dead
allow entries, unpriced models, configs reaching what a workspace may not use) are not
repeated: such bundles serve, with typed refusals.

Speed: this runs on every load of bundles with thousands of documents, so the path of a
problem is collected while its exception unwinds (try blocks cost nothing until they
catch), and values that recur across a bundle (price tables, limits) are checked once.
"""

from __future__ import annotations

import datetime as dt
import json
import marshal
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from runtime.aliases import NAME_RE
from runtime.canonical import MAX_SAFE_INTEGER, is_double_text
from runtime.config_syntax import CARRIED, MODES, QUERY_LOGIC, QUERY_OPS, SECRET_FIELDS, query_field
from runtime.config_syntax import compile_regex as _compile_regex
from runtime.errors import BundleContentError

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
    if not _URL.match(text(value, *steps)):
        raise Bad("expected an http(s) URL", *steps)


def url_or_ref(value: Any, *steps: str | int) -> None:
    if type(value) is dict:
        secret_ref(obj(value, REF, *steps)["ref"], *steps, "ref")
    else:
        url(value, *steps)


def endpoint(entry: dict[str, Any]) -> None:
    """`base_url` (null, a URL, or `{"ref": …}`) and the optional `headers` of an
    integration, a provider or a model (refs.py of the compiler; runtime/endpoints.py)."""
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


# -- the bundle ---------------------------------------------------------------------------


class Checker:
    """One pass over a bundle; references are checked against its own members."""

    def __init__(self, data: Any, routing: bool = True) -> None:
        self.data = data
        self.routing = routing  # check what routing configs mean, not only their shape
        self.counters: dict[str, Any] = {}
        self.integrations: dict[str, Any] = {}
        self.providers: dict[str, Any] = {}
        self.configs: dict[str, Any] = {}
        self.exposed: dict[str, frozenset[str]] = {}
        self.key_hashes: dict[str, str] = {}
        self.seen_prices: set[tuple[tuple[str, Any], ...]] = set()  # checked price tables
        self.seen_sources: set[tuple[tuple[str, Any], ...]] = set()
        self.limit_keys: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self.passed: set[tuple[str, bytes]] = set()  # (kind, exact value) checked clean

    def once(self, kind: str, value: Any, check: Callable[[], None]) -> None:
        """Run `check` unless an identical value of this kind passed it before. Bundles
        repeat themselves (leaves of one shape, models priced alike, default limits), and
        `marshal` gives an exact key at C speed: it tells 1 from True and 1.0, "1" from 1."""
        try:
            key = (kind, marshal.dumps(value))
        except ValueError:  # too deep to marshal: checked (and refused) the long way
            check()
            return
        if key not in self.passed:
            check()
            self.passed.add(key)

    def run(self) -> None:
        data = obj(self.data, TOP)
        if type(data["digest"]) is not str or not _DIGEST.match(data["digest"]):
            raise Bad("expected `sha256:` and 64 lowercase hex digits", "digest")
        section("organization", self.organization, data["organization"])
        self.counters = mapping(data["counters"], "counters")
        self.integrations = mapping(data["integrations"], "integrations")
        self.providers = mapping(data["providers"], "providers")
        self.configs = mapping(data["configs"], "configs")
        section("counters", each, self.counters, self.counter)
        if ORG_COUNTER not in self.counters:
            raise Bad("no `organization` counter", "counters")
        section("integrations", each, self.integrations, self.integration)
        section("providers", each, self.providers, self.provider)
        workspaces = mapping(data["workspaces"], "workspaces")
        section("workspaces", each, workspaces, self.workspace)
        section("configs", each, self.configs, self.config)
        section("provenance", self.provenance, data["provenance"])

    def organization(self, value: Any) -> None:
        org = obj(value, ORGANIZATION)
        text(org["name"], "name", empty=True)
        if org["currency"] != "USD":
            raise Bad("the only currency is `USD`", "currency")
        epoch = org["epoch"]
        if epoch is not None:
            if type(epoch) is not str or not _DATE.match(epoch):
                raise Bad("expected a date YYYY-MM-DD", "epoch")
            try:
                dt.date.fromisoformat(epoch)
            except ValueError:
                raise Bad(f"`{epoch}` is not a calendar date", "epoch") from None
        access(org["access"], "access")
        if org.get("admin_keys") is not None:
            section("admin_keys", each_item, array(org["admin_keys"], "admin_keys"), self.api_key)
        if org.get("alerts") is not None:
            alerts = obj(org["alerts"], ALERTS)
            text(alerts["webhook"], "alerts", "webhook")
            if not str(alerts["webhook"]).startswith(("http://", "https://")):
                raise Bad("expected an http(s) URL", "alerts", "webhook")
            if not _SECRET_REF.match(str(alerts["secret"])):
                raise Bad('expected a secret reference "env:NAME" or "file:PATH"', "alerts",
                          "secret")  # fmt: skip

    # -- counters -------------------------------------------------------------------------
    def counter(self, cid: str, value: Any) -> None:
        level, _, slug = cid.partition("/")
        if cid != ORG_COUNTER and (level not in COUNTER_LEVELS or not slug):
            raise Bad("a counter is `organization` or `<integration|provider|workspace>/slug`")
        self.once("counter", value, lambda: self.counter_limits(value))

    def counter_limits(self, value: Any) -> None:
        counter = obj(value, COUNTER)
        seen: set[tuple[str, ...]] = set()
        for name, check in (("budgets", self.budget), ("rate_limits", self.rate_limit)):
            for i, limit in enumerate(array(counter[name], name)):
                try:
                    key = self.limit(limit, check)
                    if key in seen:
                        raise Bad(f"a second limit for `{'/'.join(key[1:])}`")
                    seen.add(key)
                except Bad as bad:
                    raise bad.within(i).within(name) from None
        if counter.get("concurrency") is not None:
            integer(counter["concurrency"], 0, MAX_COUNT, "concurrency")

    def limit(self, value: Any, check: Callable[[Any], tuple[str, str, str]]) -> tuple[str, ...]:
        """A budget or rate limit; equal ones (values and their types) are checked once."""
        known: tuple[Any, ...] | None = None
        if type(value) is dict:
            known = (check.__name__, tuple(value.items()), tuple(map(type, value.values())))
            try:
                found = self.limit_keys.get(known)
            except TypeError:  # an unhashable value: not a limit, checked below
                known = found = None
            if found is not None:
                return found
        key = check(value)
        if known is not None:
            self.limit_keys[known] = key
        return key

    def budget(self, value: Any) -> tuple[str, str, str]:
        b = obj(value, BUDGET)
        unit, period, limit = b["unit"], b["period"], b["limit"]
        key = ("budget", unit, period)
        if type(unit) is not str or unit not in BUDGET_UNITS:
            raise Bad("a budget unit is usd, tokens or requests", "unit")
        if type(period) is not str or not _PERIOD.match(period):
            raise Bad("a period is daily, weekly, monthly, none or <N>d", "period")
        if unit == "usd":
            decimal(limit, Decimal(MAX_BUDGET_USD), None, "limit")
        else:
            integer(limit, 0, MAX_COUNT, "limit")
        threshold = b.get("alert_threshold")
        if threshold is not None and not decimal(threshold, Decimal(1), None, "alert_threshold"):
            raise Bad("an alert threshold is a fraction in (0, 1]", "alert_threshold")
        return key

    def rate_limit(self, value: Any) -> tuple[str, str, str]:
        r = obj(value, RATE_LIMIT)
        unit, per, limit, burst = r["unit"], r["per"], r["limit"], r["burst"]
        key = ("rate", unit, per)
        if type(unit) is not str or unit not in RATE_UNITS:
            raise Bad("a rate limit unit is requests or tokens", "unit")
        if type(per) is not str or per not in PER_SECONDS:
            raise Bad("a rate limit is per second, minute, hour or day", "per")
        integer(limit, 0, MAX_COUNT, "limit")
        if limit:
            most = MAX_REFILL_YEARS * 365 * 86_400 * limit // PER_SECONDS[per]
            integer(burst, 1, min(most, MAX_COUNT), "burst")
        else:
            integer(burst, 0, MAX_COUNT, "burst")
        return key

    # -- integrations and providers -------------------------------------------------------
    def integration(self, slug: str, value: Any) -> None:
        integ = obj(value, INTEGRATION)
        text(integ["service"], "service")
        if integ["api"] not in APIS:
            raise Bad(f"unknown wire format; this runtime speaks {', '.join(APIS)}", "api")
        if integ["auth"] not in AUTHS:
            raise Bad(f"unknown authentication; this runtime knows {', '.join(AUTHS)}", "auth")
        endpoint(integ)
        for name, ref in mapping(integ["credentials"], "credentials").items():
            text(name, "credentials", name)
            secret_ref(ref, "credentials", name)
        text_map(integ["settings"], "settings")
        texts(integ["workspaces"], "workspaces")
        access(integ["access"], "access")
        self.exposed[slug] = frozenset(texts(integ["exposed"], "exposed"))

    def provider(self, slug: str, value: Any) -> None:
        p = obj(value, PROVIDER)
        integ = p["integration"]
        if type(integ) is not str or integ not in self.integrations:
            raise Bad(f"names integration `{integ}`, which does not exist", "integration")
        endpoint(p)
        json_object(p["default_params"], "default_params")
        if p["workspaces"] is not None:
            texts(p["workspaces"], "workspaces")
        access(p["access"], "access")
        custom = texts(p["custom"], "custom")
        chain = array(p["chain"], "chain", nonempty=True)
        for i, cid in enumerate(chain):
            if type(cid) is not str or cid not in self.counters:
                raise Bad(f"names counter `{cid}`, which does not exist", "chain", i)
        models = mapping(p["models"], "models")
        unknown = models.keys() - self.exposed[integ] - set(custom)
        if unknown:
            raise Bad("neither its integration nor the provider exposes it", "models", min(unknown))
        section("models", each, models, self.model)
        if "allowed_hosts" in p:
            hosts = texts(p["allowed_hosts"], "allowed_hosts", limit=MAX_HOST)
            if len(hosts) > MAX_HOSTS:
                raise Bad(f"{len(hosts)} hosts (at most {MAX_HOSTS})", "allowed_hosts")
            for i, host in enumerate(hosts):
                if not _HOST.match(host):
                    raise Bad("expected a host pattern, not a URL", "allowed_hosts", i)

    def model(self, name: str, value: Any) -> None:
        self.once("model", value, lambda: self.model_entry(value))

    def model_entry(self, value: Any) -> None:
        m = obj(value, MODEL)
        text(m["mode"], "mode")
        endpoint(m)
        for field in ("context_window", "max_output_tokens"):
            if m.get(field) is not None:
                integer(m[field], 1, MAX_COUNT, field)
        self.prices(m["prices"], "prices")
        sources = mapping(m["price_sources"], "price_sources")
        known = tuple(sources.items())
        if seen(self.seen_sources, known):
            return
        for field, source in known:
            if ((field not in PRICE_FIELDS and field not in VARIANT_FIELDS)
                    or type(source) is not str or source not in PRICE_SOURCES):  # fmt: skip
                raise Bad("a price field, and where it came from", "price_sources", field)
        self.seen_sources.add(known)

    def prices(
        self, value: Any, *steps: str | int, nested: tuple[str, ...] = VARIANT_FIELDS
    ) -> None:
        """A price table; `nested`: the variant tables it may hold (a tier holds none)."""
        table = mapping(value, *steps)
        known = tuple(table.items())
        if seen(self.seen_prices, known):  # only strings are recorded: equality is exact
            return
        for field, amount in known:
            if field == "per_request":
                decimal(amount, MAX_PER_REQUEST, PER_REQUEST_PLACES, *steps, field)
            elif field in PRICE_FIELDS:
                decimal(amount, MAX_PRICE_PER_M, PRICE_PLACES, *steps, field)
            elif field in nested:
                self.price_variant(field, amount, *steps)
            else:
                raise Bad("not a price field", *steps, field)
        if all(type(v) is str for _, v in known):
            self.seen_prices.add(known)

    def price_variant(self, field: str, value: Any, *steps: str | int) -> None:
        if field == "tiers":
            last = -1
            for i, tier in enumerate(array(value, *steps, field, nonempty=True)):
                t = mapping(tier, *steps, field, i)
                at = (*steps, field, i, "above_input_tokens")
                above = integer(t.get("above_input_tokens"), 0, MAX_COUNT, *at)
                if above <= last:
                    raise Bad("tier thresholds are strictly increasing", *at)
                last = above
                rest = {k: v for k, v in t.items() if k != "above_input_tokens"}
                self.prices(rest, *steps, field, i, nested=())
        elif field == "batch":
            self.prices(value, *steps, field, nested=("tiers",))
        else:
            for name, table in mapping(value, *steps, field).items():
                if name not in SERVICE_TIERS:
                    raise Bad("a service tier is `flex` or `priority`", *steps, field, name)
                self.prices(table, *steps, field, name, nested=("tiers",))

    # -- workspaces -----------------------------------------------------------------------
    def workspace(self, slug: str, value: Any) -> None:
        ws = obj(value, WORKSPACE)
        if ws["providers"] is not None:
            texts(ws["providers"], "providers")
        access(ws["access"], "access")
        section("pricing", each_item, array(ws["pricing"], "pricing"), self.price_rule)
        counter = ws["counter"]
        if type(counter) is not str or counter not in self.counters:
            raise Bad(f"names counter `{counter}`, which does not exist", "counter")
        default = ws["default_config"]
        if default is not None and (type(default) is not str or default not in self.configs):
            raise Bad(f"names config `{default}`, which does not exist", "default_config")
        section("api_keys", each_item, array(ws["api_keys"], "api_keys"), self.api_key)
        if "aliases" in ws:
            section("aliases", each, mapping(ws["aliases"], "aliases"), self.alias)

    def alias(self, name: str, value: Any) -> None:
        """`{provider, model}` the provider exposes, or `{config}` that exists."""
        if not NAME_RE.match(name):
            raise Bad("not an alias name (letters, digits and `._:/-`, no `@`)")
        entry = obj(value, ALIAS)
        if entry["from"] not in ("organization", "workspace"):
            raise Bad("expected `organization` or `workspace`", "from")
        if "config" in entry:
            config = entry["config"]
            if "provider" in entry or "model" in entry or type(config) is not str \
                    or config not in self.configs:  # fmt: skip
                raise Bad("names no config of this bundle (and nothing else)", "config")
            return
        provider, model = entry.get("provider"), entry.get("model")
        p = self.providers.get(provider) if type(provider) is str else None
        if p is None:
            raise Bad(f"names provider `{provider}`, which does not exist", "provider")
        exposed = self.exposed.get(p["integration"], frozenset())
        if type(model) is not str or (model not in exposed and model not in p["custom"]):
            raise Bad(f"names model `{model}`, which `@{provider}` does not expose", "model")

    def price_rule(self, i: int, value: Any) -> None:
        rule = obj(value, PRICE_RULE)
        text(rule["model"], "model")
        free = rule.get("free") is not None and flag(rule["free"], "free")
        if rule.get("prices") is not None:
            if free:
                raise Bad("`free` and `prices` exclude each other")
            self.prices(rule["prices"], "prices")
        elif not free:
            raise Bad("a price rule has `prices` or `free: true`")

    def api_key(self, i: int, value: Any) -> None:
        key = obj(value, API_KEY)
        text(key["name"], "name")
        flag(key["disabled"], "disabled")
        digest = key["sha256"]
        if type(digest) is not str or not _SHA256.match(digest):
            raise Bad("expected 64 lowercase hex digits", "sha256")
        if digest in self.key_hashes:
            raise Bad("the same key as another workspace's or admin's: which is it?", "sha256")
        self.key_hashes[digest] = "seen"

    # -- configs --------------------------------------------------------------------------
    def config(self, slug: str, value: Any) -> None:
        cfg = obj(value, CONFIG)
        if cfg["workspaces"] is not None:
            texts(cfg["workspaces"], "workspaces")
        section("tree", self.node, cfg["tree"], 0)

    def node(self, value: Any, depth: int) -> None:
        if depth > MAX_TREE_DEPTH:
            raise Bad(f"strategies nested deeper than {MAX_TREE_DEPTH} levels")
        mode = mapping(value).get("mode")
        if mode == "target":
            self.leaf(obj(value, LEAF))
        elif type(mode) is str and mode in MODES:
            self.branch(obj(value, BRANCH), depth)
        else:
            raise Bad(f"a node's mode is `target` or one of {', '.join(MODES)}", "mode")
        if "name" in value and value["name"] is not None:
            text(value["name"], "name")
        if "weight" in value:  # absent means 1; null has no weight
            decimal(value["weight"], MAX_WEIGHT, None, "weight")
        if value.get("on_status_codes") is not None:
            status_codes(value["on_status_codes"], "on_status_codes")

    def branch(self, node: dict[str, Any], depth: int) -> None:
        targets = array(node["targets"], "targets", nonempty=True)
        for i, child in enumerate(targets):
            try:
                self.node(child, depth + 1)
            except Bad as bad:
                raise bad.within(i).within("targets") from None
        mode = node["mode"]
        names = {t.get("name") for t in targets}
        section("strategy", self.strategy, obj(node["strategy"], STRATEGY, "strategy"), mode,
                names)  # fmt: skip
        if (
            mode == "loadbalance"
            and self.routing
            and all(Decimal(t.get("weight", "1")) == 0 for t in targets)
        ):
            raise Bad("every target has weight 0: no request could be routed", "targets")

    def strategy(self, s: dict[str, Any], mode: str, names: set[Any]) -> None:
        if s.get("on_status_codes") is not None:
            status_codes(s["on_status_codes"], "on_status_codes")
        conditions = s.get("conditions")
        if conditions is not None:
            for i, cond in enumerate(array(conditions, "conditions")):
                c = obj(cond, CONDITION, "conditions", i)
                try:
                    query(c["query"], 0) if self.routing else mapping(c["query"])
                except Bad as bad:
                    raise bad.within("query").within(i).within("conditions") from None
                then = text(c["then"], "conditions", i, "then")
                if mode == "conditional" and self.routing and then not in names:
                    raise Bad(f"no target is named `{then}`", "conditions", i, "then")
        default = s.get("default")
        if (
            mode == "conditional"
            and self.routing
            and default is not None
            and (type(default) is not str or default not in names)
        ):
            raise Bad("a conditional's `default` names one of its targets", "default")
        if default is not None:
            text(default, "default")
        if s.get("sticky") is not None:
            sticky = obj(s["sticky"], STICKY, "sticky")
            if sticky.get("enabled") is not None:
                flag(sticky["enabled"], "sticky", "enabled")
            if sticky.get("hash_fields") is not None:
                texts(sticky["hash_fields"], "sticky", "hash_fields")
            if sticky.get("ttl") is not None:
                integer(sticky["ttl"], 1, MAX_SAFE_INTEGER, "sticky", "ttl")
        if s.get("cb_config") is not None:
            json_object(s["cb_config"], "cb_config")

    def leaf(self, node: dict[str, Any]) -> None:
        """Leaves differ mostly in their provider and model: those are checked each time
        (the provider must exist), the rest once per shape."""
        for name in ("provider", "model"):
            if node.get(name) is not None:
                _LEAF_FIELDS[name](self, node[name], name)
        rest = {k: v for k, v in node.items() if k != "provider" and k != "model"}
        self.once("leaf", rest, lambda: self.leaf_rest(rest))

    def leaf_rest(self, node: dict[str, Any]) -> None:
        params = obj(node["params"], PARAMS, "params")
        json_object(params["override"], "params", "override")
        json_object(params["default"], "params", "default")
        for i, step in enumerate(texts(params["drop"], "params", "drop", limit=MAX_DROP_PATH)):
            if not _DROP_STEP.search(step):
                raise Bad("a drop path names no field", "params", "drop", i)
        for name, value in node.items():
            check = _LEAF_FIELDS.get(name)
            if check is not None and value is not None:
                check(self, value, name)

    def leaf_provider(self, value: Any, name: str) -> None:
        if type(value) is not str:
            raise Bad("expected a provider slug", name)
        if self.routing and value not in self.providers:  # else the compiler reports it
            raise Bad(f"names provider `@{value}`, which does not exist", name)

    def provenance(self, value: Any) -> None:
        prov = obj(value, PROVENANCE)
        text(prov["compiler"], "compiler")
        text(prov["registry_as_of"], "registry_as_of")
        files = array(prov["files"], "files")
        if not (
            all(type(f) is dict and f.keys() == FILE.required for f in files)
            and all_text([f["path"] for f in files])
            and all_text(hashes := [f["sha256"] for f in files], 64)
            and _HEX.match("".join(hashes))
            and set(map(len, hashes)) <= {64}
        ):
            for i, f in enumerate(files):
                entry = obj(f, FILE, "files", i)
                text(entry["path"], "files", i, "path")
                if type(entry["sha256"]) is not str or not _SHA256.match(entry["sha256"]):
                    raise Bad("expected 64 lowercase hex digits", "files", i, "sha256")
        text_map(prov["origins"], "origins")


def query(value: Any, depth: int) -> None:
    """A conditional's query, as runtime/plan.py evaluates it."""
    if depth > MAX_JSON_DEPTH:
        raise Bad(f"queries nested deeper than {MAX_JSON_DEPTH} levels")
    for key, cond in mapping(value).items():
        try:
            if key in QUERY_LOGIC:
                for i, sub in enumerate(array(cond, nonempty=True)):
                    section(i, query, sub, depth + 1)
            elif key.startswith("$") or not query_field(key):
                raise Bad("not a query field (`metadata.<key>`, `params.<key>`, `url.pathname`)")
            elif type(cond) is not dict:
                json_value(cond)  # a bare value means $eq
            else:
                condition(cond)
        except Bad as bad:
            raise bad.within(key) from None


def condition(cond: dict[str, Any]) -> None:
    if not cond:
        raise Bad("an empty condition matches nothing")
    for op, arg in cond.items():
        if op not in QUERY_OPS:
            raise Bad(f"unknown operator; operators: {', '.join(QUERY_OPS)}", op)
        if op in ("$in", "$nin"):
            section(op, json_value, array(arg, op))
        elif op == "$regex":
            regex(arg, op)
        else:
            section(op, json_value, arg)


def regex(value: Any, step: str) -> None:
    pattern = text(value, step, empty=True)
    try:
        _compile_regex(pattern)
    except Exception as exc:  # whatever the router's regex engine refuses, it refuses here
        raise Bad(f"a regular expression the router cannot compile ({exc})", step) from None


def _optional_text(checker: Checker, value: Any, name: str) -> None:
    text(value, name)


def _secret(checker: Checker, value: Any, name: str) -> None:
    secret_ref(value, name)


def _retry(checker: Checker, value: Any, name: str) -> None:
    r = obj(value, RETRY, name)
    integer(r["attempts"], 0, MAX_RETRY_ATTEMPTS, name, "attempts")
    if r.get("on_status_codes") is not None:
        status_codes(r["on_status_codes"], name, "on_status_codes")
    for field in ("use_retry_after_headers", "use_retry_after_header"):
        if r.get(field) is not None:
            flag(r[field], name, field)


def _cache(checker: Checker, value: Any, name: str) -> None:
    cache = obj(value, CACHE, name)
    if cache["mode"] not in ("simple", "semantic"):
        raise Bad("a cache mode is simple or semantic", name, "mode")
    if cache.get("max_age") is not None:
        integer(cache["max_age"], 0, MAX_SAFE_INTEGER, name, "max_age")


def _timeout(checker: Checker, value: Any, name: str) -> None:
    integer(value, 1, MAX_SAFE_INTEGER, name)


def _host(checker: Checker, value: Any, name: str) -> None:
    url(value, name)


def _carried(checker: Checker, value: Any, name: str) -> None:
    for field, v in mapping(value, name).items():
        if field not in CARRIED:
            raise Bad("not a field the router carries", name, field)
        if field in SECRET_FIELDS:
            if v is not None:
                secret_ref(v, name, field)
        else:
            section(name, section, field, json_value, v)


def _leaf_provider(checker: Checker, value: Any, name: str) -> None:
    checker.leaf_provider(value, name)


# The optional members of a leaf (its required `mode` and `params` are checked apart).
_LEAF_FIELDS: dict[str, Callable[[Checker, Any, str], None]] = {
    "provider": _leaf_provider, "service": _optional_text, "model": _optional_text,
    "api_key": _secret, "retry": _retry, "cache": _cache, "request_timeout": _timeout,
    "custom_host": _host, "carried": _carried,
}  # fmt: skip


def check(data: Any, routing: bool = True) -> None:
    """Raise BundleContentError (with the JSON path) unless `data` is a well-formed bundle.

    `routing=False` checks routing configs' shape but not their meaning (target names,
    weights, queries): for the compiler's own check of a body whose configs it reports on
    itself, with source positions. Never for a bundle that will serve."""
    try:
        Checker(data, routing).run()
    except Bad as bad:
        raise BundleContentError(f"bundle content is invalid: {bad.message}", bad.path) from None
