"""Building a checked bundle's records: equal values shared across the bundle (price
tables, limits, access lists), model and endpoint entries, the provisioning index, and the
check that every exposed, allowed model has its resolved entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from runtime.bundle.access import Rules
from runtime.bundle.check import where
from runtime.bundle.errors import BundleContentError
from runtime.bundle.model import (
    VARIANT_FIELDS,
    BudgetLimit,
    Counter,
    ModelInfo,
    Prices,
    Provider,
    RateLimit,
)

if TYPE_CHECKING:
    from runtime.bundle.load import Bundle


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
