"""What a loaded bundle is made of: frozen records for counters and their limits, price
tables, models, integrations, providers, workspaces, configs and access decisions, and the
words and tightest values of a counter chain. Built while loading; `Bundle` indexes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from runtime.bundle.access import Pattern, Refusal, Rules, qualified
from runtime.bundle.aliases import NO_ALIASES, Alias
from runtime.bundle.errors import (
    AccessDenied,
    amount_words,
    period_words,
)

PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "per_request", "cache_write_1h")
# members of a price table that are tables themselves; a workspace rule replaces each whole
VARIANT_FIELDS = ("tiers", "batch", "service_tiers")


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
    absent fields fall back to this one's; runtime/bundle/price_tables.py picks one per request."""

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
    # name -> its target (runtime/bundle/aliases.py)
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

    def offered_to(self, workspace: str) -> bool:
        return self.workspaces is None or workspace in self.workspaces

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
