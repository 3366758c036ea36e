"""The router: a loaded bundle answering, per request, where it goes and whether limits
allow it. Thread-safe; `reload` swaps the bundle atomically and a bad bundle changes nothing.

    router = Router.load("catalog.bundle.json")
    plan = router.resolve(workspace="support", model="@openai-prod/gpt-4o")
    with router.admit(plan.attempts[0], Estimate(input_tokens=812, max_tokens=256)) as ticket:
        ...  # call the upstream
        ticket.settle(Usage(input_tokens=812, output_tokens=97))
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from runtime.aliases import Alias
from runtime.aliases import expand as expand_alias
from runtime.bounds import METADATA_BOUNDS, PARAMS_BOUNDS, Bounds, plain_json
from runtime.bundle import Bundle, Counter
from runtime.counters_usage import CounterUsage, counters_of, read_usage
from runtime.errors import AccessDenied, InvalidConfig, UnknownConfig
from runtime.inline import check_destination, compile_inline
from runtime.limits.base import Reservation, Store, checked_request_id
from runtime.limits.memory import MemoryStore
from runtime.limits.spec import BudgetSpec, ChainSpec, compile_chain
from runtime.modes import check_plan
from runtime.money import Estimate, Usage, reserved_usage, usd
from runtime.params import request_body
from runtime.plan import Attempt, Context, Plan, Rule, expand
from runtime.price_tables import RateCard, requested_tier
from runtime.suggest import nearest

PLAN_CACHE_LIMIT = 100_000
MAX_NAME = 1_024  # a workspace, model, provider or config slug in a request
AlertHook = Callable[[BudgetSpec, "Ticket"], None]


@dataclass(eq=False)
class _State:
    """One bundle and everything derived from it; replaced whole on reload."""

    bundle: Bundle
    plans: dict[tuple[str, str | None, str | None], Plan] = field(default_factory=dict)
    specs: dict[tuple[str, ...], ChainSpec] = field(default_factory=dict)
    # attempts as a bundle decides them, before the request's own params are merged in
    bases: dict[tuple[Any, ...], Attempt] = field(default_factory=dict)

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


class Router:
    def __init__(
        self,
        bundle: Bundle,
        store: Store | None = None,
        *,
        on_alert: AlertHook | None = None,
    ) -> None:
        self._state = _State(bundle)
        self.store: Store = store if store is not None else MemoryStore()
        self.on_alert = on_alert
        # request ids unique across processes and replicas, cheaper than uuid4 per request
        self._id_prefix = uuid.uuid4().hex[:16] + "-"
        self._ids = itertools.count()

    @classmethod
    def load(cls, source: str | Path | bytes, store: Store | None = None, **kwargs: Any) -> Router:
        """Verify and load a bundle file (or its bytes); raises BundleError when unusable."""
        return cls(Bundle.load(source), store, **kwargs)

    @property
    def bundle(self) -> Bundle:
        return self._state.bundle

    def reload(self, source: str | Path | bytes) -> str:
        """Swap to a new bundle atomically; on any error the old one keeps serving."""
        return self.swap(Bundle.load(source))

    def swap(self, bundle: Bundle) -> str:
        """Serve an already loaded bundle from now on (atomic: one assignment)."""
        self._state = _State(bundle)
        return bundle.digest

    # -- resolution ---------------------------------------------------------------------
    def resolve(
        self,
        workspace: str,
        model: str | None = None,
        *,
        provider: str | None = None,
        config: str | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
        path: str | None = None,
        endpoint: str | None = None,
    ) -> Plan:
        """As `_resolve`; with `endpoint` (`chat`, `completions`, `embeddings`, `responses`,
        `messages`), a plan with a model of another mode is refused (ModeMismatch, 400)
        before anything is admitted: see runtime/modes.py."""
        plan = self._resolve(workspace, model, provider=provider, config=config,
                             metadata=metadata, params=params, seed=seed, path=path)  # fmt: skip
        if endpoint is not None:
            check_plan(plan, endpoint)
        return plan

    def _resolve(
        self,
        workspace: str,
        model: str | None = None,
        *,
        provider: str | None = None,
        config: str | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
        path: str | None = None,
    ) -> Plan:
        """A plan for one request: `model="@provider/model"`, `model` plus `provider="@p"`,
        or `config` (a slug or an inline config) with request `metadata` and `params`; a
        request naming neither a provider nor a config takes its workspace's
        `default_config`. `path` is the request's URL path (`url.pathname` in conditions).

        Everything here may come from a client: names are checked, `metadata` and `params`
        are copied within bounds (runtime/bounds.py), an inline config is held to the rules
        of runtime/inline.py. Every refusal is a RequestError."""
        state = self._state  # one snapshot, even if a reload happens meanwhile
        if config is None and params is None and metadata is None and path is None:
            try:  # the hot path: names seen before were checked before
                cached = state.plans.get((workspace, model, provider))
            except TypeError:  # an unhashable "name": refused below
                cached = None
            if cached is not None:
                return cached
        _check_names(workspace, model, provider, config, seed)
        if not isinstance(path, str | None) or (path is not None and len(path) > MAX_NAME):
            raise InvalidConfig([f"path: expected a URL path of at most {MAX_NAME} characters"])
        if model is not None and model[:1] != "@":
            alias = state.bundle.workspace(workspace).aliases.get(model)
            if alias is not None:
                return self._resolve_alias(state, alias, workspace, provider, config, metadata,
                                           params, seed, path)  # fmt: skip
        if config is None and provider is None and not (model or "").startswith("@"):
            config = state.bundle.workspace(workspace).default_config
        if metadata is not None:
            metadata = _object(metadata, METADATA_BOUNDS, "metadata")
        if params is not None:
            params = _object(params, PARAMS_BOUNDS, "params")
        if config is not None:
            return self._resolve_config(
                state, workspace, config, metadata, params, seed, model, path, provider
            )
        if model is None:
            raise InvalidConfig(["a request names a model (`@provider/model`) or a config"])
        key = (workspace, model, provider)
        provider_slug, model_name = _split(model, provider)
        attempt = self._attempt(state, workspace, provider_slug, model_name, None, params, (),
                                owned=True)  # params: the bounded copy made above  # fmt: skip
        plan = Plan(workspace, "single", (attempt,))
        if params is None:
            state.remember(key, plan)
        return plan

    def _resolve_alias(
        self,
        state: _State,
        alias: Alias,
        workspace: str,
        provider: str | None,
        config: str | Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        seed: int | None,
        path: str | None,
    ) -> Plan:
        """The plan of the alias's target, named in the same request form (runtime/aliases.py):
        the target's own checks, limits and prices apply, nothing else."""
        model, alias_config = expand_alias(alias, provider, config)
        if params is not None:  # the body names the target too (conditions see `params.model`)
            params = _object(params, PARAMS_BOUNDS, "params")
            if model is None:
                params.pop("model", None)
            else:
                params["model"] = model
        plan = self.resolve(workspace, model, provider=provider, config=alias_config or config,
                            metadata=metadata, params=params, seed=seed, path=path)  # fmt: skip
        plan = replace(plan, alias=alias.name)
        cacheable = self._state is state  # not across a reload that happened meanwhile
        if cacheable and config is None and params is None and metadata is None and path is None:
            state.remember((workspace, alias.name, provider), plan)
        return plan

    def _resolve_config(
        self,
        state: _State,
        workspace: str,
        config: str | Mapping[str, Any],
        metadata: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        seed: int | None,
        model: str | None,
        path: str | None = None,
        provider: str | None = None,
    ) -> Plan:
        """`model`/`provider`: the request's own, for the targets that take them from the
        request (no provider of their own, or `passthrough: true`)."""
        bundle = state.bundle
        bundle.workspace(workspace)  # raises UnknownWorkspace
        slug: str | None = None
        leaves: list[tuple[dict[str, Any], tuple[str | int, ...]]] = []
        if isinstance(config, str):
            slug = config
            info = bundle.configs.get(slug)
            if info is None:
                raise UnknownConfig(slug, nearest(slug, bundle.configs))
            if info.workspaces is not None and workspace not in info.workspaces:
                raise AccessDenied(workspace, f"config `{slug}`", f"config `{slug}`",
                                   "is not offered to this workspace",
                                   bundle.origin(f"configs/{slug}"))  # fmt: skip
            tree = info.tree
        else:
            inline = compile_inline(config)
            tree, leaves = inline.tree, inline.leaves
        ctx = Context(metadata or {}, params or {}, seed=seed)
        if path is not None:
            ctx.path = path
        requested = model or (params or {}).get("model")
        for node, at in leaves:  # a client's config: each redirected leaf, taken or not
            self._check_destination(state, workspace, node, at, requested, provider)
        attempts = []
        for choice in expand(tree, ctx):
            leaf = choice.leaf
            name = leaf.get("model") or requested
            if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
                raise InvalidConfig([f"target `{leaf.get('name', '?')}` sets no model and the "
                                     "request names none"])  # fmt: skip
            provider_slug, model_name = _leaf_target(leaf, name, provider)
            attempt = self._attempt(state, workspace, provider_slug, model_name, leaf, params,
                                    choice.fallback, cacheable=slug is not None)  # fmt: skip
            attempts.append(replace(attempt, option=choice.option))
        mode = "single" if tree["mode"] == "target" else tree["mode"]
        return Plan(workspace, mode, tuple(attempts), config=slug, branch=ctx.branch)

    def _check_destination(
        self,
        state: _State,
        workspace: str,
        leaf: Mapping[str, Any],
        path: tuple[str | int, ...],
        requested: Any,
        from_request: str | None,
    ) -> None:
        """An inline `custom_host` may carry a catalog provider's credentials only where the
        catalog allows (AccessDenied, 403, otherwise)."""
        host = leaf.get("custom_host")
        if host is None:
            return
        slug = leaf.get("provider")
        if _takes_request_provider(leaf):  # the provider may come from the request
            if isinstance(requested, str) and requested.startswith("@"):
                slug = requested[1:].partition("/")[0]
            elif from_request is not None:
                slug = from_request.removeprefix("@")
        if slug is None:
            return  # no provider at all: refused when the attempt is made
        provider = state.bundle.provider(slug)
        check_destination(workspace, provider, host, path, state.bundle.origin)

    def _attempt(
        self,
        state: _State,
        workspace: str,
        provider_slug: str | None,
        model: str,
        leaf: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        fallback: tuple[Rule, ...],
        cacheable: bool = True,
        owned: bool = False,
    ) -> Attempt:
        """The attempt for one leaf, with the request's `params` merged into its body.
        `cacheable`: the leaf is the bundle's (a client's inline leaf is new every time)."""
        if provider_slug is None:  # an ungoverned raw service from an inline/pasted config
            return self._raw_attempt(state, workspace, model, leaf or {}, params, fallback)
        key = (workspace, provider_slug, model, id(leaf), fallback)
        base = state.bases.get(key) if cacheable else None
        if base is None:
            base = self._base_attempt(state, workspace, provider_slug, model, leaf, fallback)
            if cacheable:
                if len(state.bases) >= PLAN_CACHE_LIMIT:
                    state.bases.clear()
                state.bases[key] = base
        if params is None:
            return base
        defaults = state.bundle.providers[provider_slug].default_params
        body = request_body(params, defaults, (leaf or {}).get("params"), model, owned)
        return with_params(base, body)

    def _base_attempt(
        self,
        state: _State,
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
            carried=leaf.get("carried") or {},
            limits=state.spec(chain),
            mode=info.mode,
        )

    def _raw_attempt(
        self,
        state: _State,
        workspace: str,
        model: str,
        leaf: Mapping[str, Any],
        params: Mapping[str, Any] | None,
        fallback: tuple[Rule, ...],
    ) -> Attempt:
        bundle = state.bundle
        ws = bundle.workspace(workspace)
        service = str(leaf.get("service"))
        key = leaf.get("api_key")
        return Attempt(
            workspace=workspace, provider=None, model=model, service=service, api="openai",
            auth="bearer", url=leaf.get("custom_host"),
            credentials=MappingProxyType({"api_key": key} if key else {}),
            params=MappingProxyType(request_body(params, {}, leaf.get("params"), model)),
            retry=leaf.get("retry"), timeout_ms=leaf.get("request_timeout"),
            fallback=fallback, prices=None, rates=RateCard.of(None),
            chain=(chain := (bundle.counters["organization"], bundle.counters[ws.counter])),
            max_output_tokens=None, carried=leaf.get("carried") or {}, limits=state.spec(chain),
        )  # fmt: skip

    # -- usage ---------------------------------------------------------------------------
    def usage(self, workspace: str | None = None) -> list[CounterUsage]:
        """Every counter's use in its current window (or those a workspace is charged to):
        limit, spent, reserved in flight, remaining; see runtime/counters_usage.py."""
        state = self._state
        counters = counters_of(state.bundle, workspace)
        clock = getattr(self.store, "clock", time.time_ns)  # the store's idea of now
        return read_usage(self.store, counters, state.bundle.organization.get("epoch"), clock())

    # -- admission ----------------------------------------------------------------------
    def _reserve(
        self, attempt: Attempt, estimate: Estimate | None, request_id: str | None, batch: bool
    ) -> tuple[str, ChainSpec, Usage, int]:
        spec = attempt.limits or self._state.spec(attempt.chain)
        usage = reserved_usage(estimate, attempt.max_output_tokens)
        rid = (
            checked_request_id(request_id)
            if request_id is not None
            else f"{self._id_prefix}{next(self._ids)}"
        )
        card = attempt.rates
        tier = requested_tier(attempt.params) if card.flat is None else None
        return rid, spec, usage, card.reserve(usage, tier, batch is True)

    def admit(
        self,
        attempt: Attempt,
        estimate: Estimate | None = None,
        request_id: str | None = None,
        *,
        batch: bool = False,
    ) -> Ticket:
        """Check and charge every counter of the attempt's chain, all or nothing.
        `batch=True`: the request goes through the provider's Batch API (a library user's
        choice; the gateway never sets it), so it is reserved and charged at batch prices.

        Raises BudgetExceeded (412), RateLimited or ConcurrencyExceeded (429)."""
        rid, spec, usage, cost = self._reserve(attempt, estimate, request_id, batch)
        reservation = self.store.admit(rid, spec, usage.tokens, cost)
        return self._ticket(attempt, reservation, estimate, batch)

    async def aadmit(
        self,
        attempt: Attempt,
        estimate: Estimate | None = None,
        request_id: str | None = None,
        *,
        batch: bool = False,
    ) -> Ticket:
        rid, spec, usage, cost = self._reserve(attempt, estimate, request_id, batch)
        reservation = await self.store.aadmit(rid, spec, usage.tokens, cost)
        return self._ticket(attempt, reservation, estimate, batch)

    def _ticket(
        self, attempt: Attempt, reservation: Reservation, estimate: Estimate | None, batch: bool
    ) -> Ticket:
        ticket = Ticket(self.store, attempt, reservation, estimate or Estimate(0), batch is True)
        if reservation.alerts and self.on_alert is not None:
            for budget in reservation.alerts:
                self.on_alert(budget, ticket)
        return ticket


class Ticket:
    """One admitted attempt. Settle it with the real usage; leaving the `with` block without
    settling (an error, a cancel) charges the input only and releases the lease."""

    def __init__(
        self,
        store: Store,
        attempt: Attempt,
        reservation: Reservation,
        estimate: Estimate,
        batch: bool = False,
    ) -> None:
        self.store = store
        self.attempt = attempt
        self.reservation = reservation
        self.estimate = estimate
        self.batch = batch  # admitted as a Batch API request: charged at batch prices
        self.cost: Decimal | None = None  # USD, once settled
        self.usage: Usage | None = None  # what it was settled with

    @property
    def request_id(self) -> str:
        return self.reservation.request_id

    @property
    def reserved(self) -> Decimal:
        return usd(self.reservation.cost)

    @property
    def settled(self) -> bool:
        return self.cost is not None

    def settle(self, usage: Usage) -> Decimal:
        """Reconcile the reservation with real usage; idempotent (returns the first cost)."""
        if self.cost is not None:
            return self.cost
        cost = self.charge(usage)
        self.store.settle(self.reservation, usage.tokens, cost)
        self.cost, self.usage = usd(cost), usage
        return self.cost

    async def asettle(self, usage: Usage) -> Decimal:
        if self.cost is not None or self.store.settles_inline:
            return self.settle(usage)
        cost = self.charge(usage)
        await self.store.asettle(self.reservation, usage.tokens, cost)
        self.cost, self.usage = usd(cost), usage
        return self.cost

    def charge(self, usage: Usage) -> int:
        """What `usage` costs in units of 1e-16 USD: at the service tier the upstream reported, else
        the requested one; at the long-context tier of its prompt; batch if admitted so."""
        card = self.attempt.rates
        if card.flat is not None:
            return card.flat.cost(usage)
        return card.cost(usage, requested_tier(self.attempt.params), self.batch)

    def _input_only(self) -> Usage:
        return Usage(input_tokens=self.estimate.input_tokens)

    def cancel(self) -> Decimal:
        """A request that never completed still pays for its input."""
        return self.settle(self._input_only())

    async def acancel(self) -> Decimal:
        return await self.asettle(self._input_only())

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.cost is None:
            self.cancel()

    async def __aenter__(self) -> Ticket:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.cost is None:
            await self.acancel()


def with_params(base: Attempt, body: dict[str, Any]) -> Attempt:
    """`base` sending `body` (dataclasses.replace, without its generic slowness)."""
    return Attempt(
        base.workspace, base.provider, base.model, base.service, base.api, base.auth, base.url,
        base.credentials, MappingProxyType(body), base.retry, base.timeout_ms, base.fallback,
        base.prices, base.rates, base.chain, base.max_output_tokens, base.carried, base.limits,
        base.option, base.catalog_rates, base.mode,
    )  # fmt: skip


def _takes_request_provider(leaf: Mapping[str, Any]) -> bool:
    """A target with no provider of its own, or with `passthrough: true`, routes to the
    provider the request names (`x-portkey-provider`, or `@provider/model`)."""
    if leaf.get("service") is not None:
        return False
    return leaf.get("provider") is None or (leaf.get("carried") or {}).get("passthrough") is True


def _leaf_target(
    leaf: Mapping[str, Any], name: str, provider: str | None
) -> tuple[str | None, str]:
    """(provider slug, model) of one leaf; the slug is None for a raw service."""
    own = leaf.get("provider")
    if not _takes_request_provider(leaf):
        # the target's provider wins; a request's `@provider/model` still names the model
        return own, (name[1:].partition("/")[2] or name) if own and name[:1] == "@" else name
    if name.startswith("@") or provider is not None or own is None:
        return _split(name, provider)
    return own, name  # passthrough, but the request names no provider: the target's


def _split(model: str, provider: str | None) -> tuple[str, str]:
    """`@p/m` alone, or a bare model with `provider="@p"`: (provider slug, model)."""
    if model.startswith("@"):
        named, _, bare = model[1:].partition("/")
        if not bare:
            raise InvalidConfig([f"`{model}` is not a model string: write `@provider/model`"])
        if provider is not None and provider.removeprefix("@") != named:
            raise InvalidConfig(
                [f"the model names `@{named}` but the provider header `{provider}`"]
            )
        return named, bare
    if provider is None:
        raise InvalidConfig([f"`{model}` names no provider: write `@provider/{model}` or send "
                             "a provider"])  # fmt: skip
    return provider.removeprefix("@"), model


def _object(value: Any, bounds: Bounds, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidConfig([f"{what}: expected an object"])
    copy: dict[str, Any] = plain_json(value, bounds, what)
    return copy


def _check_names(workspace: Any, model: Any, provider: Any, config: Any, seed: Any) -> None:
    """The request's names are short strings (a Python caller may pass anything)."""
    named = {"workspace": workspace, "model": model, "provider": provider}
    if isinstance(config, str):
        named["config"] = config
    elif config is not None and not isinstance(config, Mapping):
        raise InvalidConfig(["config: a config slug or a config object"])
    for what, value in named.items():
        if value is None and what != "workspace":
            continue
        if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
            raise InvalidConfig([f"{what}: expected a name of 1-{MAX_NAME} characters"])
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidConfig(["seed: expected an integer"])
