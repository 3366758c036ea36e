"""Attempts as a bundle decides them: one bundle's derived state (plan cache, compiled counter
chains, base attempts), a catalog target's attempt and a raw service's, and an attempt
sending a request's own body. The router resolves names to these (runtime/routing/router.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from runtime.bundle.errors import AccessDenied
from runtime.bundle.load import Bundle, Counter
from runtime.bundle.price_tables import RateCard
from runtime.limits.spec import ChainSpec, compile_chain
from runtime.routing.inline import check_destination
from runtime.routing.params import request_body
from runtime.routing.plan import Attempt, Plan, Rule

PLAN_CACHE_LIMIT = 100_000


@dataclass(eq=False)
class State:
    """One bundle and everything derived from it; replaced whole on reload."""

    bundle: Bundle
    plans: dict[tuple[str, str | None, str | None], Plan] = field(default_factory=dict)
    specs: dict[tuple[str, ...], ChainSpec] = field(default_factory=dict)
    # attempts as a bundle decides them, before the request's own params are merged in
    bases: dict[tuple[Any, ...], Attempt] = field(default_factory=dict)
    # a `@provider/model` (or model plus provider) resolved before to one target, with the
    # provider's default params: a request that sends params needs only their merge
    direct: dict[tuple[str, str, str | None], tuple[Attempt, Mapping[str, Any]]] = field(
        default_factory=dict
    )

    def remember_direct(
        self, key: tuple[str, str, str | None], base: Attempt, defaults: Mapping[str, Any]
    ) -> None:
        if len(self.direct) >= PLAN_CACHE_LIMIT:
            self.direct.clear()
        self.direct[key] = (base, defaults)

    def remember(self, key: tuple[str, str | None, str | None], plan: Plan) -> None:
        """Cache a plan (bounded: a full cache starts over)."""
        if len(self.plans) >= PLAN_CACHE_LIMIT:
            self.plans.clear()
        self.plans[key] = plan

    def spec(self, chain: tuple[Counter, ...]) -> ChainSpec:
        key = tuple(c.id for c in chain)
        found = self.specs.get(key)
        if found is None:
            found = compile_chain(chain, self.bundle.organization.get("epoch"))
            self.specs[key] = found
        return found


def base_attempt(
    state: State,
    workspace: str,
    provider_slug: str,
    model: str,
    leaf: Mapping[str, Any] | None,
    fallback: tuple[Rule, ...],
) -> Attempt:
    bundle = state.bundle
    leaf = leaf or {}
    decision = bundle.decide(workspace, provider_slug, model)
    if not decision.allowed:
        raise decision.error()
    provider = bundle.providers[provider_slug]
    if leaf.get("custom_host") is not None:  # the credentials of the provider it names
        check_destination(workspace, provider, leaf["custom_host"], (), bundle.origin)
    info = provider.models[model]
    quote = bundle.price(workspace, provider_slug, model)
    integ = provider.integration
    return Attempt(
        workspace=workspace,
        provider=provider_slug,
        model=model,
        service=integ.service,
        api=integ.api,
        auth=integ.auth,
        url=leaf.get("custom_host") or info.base_url or provider.base_url,
        credentials=integ.credentials,
        params=MappingProxyType(
            request_body(None, provider.default_params, leaf.get("params"), model)
        ),
        retry=leaf.get("retry"),
        timeout_ms=leaf.get("request_timeout"),
        fallback=fallback,
        prices=quote.prices,
        rates=RateCard.of(quote.prices),
        catalog_rates=RateCard.of(info.prices),  # before workspace overrides (chargeback)
        chain=(chain := bundle.chain(workspace, provider_slug)),
        max_output_tokens=info.max_output_tokens,
        carried=MappingProxyType(leaf.get("carried") or {}),  # plans are shared: read-only
        limits=state.spec(chain),
        mode=info.mode,
        context_window=info.context_window,
    )


def raw_refusal(workspace: str, leaf: Mapping[str, Any]) -> AccessDenied:
    """A config target naming a raw service (`provider: openai` with its own `api_key`) is
    not governed: no access rules, prices or secret of the catalog's apply to it. The
    compiler refuses it (E0516); a bundle compiled before it holds one."""
    service = str(leaf.get("service"))
    return AccessDenied(
        workspace, service, f"raw service `{service}`",
        "is not a catalog provider: target an `@provider` of an Integration of the service",
        None,
    )  # fmt: skip


def with_params(base: Attempt, body: dict[str, Any]) -> Attempt:
    """`base` sending `body` (dataclasses.replace, without its generic slowness)."""
    return Attempt(
        base.workspace, base.provider, base.model, base.service, base.api, base.auth, base.url,
        base.credentials, MappingProxyType(body), base.retry, base.timeout_ms, base.fallback,
        base.prices, base.rates, base.chain, base.max_output_tokens, base.carried, base.limits,
        base.option, base.catalog_rates, base.mode, base.context_window,
    )  # fmt: skip
