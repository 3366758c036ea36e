"""Checks on the resolved catalog, asked of the runtime's own index of the bundle: the
compiler and the router share one implementation of access, provisioning and pricing."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from catalog_compiler.diagnostics import Note, Span
from catalog_compiler.model.types import PERIOD_RE
from catalog_compiler.resolve.context import Context
from catalog_compiler.resolve.routing import Leaf
from runtime.access import Rules, qualified
from runtime.bundle import BudgetLimit, Bundle, Counter, Provider, RateLimit
from runtime.errors import RequestError
from runtime.suggest import did_you_mean

SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
DEAD_ALLOW = "a typo or dead config: remove it, or allow the model at the level above"


class Semantics:
    def __init__(self, ctx: Context, bundle: Bundle) -> None:
        self.ctx = ctx
        self.bundle = bundle

    def span(self, element: str) -> Span | None:
        return self.ctx.origins.get(element)

    def emit(self, code: str, message: str, element: str, **kw: Any) -> None:
        span = self.span(element)
        if span is not None:
            self.ctx.sink.emit(code, message, span, **kw)

    def note(self, element: str, message: str) -> list[Note]:
        span = self.span(element)
        return [Note(span, message)] if span is not None else []

    def run(self, leaves: list[Leaf]) -> None:
        self.allow_lists()
        self.unreachable_limits()
        self.unpriced()
        self.config_targets(leaves)
        self.default_configs()

    # -- E0500: allow entries that match nothing ---------------------------------------
    def allow_lists(self) -> None:
        """Each level's allow entries against what its parent exposes (computed only for the
        levels that have an allow list)."""
        b = self.bundle
        if b.org_rules.allow is not None:
            everything = {n for p in b.providers.values() for n in _names(p, p.exposed)}
            self.allow_matches(b.org_rules, everything)
        for integ in b.integrations.values():
            if integ.rules.allow is None:
                continue
            mine = [p for p in b.providers.values() if p.integration is integ]
            names = {m for m in integ.exposed if b.org_rules.refuse((m,)) is None}
            names |= {qualified(p.slug, m) for p in mine for m in list(names)}
            self.allow_matches(integ.rules, names)
        for p in b.providers.values():
            if p.rules.allow is None:
                continue
            above = [b.org_rules, p.integration.rules]
            allowed = [m for m in p.exposed if all(r.refuse(_pair(p, m)) is None for r in above)]
            self.allow_matches(p.rules, set(_names(p, allowed)))
        for ws in b.workspaces.values():
            if ws.rules.allow is None:
                continue
            usable = b.usable_providers(ws.slug)
            self.allow_matches(ws.rules, {n for p in usable for n in _names(p, p.models)})

    def allow_matches(self, rules: Rules, names: set[str]) -> None:
        for pattern in rules.allow or ():
            if any(pattern.matches(n) for n in names):
                continue
            guess = did_you_mean(pattern.text, names)
            self.emit(
                "E0500",
                f"allow entry `{pattern.text}` matches no model that {rules.level} can see",
                f"{rules.key}/allow/{pattern.text}",
                help=f"did you mean `{guess}`?" if guess else DEAD_ALLOW,
            )

    # -- W0500: limits that can never bind ----------------------------------------------
    def unreachable_limits(self) -> None:
        b = self.bundle
        org = b.counters["organization"]
        for slug in b.integrations:
            self.dominated(b.counters[f"integration/{slug}"], [[org]])
        for p in b.providers.values():
            ancestors = [b.counters[c] for c in p.chain[:-1]]
            self.dominated(b.counters[p.chain[-1]], [ancestors])
        for ws in b.workspaces.values():
            chains = [
                [b.counters[c] for c in p.chain] for p in b.usable_providers(ws.slug) if p.models
            ]
            if chains:
                self.dominated(b.counters[ws.counter], chains)

    def dominated(self, child: Counter, chains: list[list[Counter]]) -> None:
        """Warn for each declared limit of `child` that some ancestor beats on every chain."""
        checks: list[tuple[str, Any]] = []
        for b in child.budgets:
            checks.append((f"budgets/{b.key}", lambda chain, b=b: _tighter_budget(b, chain)))
        for r in child.rate_limits:
            checks.append((f"rate_limits/{r.key}", lambda chain, r=r: _tighter_rate(r, chain)))
        if child.concurrency is not None:
            limit = child.concurrency
            checks.append(("concurrency", lambda chain: _tighter_concurrency(limit, chain)))
        for tail, tighter_on in checks:
            element = f"counters/{child.id}/{tail}"
            if element in self.ctx.defaulted:
                continue  # from *_defaults: reported nowhere, it is the parent's choice
            found = [tighter_on(chain) for chain in chains]
            if all(found):
                self.never_binds(element, found[0])

    def never_binds(self, element: str, reason: tuple[str, str, str]) -> None:
        ancestor, what, tail = reason
        self.emit(
            "W0500",
            f"this limit can never bind: {ancestor} already allows at most {what}",
            element,
            help="remove it, or raise the ancestor's limit if this one is meant to apply",
            notes=self.note(f"counters/{ancestor}/{tail}", f"the tighter limit of {ancestor}"),
        )

    # -- E0501: usd budgets over models without prices ---------------------------------
    def unpriced(self) -> None:
        b = self.bundle
        for p in b.providers.values():
            for name, info in sorted(p.models.items()):
                missing = [f for f in ("input", "output") if info.prices.get(f) is None]
                if info.mode == "embedding":
                    missing = [f for f in missing if f == "input"]
                if missing:
                    self.unpriced_model(p, name, missing)

    def unpriced_model(self, p: Provider, model: str, missing: list[str]) -> None:
        b = self.bundle
        blocked = []
        for ws in sorted(b.workspaces.values(), key=lambda w: w.slug):
            if b.provisioning(ws, p) is not None or ws.rules.refuse(_pair(p, model)):
                continue  # only reached for unpriced models, which are rare
            quote = b.price(ws.slug, p.slug, model)
            if any(quote.prices.get(f) is None for f in missing) and (
                counter := _usd_counter([b.counters[c] for c in (*p.chain, ws.counter)])
            ):
                blocked.append((ws.slug, counter))
        if not blocked:
            return
        workspaces = ", ".join(f"`{w}`" for w, _ in blocked[:5])
        counter = blocked[0][1]
        element = f"prices/{p.slug}/{model}/input"
        where = element if self.span(element) else f"providers/{p.slug}"
        self.emit(
            "E0501",
            f"`@{p.slug}/{model}` has no {' or '.join(missing)} price, but the usd budget of "
            f"{counter.id} must charge it (used by {workspaces})",
            where,
            help="give the model a `pricing:` (a Model document or an override), or `free: true`",
            notes=self.note(f"counters/{counter.id}/budgets/{_usd_key(counter)}", "the usd budget"),
        )

    # -- E0502: configs reaching what their workspaces may not use ----------------------
    def config_targets(self, leaves: list[Leaf]) -> None:
        b = self.bundle
        for leaf in leaves:
            provider = leaf.node.get("provider")
            if provider is None or provider not in b.providers:
                continue
            cfg = b.configs[leaf.config]
            model = leaf.node.get("model")
            members = (
                sorted(b.workspaces)
                if cfg.workspaces is None
                else sorted(cfg.workspaces.intersection(b.workspaces))
            )
            for ws in members:
                why = self.unreachable(ws, provider, model)
                if why is not None:
                    self.leaf_error(leaf, ws, provider, model, why)

    def unreachable(self, ws: str, provider: str, model: str | None) -> tuple[str, str] | None:
        b = self.bundle
        p = b.providers[provider]
        refusal = b.provisioning(b.workspaces[ws], p)
        if refusal is None and model is not None:
            try:
                decision = b.decide(ws, provider, model)
            except RequestError:
                return None  # an unknown model is reported by the reference check
            refusal = decision.refusal
        if refusal is None:
            return None
        return f"{refusal.level} {refusal.rule}", refusal.element

    def leaf_error(
        self, leaf: Leaf, ws: str, provider: str, model: str | None, why: tuple[str, str]
    ) -> None:
        rule, element = why
        target = f"@{provider}/{model}" if model else f"@{provider}"
        path = leaf.path
        has_model = "override_params" in _raw(self.ctx, leaf)
        where = (*path, "override_params", "model") if has_model and model else (*path, "provider")
        span = self.ctx.span(self.ctx.configs[leaf.config], where)
        self.ctx.sink.emit(
            "E0502",
            f"config `{leaf.config}` sends workspace `{ws}` to `{target}`, which it may not use: "
            f"{rule}",
            span,
            help=f"remove `{ws}` from the config's workspaces, or grant it `{target}`",
            notes=self.note(element, "the rule that blocks it"),
        )

    def default_configs(self) -> None:
        b = self.bundle
        for ws in b.workspaces.values():
            cfg = b.configs.get(ws.default_config or "")
            if cfg is not None and cfg.workspaces is not None and ws.slug not in cfg.workspaces:
                span = self.ctx.span(self.ctx.workspaces[ws.slug], ("default_config",))
                self.ctx.sink.emit(
                    "E0502",
                    f"workspace `{ws.slug}` defaults to config `{cfg.slug}`, "
                    "which is not offered to it",
                    span,
                    help=f"add `{ws.slug}` to the workspaces of config `{cfg.slug}`",
                    notes=self.note(f"configs/{cfg.slug}", "the config"),
                )


def _pair(p: Provider, model: str) -> tuple[str, str]:
    return model, qualified(p.slug, model)


def _names(p: Provider, models: Iterable[str]) -> Iterable[str]:
    for m in models:
        yield m
        yield qualified(p.slug, m)


def _raw(ctx: Context, leaf: Leaf) -> dict[str, Any]:
    node: Any = ctx.configs[leaf.config].doc.data
    for step in leaf.path:
        if isinstance(node, dict):
            node = node.get(step, {})
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            node = {}
    return node if isinstance(node, dict) else {}


def _contains(outer: str, inner: str) -> bool:
    """Does every `inner` period lie inside one `outer` period (both calendar-aligned)?"""
    if outer == inner or outer == "none":
        return True
    outer_days = _days(outer)
    inner_days = _days(inner)
    if inner == "daily":
        return outer in ("weekly", "monthly") or outer_days is not None
    return outer_days is not None and inner_days is not None and outer_days % inner_days == 0


def _days(period: str) -> int | None:
    match = PERIOD_RE.match(period)
    return int(match.group(1)) if match else None


Reason = tuple[str, str, str]  # (ancestor counter, its limit in words, its element tail)


def _tighter_budget(child: BudgetLimit, chain: list[Counter]) -> Reason | None:
    for counter in chain:
        for b in counter.budgets:
            if (
                b.unit == child.unit
                and _contains(b.period, child.period)
                and b.limit <= child.limit
            ):
                return counter.id, f"{b.limit} {b.unit} per {b.period}", f"budgets/{b.key}"
    return None


def _rate(r: RateLimit) -> Fraction:
    return Fraction(r.limit, SECONDS[r.per])


def _tighter_rate(child: RateLimit, chain: list[Counter]) -> Reason | None:
    for counter in chain:
        for r in counter.rate_limits:
            if r.unit == child.unit and _rate(r) <= _rate(child) and r.burst <= child.burst:
                what = f"{r.limit} {r.unit} per {r.per} (burst {r.burst})"
                return counter.id, what, f"rate_limits/{r.key}"
    return None


def _tighter_concurrency(child: int, chain: list[Counter]) -> Reason | None:
    for counter in chain:
        if counter.concurrency is not None and counter.concurrency <= child:
            return counter.id, f"{counter.concurrency} requests in flight", "concurrency"
    return None


def _usd_counter(chain: list[Counter]) -> Counter | None:
    return next((c for c in chain if any(b.unit == "usd" for b in c.budgets)), None)


def _usd_key(counter: Counter) -> str:
    return next(b.key for b in counter.budgets if b.unit == "usd")
