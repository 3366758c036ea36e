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
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from runtime.bundle.aliases import NAME_RE
from runtime.bundle.check_configs import ConfigChecks
from runtime.bundle.check_values import (
    _DATE,
    _DIGEST,
    _HEX,
    _HOST,
    _PERIOD,
    _SECRET_REF,
    _SHA256,
    ALERTS,
    ALIAS,
    API_KEY,
    APIS,
    AUTHS,
    BUDGET,
    BUDGET_UNITS,
    COUNTER,
    COUNTER_LEVELS,
    FILE,
    INTEGRATION,
    MAX_BUDGET_USD,
    MAX_COUNT,
    MAX_HOST,
    MAX_HOSTS,
    MAX_PER_REQUEST,
    MAX_PRICE_PER_M,
    MAX_REFILL_YEARS,
    MAX_RETRY_ATTEMPTS,
    MODEL,
    ORG_COUNTER,
    ORGANIZATION,
    PER_REQUEST_PLACES,
    PER_SECONDS,
    PRICE_FIELDS,
    PRICE_PLACES,
    PRICE_RULE,
    PRICE_SOURCES,
    PROVENANCE,
    PROVIDER,
    RATE_LIMIT,
    RATE_UNITS,
    SERVICE_TIERS,
    TOP,
    VARIANT_FIELDS,
    WORKSPACE,
    Bad,
    access,
    all_text,
    array,
    decimal,
    each,
    each_item,
    endpoint,
    flag,
    integer,
    json_object,
    mapping,
    obj,
    secret_ref,
    section,
    seen,
    text,
    text_map,
    texts,
    where,
)
from runtime.bundle.errors import BundleContentError

# -- the bundle ---------------------------------------------------------------------------


class Checker(ConfigChecks):
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


def check(data: Any, routing: bool = True) -> None:
    """Raise BundleContentError (with the JSON path) unless `data` is a well-formed bundle.

    `routing=False` checks routing configs' shape but not their meaning (target names,
    weights, queries): for the compiler's own check of a body whose configs it reports on
    itself, with source positions. Never for a bundle that will serve."""
    try:
        Checker(data, routing).run()
    except Bad as bad:
        raise BundleContentError(f"bundle content is invalid: {bad.message}", bad.path) from None


__all__ = [  # importable from here, as before the split
    "APIS",
    "AUTHS",
    "MAX_BUDGET_USD",
    "MAX_COUNT",
    "MAX_PER_REQUEST",
    "MAX_PRICE_PER_M",
    "MAX_REFILL_YEARS",
    "MAX_RETRY_ATTEMPTS",
    "PER_SECONDS",
    "PRICE_FIELDS",
    "Bad",
    "Checker",
    "check",
    "where",
]
