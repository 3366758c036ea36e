"""The router: a loaded bundle answering, per request, where it goes and whether limits
allow it. Thread-safe; `reload` swaps the bundle atomically and a bad bundle changes nothing.

    router = Router.load("catalog.bundle.json")
    plan = router.resolve(workspace="support", model="@openai-prod/gpt-4o")
    with router.admit(plan.attempts[0], Estimate(input_tokens=812, max_tokens=256)) as ticket:
        ...  # call the upstream
        ticket.settle(Usage(input_tokens=812, output_tokens=97))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from runtime.bundle.aliases import Alias
from runtime.bundle.aliases import expand as expand_alias
from runtime.bundle.errors import (
    AccessDenied,
    InvalidConfig,
    InvalidRequest,
    InvalidRequestInput,
    UnknownConfig,
)
from runtime.bundle.load import Bundle
from runtime.bundle.money import Estimate, Usage, reserved_usage
from runtime.bundle.price_tables import requested_tier
from runtime.bundle.suggest import nearest
from runtime.limits.base import Reservation, Store, checked_request_id
from runtime.limits.memory import MemoryStore
from runtime.limits.spec import BudgetSpec, ChainSpec
from runtime.routing.attempts import (
    PLAN_CACHE_LIMIT,
    State,
    base_attempt,
    raw_refusal,
    with_params,
)
from runtime.routing.bounds import METADATA_BOUNDS, PARAMS_BOUNDS
from runtime.routing.counters_usage import CounterUsage, counters_of, read_usage
from runtime.routing.inline import check_destination, compile_inline
from runtime.routing.modes import check_plan
from runtime.routing.params import request_body
from runtime.routing.plan import Attempt, Context, Plan, Rule, expand
from runtime.routing.targets import (
    MAX_NAME,
    bounded_object,
    check_names,
    leaf_target,
    split_target,
)
from runtime.routing.ticket import Ticket
from runtime.routing.unique import Ids

__all__ = ["AlertHook", "Router", "Ticket"]  # Ticket: where users import it from
_REQUEST_IDS = Ids(16, separator="-")  # "3f2a…-0", "3f2a…-1": cheaper than uuid4 per request

AlertHook = Callable[[BudgetSpec, "Ticket"], None]


class Router:
    def __init__(
        self,
        bundle: Bundle,
        store: Store | None = None,
        *,
        on_alert: AlertHook | None = None,
    ) -> None:
        self._state = State(bundle)
        self.store: Store = store if store is not None else MemoryStore()
        self.on_alert = on_alert
        self._ids = _REQUEST_IDS  # unique across processes, replicas and forks

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
        self._state = State(bundle)
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
        before anything is admitted: see runtime/routing/modes.py."""
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
        are copied within bounds (runtime/routing/bounds.py), an inline config is held to the rules
        of runtime/routing/inline.py. Every refusal is a RequestError."""
        state = self._state  # one snapshot, even if a reload happens meanwhile
        if config is None and metadata is None and seed is None:
            try:  # the hot paths: names seen before were checked before
                key = (workspace, model, provider)
                cached = state.plans.get(key) if params is None and path is None else None
                direct = state.direct.get(key) if params is not None else None  # type: ignore[arg-type]
            except TypeError:  # an unhashable "name": refused below
                cached = direct = None
            if cached is not None:
                return cached
            short_path = path is None or (type(path) is str and len(path) <= MAX_NAME)
            if direct is not None and short_path:
                base, defaults = direct
                body = request_body(bounded_object(params, PARAMS_BOUNDS, "params"), defaults,
                                    None, base.model, owned=True)  # fmt: skip
                return Plan(workspace, "single", (with_params(base, body),))
        check_names(workspace, model, provider, config, seed)
        if not isinstance(path, str | None) or (path is not None and len(path) > MAX_NAME):
            raise InvalidRequestInput([f"path: expected a URL path of at most {MAX_NAME} "
                                       "characters"])  # fmt: skip
        if model is not None and model[:1] != "@":
            alias = state.bundle.workspace(workspace).aliases.get(model)
            if alias is not None:
                return self._resolve_alias(state, alias, workspace, provider, config, metadata,
                                           params, seed, path)  # fmt: skip
        if config is None and provider is None and not (model or "").startswith("@"):
            config = state.bundle.workspace(workspace).default_config
        if metadata is not None:
            metadata = bounded_object(metadata, METADATA_BOUNDS, "metadata")
        if params is not None:
            params = bounded_object(params, PARAMS_BOUNDS, "params")
        if config is not None:
            return self._resolve_config(
                state, workspace, config, metadata, params, seed, model, path, provider
            )
        if model is None:
            raise InvalidRequestInput(["a request names a model (`@provider/model`) or a config"])
        key = (workspace, model, provider)
        try:
            provider_slug, model_name = split_target(model, provider)
        except InvalidConfig as exc:  # the request's own names: no config is at fault
            raise InvalidRequestInput(exc.problems) from None
        attempt = self._attempt(state, workspace, provider_slug, model_name, None, params, (),
                                owned=True)  # params: the bounded copy made above  # fmt: skip
        plan = Plan(workspace, "single", (attempt,))
        if params is None:
            state.remember(key, plan)
        else:  # the next request naming it with params skips to their merge (above)
            base = self._attempt(state, workspace, provider_slug, model_name, None, None, ())
            defaults = state.bundle.providers[provider_slug].default_params
            state.remember_direct(key, base, defaults)
        return plan

    def _resolve_alias(
        self,
        state: State,
        alias: Alias,
        workspace: str,
        provider: str | None,
        config: str | Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        seed: int | None,
        path: str | None,
    ) -> Plan:
        """The plan of the alias's target, named in the same request form
        (runtime/bundle/aliases.py):
        the target's own checks, limits and prices apply, nothing else."""
        model, alias_config = expand_alias(alias, provider, config)
        if params is not None:  # the body names the target too (conditions see `params.model`)
            params = bounded_object(params, PARAMS_BOUNDS, "params")
            if model is None:
                params.pop("model", None)
            else:
                params["model"] = model
        plan = self.resolve(workspace, model, provider=provider, config=alias_config or config,
                            metadata=metadata, params=params, seed=seed, path=path)  # fmt: skip
        plan = replace(plan, alias=alias.name)
        # a model's plan is the same for every request; a config's may not be (a loadbalance
        # picks per request, a seed picks once), and a reload may have happened meanwhile
        fixed = alias_config is None and config is None and seed is None
        cacheable = self._state is state and fixed
        if cacheable and params is None and metadata is None and path is None:
            state.remember((workspace, alias.name, provider), plan)
        return plan

    def _resolve_config(
        self,
        state: State,
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
                offered = [s for s, c in bundle.configs.items() if c.offered_to(workspace)]
                raise UnknownConfig(slug, nearest(slug, offered))
            if not info.offered_to(workspace):
                raise AccessDenied(workspace, f"config `{slug}`", f"config `{slug}`",
                                   "is not offered to this workspace",
                                   bundle.origin(f"configs/{slug}"))  # fmt: skip
            tree = info.tree
        else:
            inline = compile_inline(config)
            tree, leaves = inline.tree, inline.leaves
        ctx = Context(metadata or {}, params or {}, path, seed)
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
            provider_slug, model_name = leaf_target(leaf, name, provider)
            attempt = self._attempt(state, workspace, provider_slug, model_name, leaf, params,
                                    choice.fallback, cacheable=slug is not None)  # fmt: skip
            attempts.append(replace(attempt, option=choice.option))
        mode = "single" if tree["mode"] == "target" else tree["mode"]
        return Plan(workspace, mode, tuple(attempts), config=slug, branch=ctx.branch)

    def _check_destination(
        self,
        state: State,
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
        name = leaf.get("model") or requested  # as the attempt will name it
        try:
            slug = leaf_target(leaf, name, from_request)[0] if isinstance(name, str) else None
        except InvalidConfig:
            slug = None
        if slug is None:
            return  # no provider, or no model: refused when the attempt is made
        provider = state.bundle.provider(slug, workspace)
        check_destination(workspace, provider, host, path, state.bundle.origin)

    def _attempt(
        self,
        state: State,
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
        if provider_slug is None:  # a raw service, in a bundle compiled before E0516
            raise raw_refusal(workspace, leaf or {})
        key = (workspace, provider_slug, model, id(leaf), fallback)
        base = state.bases.get(key) if cacheable else None
        if base is None:
            base = base_attempt(state, workspace, provider_slug, model, leaf, fallback)
            if cacheable:
                if len(state.bases) >= PLAN_CACHE_LIMIT:
                    state.bases.clear()
                state.bases[key] = base
        if params is None:
            return base
        defaults = state.bundle.providers[provider_slug].default_params
        body = request_body(params, defaults, (leaf or {}).get("params"), model, owned)
        return with_params(base, body)

    # -- usage ---------------------------------------------------------------------------
    def usage(self, workspace: str | None = None) -> list[CounterUsage]:
        """Every counter's use in its current window (or those a workspace is charged to):
        limit, spent, reserved in flight, remaining; see runtime/routing/counters_usage.py."""
        state = self._state
        counters = counters_of(state.bundle, workspace)
        clock = getattr(self.store, "clock", time.time_ns)  # the store's idea of now
        return read_usage(self.store, counters, state.bundle.organization.get("epoch"), clock())

    # -- admission ----------------------------------------------------------------------
    def _reserve(
        self, attempt: Attempt, estimate: Estimate | None, request_id: str | None, batch: bool
    ) -> tuple[str, ChainSpec, Usage, int]:
        if not isinstance(attempt, Attempt):
            raise InvalidRequest("attempt", "is one of the attempts of a plan `resolve` made, "
                                 f"not {type(attempt).__name__}")  # fmt: skip
        spec = attempt.limits or self._state.spec(attempt.chain)
        usage = reserved_usage(estimate, attempt.max_output_tokens)
        rid = checked_request_id(request_id) if request_id is not None else self._ids.next()
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
