"""Load a compiled bundle: verify its format and digest, freeze it, index it.

The bundle is the only contract with the compiler (see schema/bundle.schema.json). Indexes
are small (per provider, per workspace); decisions for a (workspace, provider, model) are
computed on first use and memoized, so nothing grows as workspaces x models.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runtime.bundle.access import Refusal, Rules, pattern, qualified
from runtime.bundle.aliases import aliases_of
from runtime.bundle.build import (
    _check_resolved,
    _counter,
    _model,
    _provisioning_index,
    _Shared,
    endpoint_parts,
)
from runtime.bundle.check import check
from runtime.bundle.errors import (
    BundleContentError,
    BundleReadError,
    UnknownModel,
    UnknownProvider,
    UnknownWorkspace,
    amount_words,
    counter_label,
    period_words,
)
from runtime.bundle.model import (
    FREE,
    PRICE_FIELDS,
    VARIANT_FIELDS,
    BudgetLimit,
    ConfigInfo,
    Counter,
    Decision,
    Effective,
    Integration,
    ModelInfo,
    PriceQuote,
    PriceRule,
    Prices,
    PriceTier,
    Provider,
    RateLimit,
    Workspace,
    _freeze,
    _selection,
    _variants,
    budget_words,
    effective,
    rate_words,
    thaw,
)
from runtime.bundle.read import MAX_BUNDLE_BYTES, check_format, parse, read_bounded, verify_digest
from runtime.bundle.suggest import closest, nearest


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
        raw_bytes = _bytes_of(source, max_bytes)
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

    def provider(self, slug: str, workspace: str | None = None) -> Provider:
        """By the slug as given: the callers took the one `@` off already (`@@p` found as
        `p`, then attempted as `@p`, was an internal error). Asked for `workspace`, the
        "did you mean" names only a provider that workspace may use: another workspace's
        private provider is not suggested to it."""
        found = self.providers.get(slug)
        if found is None:
            among = self.providers if workspace is None else (
                [p.slug for p in self.usable_providers(workspace)])  # fmt: skip
            raise UnknownProvider(slug, nearest(slug, among))
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
        provider = self.provider(provider_slug, workspace)
        refusal = self.provisioning(ws, provider)
        if model not in provider.exposed:  # the models of one it may not use are not listed
            near = closest(model, provider.exposed) if refusal is None else ()
            raise UnknownModel(provider.slug, model, near)
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
                variants = _under_rule(variants, frozenset(given.fields()))
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


def _bytes_of(source: object, max_bytes: int) -> bytes:
    """A bundle's bytes: given as any buffer (a bytearray is no path), else read from its
    path; anything else is a BundleError, as every unusable source is."""
    if isinstance(source, bytes):
        return source
    if isinstance(source, bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | Path):
        return read_bounded(source, max_bytes)
    raise BundleReadError(f"a bundle is read from a path or bytes, not {type(source).__name__}")


def _under_rule(variants: dict[str, Any], given: frozenset[str]) -> dict[str, Any]:
    """The catalog's variants under a workspace rule that gives the fields `given`: the
    rule's own prices hold in every one it does not replace (a long-context tier, a service
    tier, batch), as a variant's own fields hold at every tier of the base. Taken whole, the
    catalog's tier prices replaced the rule's above a threshold (a review: one prompt token
    more charged the workspace nine times as much, at the catalog's price)."""
    if not given:
        return variants
    tiers, batch, service = variants["tiers"], variants["batch"], variants["service_tiers"]
    return {
        "tiers": tuple(PriceTier(t.above_input_tokens, _without(t.prices, given)) for t in tiers),
        "batch": _without(batch, given) if batch is not None else None,
        "service_tiers": tuple((name, _without(p, given)) for name, p in service),
    }


def _without(prices: Prices, given: frozenset[str]) -> Prices:
    """`prices` (a partial table) without the fields `given`, in its own tiers too."""
    tiers = tuple(PriceTier(t.above_input_tokens, _without(t.prices, given)) for t in prices.tiers)
    cleared: dict[str, Any] = dict.fromkeys(given)
    return replace(prices, **cleared, tiers=tiers)


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


__all__ = [  # importable from here, as before the split
    "FREE",
    "MAX_BUNDLE_BYTES",
    "PRICE_FIELDS",
    "VARIANT_FIELDS",
    "BudgetLimit",
    "Bundle",
    "ConfigInfo",
    "Counter",
    "Decision",
    "Effective",
    "Integration",
    "ModelInfo",
    "PriceQuote",
    "PriceRule",
    "PriceTier",
    "Prices",
    "Provider",
    "RateLimit",
    "Workspace",
    "amount_words",
    "budget_words",
    "check_format",
    "counter_label",
    "effective",
    "endpoint_parts",
    "parse",
    "period_words",
    "rate_words",
    "read_bounded",
    "thaw",
    "verify_digest",
]
