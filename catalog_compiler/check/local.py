"""Checks that need one document only (plus static tables), and the facts the link stage needs.

Everything here depends on a single document, the service table and the built-in registry,
so its result is cached with the file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from decimal import Decimal
from typing import Any, cast

from catalog_compiler.check.facts import Facts, Ref, TargetRef, split_model_string
from catalog_compiler.check.link import check_base_model
from catalog_compiler.check.schema import Checked
from catalog_compiler.diagnostics import Note, Sink, Span
from catalog_compiler.load.positions import key_pos, value_pos
from catalog_compiler.load.yamlparse import Document
from catalog_compiler.model.aliases import ConfigTarget
from catalog_compiler.model.common import PRICE_FIELDS, Limits, Pricing
from catalog_compiler.model.documents import (
    KINDS,
    Config,
    CustomModel,
    Integration,
    Model,
    Organization,
    Workspace,
)
from catalog_compiler.model.routing import Target
from catalog_compiler.model.types import PERIOD_RE, SLUG_RE
from catalog_compiler.registry import Registry
from catalog_compiler.services import ALIASES, SERVICES, WholeSetting
from runtime.bundle.suggest import did_you_mean

Path = tuple[str | int, ...]
URL_ONLY_SETTINGS = frozenset({"resource_name"})
TINY_PRICE = Decimal("0.001")  # USD per 1M tokens; the cheapest real prices are ~0.01
# kind -> (field, kind it names, "@" when written as a provider reference)
REF_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "Integration": (("workspaces", "Workspace", ""),),
    "Provider": (("integration", "Integration", ""), ("workspaces", "Workspace", "")),
    "Workspace": (("providers", "Provider", "@"), ("default_config", "Config", "")),
    "Model": (("integration", "Integration", ""), ("provider", "Provider", "@")),
    "Config": (("workspaces", "Workspace", ""),),
}


class LocalChecker:
    def __init__(self, doc: Document, registry: Registry, sink: Sink) -> None:
        self.doc = doc
        self.registry = registry
        self.sink = sink

    def at(self, path: Sequence[str | int], key: bool = False) -> Span:
        pos = key_pos(self.doc.pos, path) if key else value_pos(self.doc.pos, path)
        return Span.at(self.doc.file, pos)

    def emit(self, code: str, message: str, path: Path, *, key: bool = False, **kw: Any) -> None:
        self.sink.emit(code, message, self.at(path, key), **kw)

    # -- facts ------------------------------------------------------------------------
    def refs(self) -> Iterator[Ref]:
        """Top-level references, from the raw data so invalid documents are linked too (for
        a document of unknown kind, those of every kind it could be: the link stage does
        not check them, but knows what a broken document would have used)."""
        data = self.doc.data if isinstance(self.doc.data, dict) else {}
        kind = data.get("kind")
        kinds = [kind] if isinstance(kind, str) and kind in KINDS else could_be(data)
        fields = dict.fromkeys(f for k in kinds for f in REF_FIELDS.get(k, ()))
        for field_name, target, prefix in fields:
            value = data.get(field_name)
            items = enumerate(value) if isinstance(value, list) else [(None, value)]
            for i, item in items:
                if not isinstance(item, str) or item == "*":
                    continue
                name = item.removeprefix("@") if prefix else item
                if SLUG_RE.match(name):  # an invalid slug is already reported
                    path: Path = (field_name,) if i is None else (field_name, i)
                    yield Ref(target, name, self.at(path), prefix)

    def facts(self, checked: Checked | None) -> Facts:
        data = self.doc.data if isinstance(self.doc.data, dict) else {}
        kind = data.get("kind") if isinstance(data.get("kind"), str) else None
        facts = Facts(self.doc.file, kind, valid=checked is not None, refs=tuple(self.refs()))
        if kind not in KINDS:
            facts.could_be = could_be(self.doc.data)
        slug = data.get("slug")
        if isinstance(slug, str):
            facts.slug, facts.span = slug, self.at(("slug",))
        elif facts.kinds:
            facts.span = self.at(("kind",) if "kind" in data else ())
        if kind == "Organization":
            facts.span = self.at(("kind",))
        if checked is None:
            if "Model" in facts.kinds:
                self.raw_model(data, facts)
            return facts
        model = checked.model
        if isinstance(model, Organization):
            facts.has_epoch = model.epoch is not None
        elif isinstance(model, Integration):
            facts.service = model.service if model.service in SERVICES else None
            facts.custom_models = tuple(c.name for c in model.models.custom) if model.models else ()
        elif isinstance(model, Model):
            home = ("Integration", model.integration) if model.integration else None
            facts.model_home = home or ("Provider", cast(str, model.provider))
            facts.model_name, facts.span = model.name, self.at(("name",))
            if model.base_model:
                facts.base_model = (model.base_model, self.at(("base_model",)))
        elif isinstance(model, Config):
            refs: list[Ref] = []
            targets: list[TargetRef] = []
            self.targets(model.config, None, ("config",), refs, targets)
            facts.refs += tuple(refs)
            facts.targets = tuple(targets)
        if isinstance(model, Organization | Workspace) and model.aliases:
            self.alias_facts(model.aliases, facts)
        if isinstance(model, Limits):
            facts.day_periods = tuple(self.day_periods(model))
        return facts

    def alias_facts(self, aliases: dict[str, str | ConfigTarget], facts: Facts) -> None:
        """An alias's target is checked like a config's: provider, model, config exist."""
        refs: list[Ref] = []
        targets: list[TargetRef] = []
        for name, target in aliases.items():
            if isinstance(target, ConfigTarget):
                refs.append(Ref("Config", target.config, self.at(("aliases", name, "config"))))
                continue
            provider, _ = split_model_string(target)
            span = self.at(("aliases", name))
            refs.append(Ref("Provider", provider or "", span, "@"))
            targets.append(TargetRef("model", target, provider, span))
        facts.refs += tuple(refs)
        facts.targets += tuple(targets)

    @staticmethod
    def raw_model(data: dict[str, Any], facts: Facts) -> None:
        """An invalid Model's name and home, where readable: the name is still declared."""
        name, integ, prov = data.get("name"), data.get("integration"), data.get("provider")
        if isinstance(name, str):
            facts.model_name = name
        if isinstance(integ, str) and not isinstance(prov, str):
            facts.model_home = ("Integration", integ)
        elif isinstance(prov, str) and not isinstance(integ, str):
            facts.model_home = ("Provider", prov.removeprefix("@"))

    def targets(
        self,
        t: Target,
        inherited: str | None,
        path: Path,
        refs: list[Ref],
        out: list[TargetRef],
    ) -> None:
        provider = inherited
        if t.provider is not None:
            where = (*path, "provider")
            if t.provider.startswith("@"):
                # `@slug/model` (Portkey's conditional-routing docs) names the model too
                named, _ = split_model_string(t.provider)
                provider = named if named is not None else t.provider[1:]
                refs.append(Ref("Provider", provider, self.at(where), "@"))
                if named is not None:
                    out.append(TargetRef("model", t.provider, named, self.at(where)))
            elif t.provider in SERVICES or t.provider in ALIASES:
                provider = None  # a raw service with referenced credentials: not governed
            else:
                provider = None
                out.append(TargetRef("bare-provider", t.provider, None, self.at(where)))
        elif t.virtual_key is not None:
            provider = t.virtual_key.removeprefix("@")
            refs.append(Ref("Provider", provider, self.at((*path, "virtual_key")), "@"))
        model = (t.override_params or {}).get("model")
        if isinstance(model, str):
            where = (*path, "override_params", "model")
            named, _ = split_model_string(model)
            if named is not None:
                refs.append(Ref("Provider", named, self.at(where), "@"))
            out.append(TargetRef("model", model, named or provider, self.at(where)))
        for i, child in enumerate(t.targets or ()):
            self.targets(child, provider, (*path, "targets", i), refs, out)

    def day_periods(self, model: Limits) -> Iterator[Span]:
        for block, limits in self.limit_blocks(model):
            for i, budget in enumerate(limits.budgets):
                if PERIOD_RE.match(budget.period):
                    yield self.at((*block, "budgets", i, "period"))

    @staticmethod
    def limit_blocks(model: Limits) -> Iterator[tuple[Path, Limits]]:
        yield (), model
        for name in ("provider_defaults", "workspace_defaults"):
            nested = getattr(model, name, None)
            if isinstance(nested, Limits):
                yield (name,), nested

    # -- checks -----------------------------------------------------------------------
    def check(self, checked: Checked) -> None:
        model = checked.model
        if isinstance(model, Limits):
            for block, limits in self.limit_blocks(model):
                self.duplicate_limits(limits, block)
        if isinstance(model, Integration):
            self.integration(model)
        if isinstance(model, Config):
            self.client_params(model.config, ("config",))
        for path, pricing in self.prices(model):
            self.tiny_prices(pricing, path)

    def client_params(self, t: Target, path: Path) -> None:
        """E0515: `stream` set by a config. The client's request decides whether its answer
        streams (how the gateway reads, relays and settles it); a config's value could only
        make the upstream answer in a form the client did not ask for."""
        for field in ("override_params", "default_params"):
            if "stream" in (getattr(t, field) or {}):
                self.emit(
                    "E0515",
                    f"`{field}` sets `stream`, which is the client's to choose",
                    (*path, field, "stream"),
                    key=True,
                    help="remove it: a request streams when it asks to (`stream: true`)",
                )
        for i, child in enumerate(t.targets or ()):
            self.client_params(child, (*path, "targets", i))

    @staticmethod
    def prices(model: Any) -> Iterator[tuple[Path, Pricing]]:
        """Every price block of a document: overrides, a Model's own, inline custom models."""
        if isinstance(model, CustomModel) and model.pricing is not None:
            yield ("pricing",), model.pricing
        for i, override in enumerate(getattr(model, "pricing", None) or ()):
            if isinstance(override, Pricing):
                yield ("pricing", i), override
        if isinstance(model, Integration) and model.models:
            for i, custom in enumerate(model.models.custom):
                if custom.pricing is not None:
                    yield ("models", "custom", i, "pricing"), custom.pricing

    def tiny_prices(self, pricing: Pricing, path: Path) -> None:
        """Warn on prices below 0.001 USD per 1M tokens: those were typed per token (unless
        the block says `unusual_price: true`)."""
        if pricing.unusual_price:
            return
        per_token = [f for f in PRICE_FIELDS if f != "per_request"]
        for inner, table in [((), pricing), *pricing.variant_tables()]:  # tiers, batch, …
            for name in per_token:
                price = getattr(table, name)
                if price is not None and Decimal(0) < price < TINY_PRICE:
                    per_m = (price * 1_000_000).normalize()
                    self.emit(
                        "W0400",
                        f"price {price:f} USD per 1M tokens is implausibly small",
                        (*path, *inner, name),
                        help=f"prices are per 1M tokens: if {price:f} is per token, "
                        f"write {per_m:f}",
                    )

    def duplicate_limits(self, limits: Limits, path: Path) -> None:
        seen: dict[tuple[str, str], int] = {}
        for i, b in enumerate(limits.budgets):
            first = seen.setdefault((b.unit, b.period), i)
            if first != i:
                self.emit(
                    "E0212",
                    f"two `{b.unit}` budgets for period `{b.period}` at one level",
                    (*path, "budgets", i),
                    help="keep one: a level has one pool per unit and period",
                    notes=[Note(self.at((*path, "budgets", first)), "first one here")],
                )
        rseen: dict[tuple[str, str], int] = {}
        for i, r in enumerate(limits.rate_limits):
            first = rseen.setdefault((r.unit, r.per), i)
            if first != i:
                self.emit(
                    "E0212",
                    f"two `{r.unit}` rate limits per `{r.per}` at one level",
                    (*path, "rate_limits", i),
                    help="keep one: a level has one bucket per unit and interval",
                    notes=[Note(self.at((*path, "rate_limits", first)), "first one here")],
                )

    def integration(self, integ: Integration) -> None:
        service = SERVICES.get(integ.service)
        if service is None:
            guess = ALIASES.get(integ.service) or did_you_mean(integ.service, SERVICES)
            self.emit(
                "E0306",
                f"unknown service `{integ.service}` in integration `{integ.slug}`",
                ("service",),
                help=f"did you mean `{guess}`?"
                if guess
                else f"supported services: {', '.join(sorted(SERVICES))}",
            )
            return
        self.fields("credential", integ.credentials, service.credentials,
                    service.optional_credentials, "credentials", integ, ())  # fmt: skip
        self.fields("setting", integ.settings, service.settings, service.optional_settings,
                    "settings", integ, URL_ONLY_SETTINGS if integ.base_url else ())  # fmt: skip
        for rule in service.whole_settings:
            if rule.name in integ.settings:
                self.whole_setting(rule, integ.settings[rule.name])
        if service.base_url is None and integ.base_url is None:
            self.emit(
                "E0203",
                f"service `{service.id}` is self-hosted: the integration needs `base_url`",
                ("service",),
                help="add `base_url: https://…/v1`",
            )
        seen: dict[str, int] = {}
        for i, custom in enumerate(integ.models.custom if integ.models else ()):
            first = seen.setdefault(custom.name, i)
            if first != i:
                self.emit(
                    "E0300",
                    f"custom model `{custom.name}` is declared twice on `{integ.slug}`",
                    ("models", "custom", i, "name"),
                    notes=[
                        Note(self.at(("models", "custom", first, "name")), "first declared here")
                    ],
                )
            if custom.base_model:
                where = self.at(("models", "custom", i, "base_model"))
                check_base_model(self.registry, service.id, custom.base_model, where, self.sink)

    def whole_setting(self, rule: WholeSetting, text: str) -> None:
        """A setting that is a number written as text: digits only, within its range."""
        shown = text if len(text) <= 20 else text[:20] + "…"
        digits = text.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()):
            self.emit(
                "E0205",
                f"`settings.{rule.name}` must be a whole number ({rule.unit}), found `{shown}`",
                ("settings", rule.name),
                help=f'digits only, quoted (settings are text): `{rule.name}: "{rule.example}"`',
            )
        # a length check first: int() of thousands of digits is slow, and refused past 4300
        elif len(digits.lstrip("0")) > 12 or not rule.lo <= int(text) <= rule.hi:
            self.emit(
                "E0206",
                f"`settings.{rule.name}` must be {rule.lo:,} to {rule.hi:,} ({rule.unit}), "
                f"found {shown}",
                ("settings", rule.name),
            )

    def fields(
        self,
        what: str,
        given: dict[str, Any],
        required: tuple[str, ...],
        optional: tuple[str, ...],
        block: str,
        integ: Integration,
        waived: Collection[str],
    ) -> None:
        known = required + optional
        typos: set[str] = set()  # a misspelt required field is one error, not two
        for name in given:
            if name not in known:
                guess = did_you_mean(name, known)
                if guess:
                    typos.add(guess)
                self.emit(
                    "E0307",
                    f"`{name}` is not a {what} of service `{integ.service}`",
                    (block, name),
                    key=True,
                    help=f"did you mean `{guess}`?"
                    if guess
                    else f"{integ.service} takes: {', '.join(known) or f'no {what}s'}",
                )
        anchor: Path = (block,) if block in self.doc.data else ("service",)
        for name in required:
            if name not in given and name not in waived and name not in typos:
                example = f"{{env: {name.upper()}}}" if what == "credential" else "…"
                self.emit(
                    "E0307",
                    f"service `{integ.service}` needs {what} `{name}`",
                    anchor,
                    help=f"add `{name}: {example}` under `{block}`",
                )


def could_be(data: Any) -> tuple[str, ...]:
    """The kinds a document with a missing or unknown `kind` could be: those whose fields
    hold all of its keys; every kind when none does, or when it is a list of documents."""
    if isinstance(data, list):
        return tuple(KINDS)
    if not isinstance(data, dict):
        return ()
    keys = {k for k in data if isinstance(k, str)} - {"kind"}
    fitting = tuple(k for k, cls in KINDS.items() if keys <= cls.model_fields.keys())
    return fitting or tuple(KINDS)
