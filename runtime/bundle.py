"""Load a compiled bundle: verify its format and digest, freeze it, index it.

The bundle is the only contract with the compiler (see schema/bundle.schema.json). Indexes
are small (per provider, per workspace); decisions for a (workspace, provider, model) are
computed on first use and memoized, so nothing grows as workspaces x models.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from runtime.access import Pattern, Refusal, Rules, pattern, qualified
from runtime.aliases import NO_ALIASES, Alias, aliases_of
from runtime.bundle_check import check, where
from runtime.canonical import (
    FORMAT,
    FORMAT_PREFIX,
    FORMAT_VERSION,
    READABLE_VERSIONS,
    CanonicalError,
    body_digest,
)
from runtime.errors import (
    AccessDenied,
    BundleContentError,
    BundleFormatError,
    BundleIntegrityError,
    BundleReadError,
    UnknownModel,
    UnknownProvider,
    UnknownWorkspace,
    amount_words,
    period_words,
)
from runtime.errors import counter_label as counter_label  # re-exported: read by the compiler
from runtime.suggest import closest, nearest

PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "per_request", "cache_write_1h")
# members of a price table that are tables themselves; a workspace rule replaces each whole
VARIANT_FIELDS = ("tiers", "batch", "service_tiers")
MAX_BUNDLE_BYTES = 64 * 2**20  # 13x the 5,000-document benchmark bundle
_DIGEST_MEMBER = re.compile(rb'"digest":"sha256:[0-9a-f]{64}",?')


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A frozen value back to plain dicts and lists (for request bodies)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def _selection(items: list[str] | None) -> frozenset[str] | None:
    """A `workspaces:`/`providers:` list; None means everyone."""
    if items is None or "*" in items:
        return None
    return frozenset(items)


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    unit: str  # usd | tokens | requests
    period: str  # daily | weekly | monthly | none | <N>d
    limit: Decimal
    alert_threshold: Decimal | None

    @property
    def key(self) -> str:
        return f"{self.unit}/{self.period}"


@dataclass(frozen=True, slots=True)
class RateLimit:
    unit: str  # requests | tokens
    per: str  # second | minute | hour | day
    limit: int
    burst: int

    @property
    def key(self) -> str:
        return f"{self.unit}/{self.per}"


@dataclass(frozen=True, slots=True)
class Counter:
    """One pool: every request beneath its level is charged to it."""

    id: str
    budgets: tuple[BudgetLimit, ...]
    rate_limits: tuple[RateLimit, ...]
    concurrency: int | None

    @property
    def empty(self) -> bool:
        return not self.budgets and not self.rate_limits and self.concurrency is None


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per 1M tokens (and per request); None where the model has no such price.

    The variants (long-context `tiers`, `batch`, `service_tiers`) are partial tables whose
    absent fields fall back to this one's; runtime/price_tables.py picks one per request."""

    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    per_request: Decimal | None = None
    cache_write_1h: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()  # ascending thresholds
    batch: Prices | None = None
    service_tiers: tuple[tuple[str, Prices], ...] = ()  # sorted by name

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Prices:
        data = data or {}
        prices = cls.of_fields({k: Decimal(data[k]) for k in PRICE_FIELDS if k in data})
        if len(data) > len(prices.fields()):
            return _with_variants(prices, data)
        return prices

    @classmethod
    def of_fields(cls, fields: Mapping[str, Decimal | None]) -> Prices:
        """A table of these fields only (no variants)."""
        values: dict[str, Any] = dict(fields)
        return cls(**values)

    def fields(self) -> dict[str, Decimal]:
        return {k: v for k in PRICE_FIELDS if (v := getattr(self, k)) is not None}

    def get(self, name: str) -> Decimal | None:
        value: Decimal | None = getattr(self, name)
        return value

    def as_json(self) -> dict[str, str]:
        return {k: str(v) for k in PRICE_FIELDS if (v := self.get(k)) is not None}


FREE = Prices(Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0))


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Prices of a whole request whose prompt tokens are strictly above the threshold."""

    above_input_tokens: int
    prices: Prices


def _with_variants(prices: Prices, data: Mapping[str, Any]) -> Prices:
    tiers = tuple(
        PriceTier(t["above_input_tokens"], Prices.from_json(t)) for t in data.get("tiers", ())
    )
    batch = Prices.from_json(data["batch"]) if "batch" in data else None
    named = data.get("service_tiers") or {}
    services = tuple((name, Prices.from_json(named[name])) for name in sorted(named))
    return replace(prices, tiers=tiers, batch=batch, service_tiers=services)


def _variants(prices: Prices) -> dict[str, Any]:
    return {"tiers": prices.tiers, "batch": prices.batch, "service_tiers": prices.service_tiers}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    mode: str
    context_window: int | None
    max_output_tokens: int | None
    prices: Prices
    sources: Mapping[str, str]  # price field -> level it came from
    # A custom model's own endpoint (runtime/gateway/endpoints.py): literal parts here, references
    # in `refs` ("base_url", "header:NAME" -> "env:NAME") until the gateway reads them.
    base_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    refs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Integration:
    slug: str
    service: str
    api: str
    auth: str
    base_url: str | None
    credentials: Mapping[str, str]  # name -> "env:NAME" | "file:PATH"
    settings: Mapping[str, str]
    workspaces: frozenset[str] | None
    rules: Rules
    exposed: frozenset[str]
    headers: Mapping[str, str] = field(default_factory=dict)  # as ModelInfo's
    refs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Provider:
    slug: str
    integration: Integration
    base_url: str | None
    default_params: Mapping[str, Any]
    workspaces: frozenset[str] | None
    rules: Rules
    chain: tuple[str, ...]  # counter ids, organization first
    models: Mapping[str, ModelInfo]  # exposed and allowed down to this provider
    exposed: frozenset[str]  # every model name the provider knows, allowed or not
    # Hosts (beyond its base_url's) that a routing config may send this provider's
    # credentials to with `custom_host`: "api.example.com", "host:8443", "*.example.com".
    allowed_hosts: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # as ModelInfo's
    refs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PriceRule:
    pattern: Pattern
    prices: Prices
    free: bool
    element: str


@dataclass(frozen=True, slots=True)
class Workspace:
    slug: str
    providers: frozenset[str] | None
    rules: Rules
    pricing: tuple[PriceRule, ...]  # most specific first
    counter: str
    default_config: str | None
    api_keys: tuple[Mapping[str, Any], ...]
    # name -> its target (runtime/aliases.py)
    aliases: Mapping[str, Alias] = field(default_factory=lambda: NO_ALIASES)


class ConfigInfo:
    """A named routing config; its tree is frozen on first use (most are never used by
    one router replica, and freezing all of them dominates loading)."""

    __slots__ = ("_raw", "_tree", "slug", "workspaces")

    def __init__(self, slug: str, workspaces: frozenset[str] | None, raw: dict[str, Any]) -> None:
        self.slug = slug
        self.workspaces = workspaces
        self._raw = raw
        self._tree: Mapping[str, Any] | None = None

    @property
    def tree(self) -> Mapping[str, Any]:
        if self._tree is None:
            self._tree = _freeze(self._raw)
        return self._tree


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one (workspace, provider, model): allowed, or refused by a rule."""

    workspace: str
    provider: str
    model: str
    refusal: Refusal | None
    origin: str | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    def error(self) -> AccessDenied:
        assert self.refusal is not None
        return AccessDenied(
            self.workspace, qualified(self.provider, self.model), self.refusal.level,
            self.refusal.rule, self.origin,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PriceQuote:
    prices: Prices
    sources: Mapping[str, str]  # field -> "workspace" | "provider" | ... | "registry"
    elements: Mapping[str, str]  # field -> provenance key of the rule that set it


@dataclass(eq=False)
class Bundle:
    """A verified, frozen bundle with its indexes."""

    digest: str
    provenance: Mapping[str, Any]
    organization: Mapping[str, Any]
    org_rules: Rules
    counters: Mapping[str, Counter]
    integrations: Mapping[str, Integration]
    providers: Mapping[str, Provider]
    workspaces: Mapping[str, Workspace]
    configs: Mapping[str, ConfigInfo]
    origins: Mapping[str, str]
    open_providers: tuple[str, ...]  # provisioned to every workspace
    provisioned_to: Mapping[str, tuple[str, ...]]  # workspace -> providers naming it
    _decisions: dict[tuple[str, str, str], Decision] = field(default_factory=dict, repr=False)

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        source: str | Path | bytes,
        *,
        max_bytes: int = MAX_BUNDLE_BYTES,
        check_routing: bool = True,
    ) -> Bundle:
        """Read, verify and check a bundle file (or its bytes) whole; BundleError if any
        part of it could not serve. `check_routing=False` is for the compiler only: it skips
        what routing configs mean (target names, weights, queries), which the compiler
        reports with positions; their shape is still checked."""
        raw_bytes = source if isinstance(source, bytes) else read_bounded(source, max_bytes)
        if len(raw_bytes) > max_bytes:
            raise BundleReadError(f"the bundle is {len(raw_bytes):,} bytes (at most {max_bytes:,})")
        # Loading builds many objects and few cycles: pausing the cyclic collector saves a
        # third of the time on a large bundle. The previous state is restored.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return cls._load(raw_bytes, check_routing)
        finally:
            if collecting:
                gc.enable()

    @classmethod
    def _load(cls, raw_bytes: bytes, check_routing: bool = True) -> Bundle:
        data = parse(raw_bytes)
        check_format(data.get("format"))
        digest = verify_digest(raw_bytes, data)
        check(data, check_routing)
        return cls.index(data, digest)

    @classmethod
    def index(cls, data: dict[str, Any], digest: str) -> Bundle:
        """Build the indexes of a checked bundle. The net below only turns a gap of the
        checker into a typed refusal; tests assert it is never reached."""
        try:
            return _build(data, digest)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError,
                RecursionError) as exc:  # fmt: skip
            raise BundleContentError(
                f"bundle content does not match its format (unchecked): {exc!r}"
            ) from None

    # -- lookups ------------------------------------------------------------------------
    def workspace(self, slug: str) -> Workspace:
        found = self.workspaces.get(slug)
        if found is None:
            raise UnknownWorkspace(slug, nearest(slug, self.workspaces))
        return found

    def provider(self, slug: str) -> Provider:
        found = self.providers.get(slug.removeprefix("@"))
        if found is None:
            raise UnknownProvider(slug.removeprefix("@"), nearest(slug, self.providers))
        return found

    def origin(self, element: str) -> str | None:
        return self.origins.get(element)

    def provisioning(self, ws: Workspace, provider: Provider) -> Refusal | None:
        """Why `ws` may not use `provider` at all, or None."""
        integ = provider.integration
        if integ.workspaces is not None and ws.slug not in integ.workspaces:
            return Refusal(f"integration `{integ.slug}`", "is not provisioned to this workspace",
                           f"integrations/{integ.slug}/workspaces")  # fmt: skip
        if provider.workspaces is not None and ws.slug not in provider.workspaces:
            return Refusal(f"provider `@{provider.slug}`", "is not provisioned to this workspace",
                           f"providers/{provider.slug}/workspaces")  # fmt: skip
        if ws.providers is not None and provider.slug not in ws.providers:
            return Refusal(f"workspace `{ws.slug}`", f"does not take `@{provider.slug}`",
                           f"workspaces/{ws.slug}/providers")  # fmt: skip
        return None

    def usable_providers(self, workspace: str) -> list[Provider]:
        """Providers the workspace may use at all, sorted; from the provisioning index."""
        ws = self.workspace(workspace)
        if ws.providers is not None:
            slugs = sorted(s for s in ws.providers if s in self.providers)
        else:
            slugs = sorted({*self.open_providers, *self.provisioned_to.get(workspace, ())})
        found = [self.providers[s] for s in slugs]
        return [p for p in found if self.provisioning(ws, p) is None]

    def decide(self, workspace: str, provider: str, model: str) -> Decision:
        """May `workspace` use `@provider/model`? Memoized; raises for unknown names."""
        key = (workspace, provider, model)
        found = self._decisions.get(key)
        if found is None:
            found = self._decide(workspace, provider, model)
            self._decisions[key] = found
        return found

    def _decide(self, workspace: str, provider_slug: str, model: str) -> Decision:
        ws = self.workspace(workspace)
        provider = self.provider(provider_slug)
        refusal = self.provisioning(ws, provider)
        if model not in provider.exposed:
            raise UnknownModel(provider.slug, model, closest(model, provider.exposed))
        if refusal is None:
            refusal = self.model_refusal(provider, model, ws)
        origin = self.origin(refusal.element) if refusal else None
        return Decision(workspace, provider.slug, model, refusal, origin)

    def model_refusal(self, provider: Provider, model: str, ws: Workspace | None) -> Refusal | None:
        names = (model, qualified(provider.slug, model))
        levels = [self.org_rules, provider.integration.rules, provider.rules]
        if ws is not None:
            levels.append(ws.rules)
        for rules in levels:
            refusal = rules.refuse(names)
            if refusal is not None:
                return refusal
        return None

    def chain(self, workspace: str, provider: str) -> tuple[Counter, ...]:
        ws = self.workspace(workspace)
        ids = (*self.provider(provider).chain, ws.counter)
        return tuple(self.counters[i] for i in ids)

    def price(self, workspace: str, provider: str, model: str) -> PriceQuote:
        """Prices most-specific first: workspace override, then what the provider resolved."""
        info = self.provider(provider).models[model]
        prices = {k: info.prices.get(k) for k in PRICE_FIELDS}
        variants = _variants(info.prices)
        sources = dict(info.sources)
        elements = {k: f"prices/{provider}/{model}/{k}" for k in sources}
        ws = self.workspace(workspace)
        names = (model, qualified(provider, model))
        for rule in ws.pricing:
            if any(rule.pattern.matches(n) for n in names):
                given = FREE if rule.free else rule.prices
                # a variant the rule gives replaces the catalog's whole; `free` drops them all
                given_variants = {k: v for k, v in _variants(given).items() if v or rule.free}
                prices.update(given.fields())
                variants.update(given_variants)
                for k in (*given.fields(), *given_variants):
                    sources[k] = f"workspace `{ws.slug}`"
                    elements[k] = rule.element
                break
        quote = replace(Prices.of_fields(prices), **variants)
        return PriceQuote(quote, MappingProxyType(sources), MappingProxyType(elements))

    def routes(self, workspace: str) -> Iterator[tuple[str, str]]:
        """Every (provider, model) the workspace may use, sorted. Computed on demand."""
        ws = self.workspace(workspace)
        for provider in self.usable_providers(workspace):
            for model in sorted(provider.models):
                if ws.rules.refuse((model, qualified(provider.slug, model))) is None:
                    yield provider.slug, model


def budget_words(b: BudgetLimit) -> str:
    return f"{amount_words(b.limit, b.unit)} {period_words(b.period)}"


def rate_words(r: RateLimit) -> str:
    burst = f" (burst {r.burst})" if r.burst != r.limit else ""
    return f"{amount_words(r.limit, r.unit)} a {r.per}{burst}"


@dataclass(frozen=True, slots=True)
class Effective:
    """The tightest value per (unit, period) over a counter chain, and who sets it."""

    budgets: Mapping[str, tuple[BudgetLimit, str]]  # "usd/monthly" -> (limit, counter id)
    rate_limits: Mapping[str, tuple[RateLimit, str]]  # "requests/minute" -> (limit, counter)
    concurrency: tuple[int, str] | None


def effective(chain: tuple[Counter, ...]) -> Effective:
    budgets: dict[str, tuple[BudgetLimit, str]] = {}
    rates: dict[str, tuple[RateLimit, str]] = {}
    concurrency: tuple[int, str] | None = None
    for counter in chain:
        for b in counter.budgets:
            if b.key not in budgets or b.limit < budgets[b.key][0].limit:
                budgets[b.key] = (b, counter.id)
        for r in counter.rate_limits:
            if r.key not in rates or (r.limit, r.burst) < (
                rates[r.key][0].limit,
                rates[r.key][0].burst,
            ):
                rates[r.key] = (r, counter.id)
        if counter.concurrency is not None and (
            concurrency is None or counter.concurrency < concurrency[0]
        ):
            concurrency = (counter.concurrency, counter.id)
    return Effective(
        MappingProxyType(dict(sorted(budgets.items()))),
        MappingProxyType(dict(sorted(rates.items()))),
        concurrency,
    )


def read_bounded(source: str | Path, max_bytes: int) -> bytes:
    """A regular file's bytes, at most `max_bytes`: a FIFO, a device or /dev/zero is refused
    before it can block or fill memory."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BundleReadError(f"cannot open the bundle {source}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BundleReadError(f"the bundle {source} is not a regular file")
        if info.st_size > max_bytes:
            raise BundleReadError(
                f"the bundle {source} is {info.st_size:,} bytes (at most {max_bytes:,})"
            )
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)  # a file that grew past the bound is refused by the caller
    except OSError as exc:
        raise BundleReadError(f"cannot read the bundle {source}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _no_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for a double")
    return value


def parse(raw: bytes) -> dict[str, Any]:
    """Strict JSON in UTF-8: no NaN/Infinity, no number beyond a double, a bounded depth."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError as exc:
        raise BundleIntegrityError(f"not a bundle: not UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise BundleIntegrityError("not a bundle: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, a constant, a 5,000-digit integer
        raise BundleIntegrityError(
            f"not a bundle: invalid JSON ({str(exc)[:200]}); the file may be truncated"
        ) from None
    if not isinstance(data, dict):
        raise BundleIntegrityError("not a bundle: the top level is not a JSON object")
    return data


def check_format(fmt: Any) -> None:
    if isinstance(fmt, str) and fmt.startswith(FORMAT_PREFIX):
        version = fmt[len(FORMAT_PREFIX) :]
        if version.isdigit() and version == str(int(version)):
            if int(version) in READABLE_VERSIONS:
                return
            if int(version) > FORMAT_VERSION:
                raise BundleFormatError(
                    f"bundle format `{fmt}` is newer than this runtime reads ({FORMAT}): "
                    "upgrade the runtime before deploying this bundle",
                    "format",
                )
    shown = fmt[:80] if isinstance(fmt, str) else fmt
    raise BundleFormatError(f"unknown bundle format `{shown}`: expected `{FORMAT}`", "format")


def verify_digest(raw: bytes, data: dict[str, Any]) -> str:
    claimed = data.get("digest")
    if not isinstance(claimed, str) or not claimed.startswith("sha256:"):
        raise BundleIntegrityError(
            "bundle has no `digest`: it was not written by catalogc", "digest"
        )
    # Fast path: a canonical file minus its digest member *is* the canonical body. Files
    # with `\u` escapes take the slow path, which refuses lone surrogates.
    found = _DIGEST_MEMBER.search(raw) if b"\\u" not in raw else None
    if found is not None:
        whole, end = memoryview(raw), len(raw)
        while end > found.end() and raw[end - 1] == 0x0A:  # a trailing newline is not hashed
            end -= 1
        sha = hashlib.sha256(whole[: found.start()])
        sha.update(whole[found.end() : end])
        if "sha256:" + sha.hexdigest() == claimed:
            return claimed
    body = {k: v for k, v in data.items() if k != "digest"}
    try:
        actual = body_digest(body)
    except CanonicalError as exc:
        raise BundleIntegrityError(f"bundle has no canonical form: {exc}") from None
    if actual != claimed:
        raise BundleIntegrityError(
            "bundle digest does not match its content: it was modified or damaged after "
            "compilation; recompile it with `catalogc compile`",
            "digest",
        )
    return claimed


class _Shared:
    """Equal values built once per load: the same price tables, limits and access lists
    recur across thousands of providers. Keys are checked JSON, so equality is exact."""

    def __init__(self) -> None:
        self.prices: dict[tuple[tuple[str, str], ...], Prices] = {}
        self.sources: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
        self.limits: dict[tuple[Any, ...], BudgetLimit | RateLimit] = {}
        self.rules: dict[tuple[Any, ...], Rules] = {}
        self.resolved: set[tuple[Any, ...]] = set()

    def prices_of(self, data: Mapping[str, Any] | None) -> Prices:
        key: tuple[Any, ...] = tuple(data.items()) if data else ()
        if data and any(k in data for k in VARIANT_FIELDS):
            key = (json.dumps(data, sort_keys=True),)  # nested tables are not hashable
        found = self.prices.get(key)
        if found is None:
            found = self.prices[key] = Prices.from_json(data)
        return found

    def sources_of(self, data: Mapping[str, str]) -> Mapping[str, str]:
        key = tuple(data.items())
        found = self.sources.get(key)
        if found is None:
            found = self.sources[key] = MappingProxyType(dict(data))
        return found

    def budget(self, b: Mapping[str, Any]) -> BudgetLimit:
        key = ("budget", b["unit"], b["period"], str(b["limit"]), b.get("alert_threshold"))
        found = self.limits.get(key)
        if found is None:
            threshold = b.get("alert_threshold")
            found = self.limits[key] = BudgetLimit(
                b["unit"], b["period"], Decimal(key[3]), Decimal(threshold) if threshold else None
            )
        assert isinstance(found, BudgetLimit)
        return found

    def rate(self, r: Mapping[str, Any]) -> RateLimit:
        key = ("rate", r["unit"], r["per"], r["limit"], r["burst"])
        found = self.limits.get(key)
        if found is None:
            found = self.limits[key] = RateLimit(r["unit"], r["per"], r["limit"], r["burst"])
        assert isinstance(found, RateLimit)
        return found

    def rules_of(self, level: str, key: str, data: Mapping[str, Any] | None) -> Rules:
        """One level's rules; the compiled patterns are shared by equal lists."""
        allow, deny = (data or {}).get("allow"), (data or {}).get("deny") or ()
        content = (None if allow is None else tuple(allow), tuple(deny))
        found = self.rules.get(content)
        if found is None:
            found = self.rules[content] = Rules.from_json(level, key, data)
            return found
        return Rules(level, key, found.allow, found.deny, found.allow_re, found.deny_re)


def _counter(cid: str, data: Mapping[str, Any], shared: _Shared) -> Counter:
    budgets = tuple(shared.budget(b) for b in data["budgets"])
    rates = tuple(shared.rate(r) for r in data["rate_limits"])
    return Counter(cid, budgets, rates, data.get("concurrency"))


_NO_TEXT: Mapping[str, str] = MappingProxyType({})


def endpoint_parts(
    data: Mapping[str, Any],
) -> tuple[str | None, Mapping[str, str], Mapping[str, str]]:
    """(literal base_url, literal headers, references) of a bundle entry whose `base_url`
    and header values may be `{"ref": "env:NAME"}` (docs/bundle.md)."""
    base, headers = data.get("base_url"), data.get("headers")
    if not headers and not isinstance(base, Mapping):
        return base, _NO_TEXT, _NO_TEXT
    refs: dict[str, str] = {}
    if isinstance(base, Mapping):
        refs["base_url"], base = base["ref"], None
    literal: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if isinstance(value, Mapping):
            refs[f"header:{name}"] = value["ref"]
        else:
            literal[name] = value
    return base, MappingProxyType(literal), MappingProxyType(refs)


def _model(name: str, data: Mapping[str, Any], shared: _Shared) -> ModelInfo:
    return ModelInfo(
        name,
        data["mode"],
        data.get("context_window"),
        data.get("max_output_tokens"),
        shared.prices_of(data["prices"]),
        shared.sources_of(data["price_sources"]),
        *endpoint_parts(data),
    )


def _build(data: dict[str, Any], digest: str) -> Bundle:
    shared = _Shared()
    org = data["organization"]
    counters = {cid: _counter(cid, c, shared) for cid, c in data["counters"].items()}
    integrations = {}
    for slug, d in data["integrations"].items():
        integrations[slug] = Integration(
            slug, d["service"], d["api"], d["auth"], endpoint_parts(d)[0],
            MappingProxyType(dict(d["credentials"])),
            MappingProxyType(dict(d["settings"])),
            _selection(d["workspaces"]),
            shared.rules_of(f"integration `{slug}`", f"integrations/{slug}/access", d["access"]),
            frozenset(d["exposed"]), *endpoint_parts(d)[1:],
        )  # fmt: skip
    providers = {}
    for slug, d in data["providers"].items():
        integ = integrations[d["integration"]]
        providers[slug] = Provider(
            slug, integ, endpoint_parts(d)[0], _freeze(d["default_params"]),
            _selection(d["workspaces"]),
            shared.rules_of(f"provider `@{slug}`", f"providers/{slug}/access", d["access"]),
            tuple(d["chain"]),
            MappingProxyType({m: _model(m, info, shared) for m, info in d["models"].items()}),
            integ.exposed | frozenset(d["custom"]) if d["custom"] else integ.exposed,
            tuple(d.get("allowed_hosts", ())), *endpoint_parts(d)[1:],
        )  # fmt: skip
    workspaces = {}
    for slug, d in data["workspaces"].items():
        rules = [
            PriceRule(
                pattern(p["model"]),
                shared.prices_of(p.get("prices")),
                bool(p.get("free")),
                f"workspaces/{slug}/pricing/{p['model']}",
            )
            for p in d["pricing"]
        ]
        rules.sort(key=lambda r: r.pattern.specificity(), reverse=True)
        workspaces[slug] = Workspace(
            slug, _selection(d["providers"]),
            shared.rules_of(f"workspace `{slug}`", f"workspaces/{slug}/access", d["access"]),
            tuple(rules), d["counter"], d["default_config"],
            tuple(_freeze(k) for k in d["api_keys"]), aliases_of(d.get("aliases")),
        )  # fmt: skip
    configs = {
        slug: ConfigInfo(slug, _selection(d["workspaces"]), d["tree"])
        for slug, d in data["configs"].items()
    }
    open_providers, provisioned_to = _provisioning_index(providers)
    provenance = data["provenance"]
    bundle = Bundle(
        digest=digest,
        provenance=MappingProxyType({k: v for k, v in provenance.items() if k != "origins"}),
        organization=_freeze(org),
        org_rules=shared.rules_of("organization", "organization/access", org["access"]),
        counters=MappingProxyType(counters),
        integrations=MappingProxyType(integrations),
        providers=MappingProxyType(providers),
        workspaces=MappingProxyType(workspaces),
        configs=MappingProxyType(configs),
        origins=MappingProxyType(dict(provenance["origins"])),
        open_providers=open_providers,
        provisioned_to=MappingProxyType(provisioned_to),
    )
    _check_resolved(bundle, shared)
    return bundle


def _check_resolved(bundle: Bundle, shared: _Shared) -> None:
    """A model a provider exposes has its resolved entry, unless a level above the
    workspaces refuses it (a request for it would otherwise find no prices). Providers
    with equal rules and no pattern that could match `@slug/…` share one verdict."""
    for slug, p in bundle.providers.items():
        missing = p.exposed.difference(p.models)
        if not missing:
            continue
        levels = (bundle.org_rules, p.integration.rules, p.rules)
        key: tuple[Any, ...] = (*((r.allow, r.deny) for r in levels), missing)
        if any(q.text[:1] in ("@", "*") for r in levels for q in (*(r.allow or ()), *r.deny)):
            key = (*key, slug)
        if key in shared.resolved:
            continue
        names, prefix = set(missing), f"@{slug}/"
        for rules in levels:
            if names:
                names = _passing(rules, names, prefix)
        if names:
            raise BundleContentError(
                f"bundle content is invalid: `{min(names)}` is exposed and allowed, but has no "
                "entry (prices, limits) under the provider's models",
                where(("providers", slug, "models")),
            )
        shared.resolved.add(key)


def _passing(rules: Rules, names: set[str], prefix: str) -> set[str]:
    """The model names `rules` lets through (as `Rules.refuse` decides for a name and its
    qualified form `prefix + name`), filtered in bulk."""
    if rules.deny_re is not None:
        match = cast(Callable[[str], Any], rules.deny_re.match)
        denied: set[str] = set(filter(match, names))
        names = names - denied
        qualified_names = [prefix + n for n in names]
        names.difference_update(q[len(prefix) :] for q in filter(match, qualified_names))
    if rules.allow is not None:
        if rules.allow_re is None:
            return set()
        match = cast(Callable[[str], Any], rules.allow_re.match)
        allowed = set(filter(match, names))
        rest = names.difference(allowed)
        allowed.update(q[len(prefix) :] for q in filter(match, [prefix + n for n in rest]))
        names = allowed
    return names


def _provisioning_index(
    providers: Mapping[str, Provider],
) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """Which providers every workspace may use, and which name workspaces explicitly."""
    open_ones: list[str] = []
    named: dict[str, list[str]] = {}
    for slug, p in sorted(providers.items()):
        a, b = p.integration.workspaces, p.workspaces
        selection = a if b is None else (b if a is None else a & b)
        if selection is None:
            open_ones.append(slug)
        else:
            for ws in selection:
                named.setdefault(ws, []).append(slug)
    return tuple(open_ones), {ws: tuple(slugs) for ws, slugs in named.items()}
