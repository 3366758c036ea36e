"""Checks on the resolved catalog, asked of the runtime's own index of the bundle: the
compiler and the router share one implementation of access, provisioning and pricing.
Checks that need only the context and the bundle (no `Gaps`) live beside it:
config_checks.py (E0502), modes.py (W0505), aliases.py (E0520, E0521)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

from catalog_compiler.check.gaps import Gaps
from catalog_compiler.diagnostics import Note, Severity, Span
from catalog_compiler.load.positions import own_pos
from catalog_compiler.load.yamlparse import Document
from catalog_compiler.resolve.aliases import AliasChecks
from catalog_compiler.resolve.chains import (
    missing_prices,
    tighter_budget,
    tighter_concurrency,
    tighter_rate,
    usd_counter,
    usd_key,
)
from catalog_compiler.resolve.config_checks import config_targets, default_configs
from catalog_compiler.resolve.context import Context
from catalog_compiler.resolve.modes import mixed_modes
from catalog_compiler.resolve.routing import Leaf
from runtime.bundle.access import Refusal, Rules, qualified
from runtime.bundle.load import (
    Bundle,
    Counter,
    Provider,
    Workspace,
    counter_label,
)
from runtime.bundle.suggest import did_you_mean

DEAD_ALLOW = "a typo or dead config: remove it, or allow the model at the level above"


class Semantics:
    def __init__(self, ctx: Context, bundle: Bundle, gaps: Gaps | None = None) -> None:
        self.ctx = ctx
        self.bundle = bundle
        self.gaps = gaps if gaps is not None else Gaps()

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
        config_targets(self.ctx, self.bundle, leaves)
        mixed_modes(self.ctx, self.bundle, leaves)
        default_configs(self.ctx, self.bundle)
        self.provisioned_providers()
        self.reachless_workspaces()
        AliasChecks(self.ctx, self.bundle).run()

    # -- what broken documents leave unknown (see check/gaps.py) -------------------------
    def homes(self, p: Provider) -> list[tuple[str, str]]:
        return [("Integration", p.integration.slug), ("Provider", p.slug)]

    def extras(self, p: Provider) -> set[str]:
        """Models broken Model documents declare for `p`: they may pass, as far as we know."""
        return self.gaps.extra_models(self.homes(p)) if self.gaps.any else set()

    def models_known(self, p: Provider) -> bool:
        return not self.gaps.any or not self.gaps.models_unknown(self.homes(p))

    def uncertain(self, refusal: Refusal | None) -> bool:
        """Is the rule that refuses uncertain: a selection naming something undefined or
        broken, or an allow list with a dead entry (which may have meant the model)?"""
        return refusal is not None and refusal.element in self.ctx.incomplete

    def takes_unknown_providers(self, ws: Workspace) -> bool:
        """May the workspace take a provider that is not resolved (broken, or unseen)?"""
        if ws.providers is None:
            return self.gaps.providers_unknown(None)
        return f"workspaces/{ws.slug}/providers" in self.ctx.incomplete

    def workspace_known(self, ws: Workspace) -> bool:
        """Are all providers the workspace may take, and all their models, known?"""
        if not self.gaps.any and not self.ctx.incomplete:
            return True
        b = self.bundle
        if self.takes_unknown_providers(ws):
            return False
        if f"workspaces/{ws.slug}/access/allow" in self.ctx.incomplete:
            return False
        if any(self.uncertain(b.provisioning(ws, p)) for p in self.uncertain_provisioning):
            return False
        return all(self.models_known(p) for p in b.usable_providers(ws.slug))

    @cached_property
    def uncertain_provisioning(self) -> list[Provider]:
        """Providers whose (or whose integration's) `workspaces:` names an unknown one."""
        incomplete = self.ctx.incomplete
        return [p for p in self.bundle.providers.values()
                if f"integrations/{p.integration.slug}/workspaces" in incomplete
                or f"providers/{p.slug}/workspaces" in incomplete]  # fmt: skip

    # -- E0500: allow entries that match nothing ---------------------------------------
    def allow_lists(self) -> None:
        """Each level's allow entries against what its parent lets through (computed only for
        the levels that have an allow list). A dead entry that names a real model gets the
        rule above that refuses it, rather than a "did you mean"."""
        b = self.bundle
        if b.org_rules.allow is not None and self.org_universe_known():
            everything = {n for p in b.providers.values() for n in _names(p, p.exposed)}
            everything.update(n for p in b.providers.values() for n in _names(p, self.extras(p)))
            self.allow_matches(b.org_rules, everything, {})
        for integ in b.integrations.values():
            mine = [p for p in b.providers.values() if p.integration is integ]
            if integ.rules.allow is None or not self.integration_universe_known(integ.slug, mine):
                continue
            pairs = [(m,) for m in integ.exposed] + [_pair(p, m) for p in mine for m in p.exposed]
            passing, refused = self.split(pairs, [b.org_rules])
            passing.update(n for p in mine for n in _names(p, self.extras(p)))
            self.allow_matches(integ.rules, passing, refused)
        for p in b.providers.values():
            if p.rules.allow is not None and self.models_known(p):
                pairs = [_pair(p, m) for m in p.exposed]
                rules = [b.org_rules, p.integration.rules]
                passing, refused = self.split(pairs, rules)
                passing.update(_names(p, self.extras(p)))
                self.allow_matches(p.rules, passing, refused)
        for ws in b.workspaces.values():
            if ws.rules.allow is None or not self.workspace_known(ws):
                continue
            passing = set()
            refused = {}
            for p in b.providers.values():
                blocked = b.provisioning(ws, p)
                for m in p.exposed:
                    why = blocked or (None if m in p.models else b.model_refusal(p, m, None))
                    for name in _pair(p, m):
                        if why is None or self.uncertain(why):
                            passing.add(name)
                        else:
                            refused.setdefault(name, why)
                if blocked is None or self.uncertain(blocked):
                    passing.update(_names(p, self.extras(p)))
            self.allow_matches(ws.rules, passing, refused)

    def org_universe_known(self) -> bool:
        b = self.bundle
        if self.gaps.providers_unknown(None):
            return False
        return all(self.models_known(p) for p in b.providers.values())

    def integration_universe_known(self, slug: str, mine: list[Provider]) -> bool:
        if self.gaps.providers_unknown(slug):
            return False
        return all(self.models_known(p) for p in mine)

    def split(
        self, pairs: Sequence[tuple[str, ...]], rules: list[Rules]
    ) -> tuple[set[str], dict[str, Refusal]]:
        """Names that pass every rule (or may: refused by an uncertain rule), and the
        refusal of each name that does not."""
        passing: set[str] = set()
        refused: dict[str, Refusal] = {}
        for pair in pairs:
            why = next((r for r in (rule.refuse(pair) for rule in rules) if r), None)
            for name in pair:
                if why is None or self.uncertain(why):
                    passing.add(name)
                else:
                    refused.setdefault(name, why)
        return passing, refused

    def allow_matches(self, rules: Rules, names: set[str], refused: dict[str, Refusal]) -> None:
        for pattern in rules.allow or ():
            if any(pattern.matches(n) for n in names):
                continue
            # The entry may have meant a model the list now refuses: its refusals are uncertain.
            self.ctx.incomplete.add(f"{rules.key}/allow")
            blocked = next((refused[n] for n in sorted(refused) if pattern.matches(n)), None)
            element = f"{rules.key}/allow/{pattern.text}"
            message = f"allow entry `{pattern.text}` matches no model that {rules.level} can use"
            if blocked is not None:
                self.emit(
                    "E0500",
                    message,
                    element,
                    help=f"it is refused above: {blocked.level} {blocked.rule}",
                    notes=self.note(blocked.element, "the rule that refuses it"),
                )
                continue
            guess = did_you_mean(pattern.text, names)
            self.emit("E0500", message, element,
                      help=f"did you mean `{guess}`?" if guess else DEAD_ALLOW)  # fmt: skip

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
            if not self.workspace_known(ws):
                continue  # a chain through a broken document is unknown: it may not bind
            chains = [
                [b.counters[c] for c in p.chain]
                for p in b.usable_providers(ws.slug)
                if any(ws.rules.refuse(_pair(p, m)) is None for m in p.models)
            ]
            if chains:
                self.dominated(b.counters[ws.counter], chains)

    def dominated(self, child: Counter, chains: list[list[Counter]]) -> None:
        """Warn for each declared limit of `child` that some ancestor beats on every chain."""
        checks: list[tuple[str, Any]] = []
        for b in child.budgets:
            checks.append((f"budgets/{b.key}", lambda chain, b=b: tighter_budget(b, chain)))
        for r in child.rate_limits:
            checks.append((f"rate_limits/{r.key}", lambda chain, r=r: tighter_rate(r, chain)))
        if child.concurrency is not None:
            limit = child.concurrency
            checks.append(("concurrency", lambda chain: tighter_concurrency(limit, chain)))
        for tail, tighter_on in checks:
            element = f"counters/{child.id}/{tail}"
            if element in self.ctx.defaulted:
                continue  # from *_defaults: reported nowhere, it is the parent's choice
            found = [tighter_on(chain) for chain in chains]
            if all(found):
                self.never_binds(element, found[0])

    def never_binds(self, element: str, reason: tuple[str, str, str]) -> None:
        ancestor, what, tail = reason
        label = counter_label(ancestor)
        self.emit(
            "W0500",
            f"this limit can never bind: {label} already allows at most {what}",
            element,
            help="remove it, or raise the ancestor's limit if this one is meant to apply",
            notes=self.note(f"counters/{ancestor}/{tail}", f"the tighter limit of {label}"),
        )

    # -- E0501: usd budgets over models without prices ---------------------------------
    def unpriced(self) -> None:
        b = self.bundle
        for p in b.providers.values():
            for name, info in sorted(p.models.items()):
                if missing_prices(info.mode, info.prices):
                    if name in self.extras(p) or not self.models_known(p):
                        continue  # a broken Model document may price it
                    self.unpriced_model(p, name, info.mode)

    def unpriced_model(self, p: Provider, model: str, mode: str) -> None:
        """Report once per model the workspaces whose usd budget would have to charge it."""
        b = self.bundle
        blocked = []
        missing: set[str] = set()
        for ws in sorted(b.workspaces.values(), key=lambda w: w.slug):
            if b.provisioning(ws, p) is not None or ws.rules.refuse(_pair(p, model)):
                continue  # only reached for unpriced models, which are rare
            gaps = missing_prices(mode, b.price(ws.slug, p.slug, model).prices)
            counter = usd_counter([b.counters[c] for c in (*p.chain, ws.counter)])
            if gaps and counter is not None:
                blocked.append((ws.slug, counter))
                missing.update(gaps)
        if not blocked:
            return
        workspaces = ", ".join(f"`{w}`" for w, _ in blocked[:5])
        counter = blocked[0][1]
        absent = " or ".join(f for f in ("input", "output") if f in missing)
        where = f"models/{p.slug}/{model}"
        self.emit(
            "E0501",
            f"`@{p.slug}/{model}` has no {absent} price, but the usd budget of "
            f"{counter_label(counter.id)} must charge it (used by {workspaces})",
            where if self.span(where) else f"providers/{p.slug}",
            help="give the model a `pricing:` (a Model document or an override), or `free: true`",
            notes=self.note(f"counters/{counter.id}/budgets/{usd_key(counter)}", "the usd budget"),
        )

    # -- E0511: a workspace listing a provider not provisioned to it --------------------
    def provisioned_providers(self) -> None:
        b = self.bundle
        for slug, ws in sorted(b.workspaces.items()):
            located = self.ctx.workspaces[slug]
            listed = located.doc.data.get("providers")
            if ws.providers is None or not isinstance(listed, list):
                continue
            for i, item in enumerate(listed):
                p = b.providers.get(item.removeprefix("@") if isinstance(item, str) else "")
                refusal = b.provisioning(ws, p) if p is not None else None
                if p is None or refusal is None or self.uncertain(refusal):
                    continue
                owner = refusal.element.rsplit("/", 1)[0]  # integrations/x or providers/x
                self.ctx.sink.emit(
                    "E0511",
                    f"workspace `{slug}` lists `@{p.slug}`, but {refusal.level} {refusal.rule}",
                    self.ctx.span(located, ("providers", i)),
                    help=f"add `{slug}` to the `workspaces:` of {refusal.level}, or remove "
                    f"`@{p.slug}` from this list",
                    notes=self.note(refusal.element, "its `workspaces:` list")
                    or self.note(owner, "defined here"),
                )

    # -- W0502: a workspace that can reach no model --------------------------------------
    def reachless_workspaces(self) -> None:
        b = self.bundle
        for slug, ws in sorted(b.workspaces.items()):
            if next(b.routes(slug), None) is not None or self.may_reach(ws):
                continue
            if self.has_errors(slug):
                continue  # its own error likely explains it
            usable = b.usable_providers(slug)
            self.emit(
                "W0502",
                f"workspace `{slug}` can reach no model: {self.why_reachless(ws, usable)}",
                f"workspaces/{slug}",
                help="give it a provider (its `providers:`, or the `workspaces:` of a provider "
                "and its integration) and allow it a model, or remove the workspace",
            )

    def may_reach(self, ws: Workspace) -> bool:
        """Could the workspace reach a model we cannot see: through a provider or a model
        only a broken document defines, or past a rule that is uncertain?"""
        b = self.bundle
        if self.takes_unknown_providers(ws):
            return True
        for p in b.providers.values():
            blocked = b.provisioning(ws, p)
            if blocked is not None:
                if self.uncertain(blocked):
                    return True
                continue
            if self.extras(p) or not self.models_known(p):
                return True
            if any(self.uncertain(b.model_refusal(p, m, ws)) for m in p.exposed):
                return True
        return False

    def why_reachless(self, ws: Workspace, usable: list[Provider]) -> str:
        b = self.bundle
        if not b.providers:
            return "the catalog has no provider"
        if ws.providers is not None and not ws.providers:
            return "its `providers:` list is empty"
        if not usable:
            if ws.providers is not None:
                return "the providers it lists are not provisioned to it"
            return "no provider is provisioned to it"
        for p in usable:
            for m in sorted(p.exposed):
                refusal = b.model_refusal(p, m, ws)
                if refusal is not None:
                    return (f"every model of its providers is refused (e.g. `@{p.slug}/{m}`: "
                            f"{refusal.level} {refusal.rule})")  # fmt: skip
        return "its providers offer no model"

    def has_errors(self, workspace: str) -> bool:
        """Does the workspace's document already have an error (which likely explains it)?"""
        located = self.ctx.workspaces[workspace]
        start, end = _lines(located.doc)
        return any(
            d.severity is Severity.ERROR and d.span.file == located.doc.file
            and start <= d.span.line <= end
            for d in self.ctx.sink
        )  # fmt: skip


def _lines(doc: Document) -> tuple[int, int]:
    """The first and last line of a document."""
    pos = own_pos(doc.pos)
    return pos[0], pos[2]


def _pair(p: Provider, model: str) -> tuple[str, str]:
    return model, qualified(p.slug, model)


def _names(p: Provider, models: Iterable[str]) -> Iterable[str]:
    for m in models:
        yield m
        yield qualified(p.slug, m)
