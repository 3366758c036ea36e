"""E0512: prices more than 100x away from the registry's price for the same model.

Prices are USD per 1M tokens; one typed per token is 10^6 too small, one typed per 1K tokens
10^3 too small, and a per-1K price typed as per-1M is 10^3 too large. Every price block that
names models the registry knows is compared with the registry: overrides at an integration,
a provider or a workspace, a Model document or an inline custom model (against its
`base_model`, or the built-in model it overrides). A block that means it says
`unusual_price: true`; a price of 0 is free on purpose and never compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from catalog_compiler.check.gaps import Gaps
from catalog_compiler.model.common import PriceOverride, Pricing
from catalog_compiler.model.documents import CustomModel, Integration, Model, Provider
from catalog_compiler.resolve.context import Context, Located, Path
from runtime.bundle.access import pattern, qualified
from runtime.bundle.suggest import did_you_mean

FACTOR = 100  # "more than 100x away"


@dataclass(frozen=True, slots=True)
class Known:
    """A model a price block may apply to, and the registry's prices for it."""

    names: tuple[str, ...]  # bare, and `@provider/model` when on a provider
    model: str
    prices: dict[str, Decimal]


class PriceCheck:
    def __init__(self, ctx: Context, gaps: Gaps | None = None) -> None:
        self.ctx = ctx
        self.gaps = gaps if gaps is not None else Gaps()
        self._known: dict[str, list[Known]] = {}  # provider slug -> its models

    def run(self) -> None:
        ctx = self.ctx
        for slug, located in sorted(ctx.integrations.items()):
            integ = cast(Integration, located.model)
            for i, custom in enumerate(integ.models.custom if integ.models else ()):
                self.own_price(located, ("models", "custom", i, "pricing"), custom, integ.service)
            if integ.pricing:
                mine = sorted(p for p, loc in ctx.providers.items()
                              if loc.model.integration == slug)  # fmt: skip
                universe = self.on_integration(slug, mine)
                certain = not self.gaps.providers_unknown(slug) and self.known_models(
                    [("Integration", slug)] + [("Provider", p) for p in mine]
                )
                self.overrides(located, integ.pricing, universe, certain)
        for located in ctx.models:
            model = cast(Model, located.model)
            service = self.service_of(model)
            if service is not None:
                self.own_price(located, ("pricing",), model, service)
        for slug, located in sorted(ctx.providers.items()):
            prov = cast(Provider, located.model)
            if prov.pricing:
                homes = [("Integration", prov.integration), ("Provider", slug)]
                self.overrides(located, prov.pricing, self.known(slug), self.known_models(homes))
        everything: list[Known] | None = None
        for _, located in sorted(ctx.workspaces.items()):
            if located.model.pricing:
                if everything is None:
                    everything = [k for p in sorted(ctx.providers) for k in self.known(p)]
                    homes = [h for p in ctx.providers for h in self.homes(p)]
                    certain = not self.gaps.providers_unknown(None) and self.known_models(homes)
                self.overrides(located, located.model.pricing, everything, certain)

    # -- the models a block may apply to ---------------------------------------------------
    def homes(self, provider: str) -> list[tuple[str, str]]:
        return [("Integration", self.ctx.provider(provider).integration), ("Provider", provider)]

    def known_models(self, homes: list[tuple[str, str]]) -> bool:
        """Are all models of these homes known (no broken Model document may add one)?"""
        gaps = self.gaps
        return not gaps.any or not (gaps.models_unknown(homes) or gaps.extra_models(homes))

    def service_of(self, model: Model) -> str | None:
        if model.integration is not None:
            home = self.ctx.integrations.get(model.integration)
        else:
            prov = self.ctx.providers.get(model.provider or "")
            home = self.ctx.integrations.get(prov.model.integration) if prov else None
        return cast(Integration, home.model).service if home else None

    def reference(self, service: str, name: str, base: str | None) -> dict[str, Decimal]:
        known = self.ctx.registry.lookup(service, base or name)
        return dict(known.prices) if known is not None else {}

    def known(self, provider: str) -> list[Known]:
        """Every model of the provider, with the registry's prices when it knows them (a
        custom model through its base)."""
        found = self._known.get(provider)
        if found is None:
            prov = self.ctx.provider(provider)
            integ = self.ctx.integration(prov.integration)
            bases = self.customs(prov.integration, provider)
            names = set(self.ctx.registry.models(integ.service)) | set(bases)
            found = [Known((n, qualified(provider, n)), n,
                           self.reference(integ.service, n, bases.get(n)))
                     for n in sorted(names)]  # fmt: skip
            self._known[provider] = found
        return found

    def customs(self, integration: str, provider: str | None) -> dict[str, str | None]:
        """Custom models -> the built-in model each extends (None: wholly custom)."""
        integ = self.ctx.integration(integration)
        out = {c.name: c.base_model for c in (integ.models.custom if integ.models else ())}
        homes = [("integration", integration)] + ([("provider", provider)] if provider else [])
        for home, slug in homes:
            for name, defs in self.ctx.models_on(home, slug).items():
                out[name] = cast(Model, defs[-1].model).base_model or out.get(name)
        return out

    def on_integration(self, slug: str, providers: list[str]) -> list[Known]:
        integ = self.ctx.integration(slug)
        bases = self.customs(slug, None)
        names = sorted(set(self.ctx.registry.models(integ.service)) | set(bases))
        own = [Known((n,), n, self.reference(integ.service, n, bases.get(n))) for n in names]
        return own + [k for p in providers for k in self.known(p)]

    # -- the checks -----------------------------------------------------------------------
    def own_price(self, located: Located, path: Path, model: CustomModel, service: str) -> None:
        """A Model's or an inline custom model's own prices, against the model it extends
        (`base_model`) or the built-in model of the same name it overrides."""
        if model.pricing is None or model.pricing.unusual_price:
            return
        reference = self.reference(service, model.name, model.base_model)
        known = Known((model.name,), model.base_model or model.name, reference)
        self.compare(located, path, model.pricing, [known] if reference else [])

    def overrides(
        self,
        located: Located,
        overrides: tuple[PriceOverride, ...],
        universe: list[Known],
        certain: bool,
    ) -> None:
        """Each override against the models it applies to; one that applies to none is dead
        (E0513), unless a broken document may declare what it names."""
        for i, override in enumerate(overrides):
            matcher = pattern(override.model)
            matched = [k for k in universe if any(matcher.matches(n) for n in k.names)]
            if not matched and certain:
                self.dead(located, i, override.model, universe)
            elif not (override.free or override.unusual_price):
                self.compare(located, ("pricing", i), override, matched)

    def dead(self, located: Located, i: int, text: str, universe: list[Known]) -> None:
        names = {n for k in universe for n in k.names}
        names.update(f"{n.split('/', 1)[0]}/*" for n in list(names) if n.startswith("@"))
        guess = did_you_mean(text, names)
        self.ctx.sink.emit(
            "E0513",
            f"price override `{text}` applies to no model here: it never takes effect",
            self.ctx.span(located, ("pricing", i, "model")),
            help=f"did you mean `{guess}`?"
            if guess
            else "name a model this level offers "
            "(`model`, `@provider/model` or a glob), or remove the override",
        )

    def compare(self, located: Located, path: Path, pricing: Pricing, matched: list[Known]) -> None:
        """Report each price that is more than 100x away from the registry's price of every
        model it applies to (a glob may span cheap and dear models: one plausible match
        is enough to believe it)."""
        for name, given in pricing.fields().items():
            ratios = list(self.ratios(name, given, matched))
            if ratios and all(r > FACTOR or r < Decimal(1) / FACTOR for r, _ in ratios):
                ratio, known = min(ratios, key=lambda rk: max(rk[0], 1 / rk[0]))
                self.report(located, (*path, name), name, given, ratio, known)

    @staticmethod
    def ratios(name: str, given: Decimal, matched: list[Known]) -> Iterator[tuple[Decimal, Known]]:
        if given == 0:
            return  # free, on purpose
        for known in matched:
            price = known.prices.get(name)
            if price:  # the registry's 0 is free: nothing to compare with
                yield given / price, known

    def report(
        self, located: Located, path: Path, name: str, given: Decimal, ratio: Decimal, known: Known
    ) -> None:
        price = known.prices[name]
        unit = "USD per request" if name == "per_request" else "USD per 1M tokens"
        direction = "above" if ratio > 1 else "below"
        how = _times(ratio if ratio > 1 else 1 / ratio)
        scale = f"prices are {unit} ({_rescaled(given, price)}); " if name != "per_request" else ""
        self.ctx.sink.emit(
            "E0512",
            f"`{name}` price {given:f} {unit} is {how} {direction} the registry's {price:f} "
            f"for `{known.model}`",
            self.ctx.span(located, path),
            help=f"{scale}if {given:f} is right, add `unusual_price: true` to this price block",
        )


SCALES = ((10**3, "1K tokens", "1,000"), (10**6, "token", "1,000,000"))


def _rescaled(given: Decimal, price: Decimal) -> str:
    """The per-1M value it would be if it was typed per 1K tokens or per token (or scaled
    the wrong way), whichever lands nearest the registry's price."""
    up = given > price
    options = [((given / f if up else given * f).normalize(), what, times)
               for f, what, times in SCALES]  # fmt: skip
    value, what, times = min(options, key=lambda o: abs(o[0].ln() - price.ln()))
    if up:
        return f"divided by {times}, it is {value:f}"
    return f"{given:f} per {what} is {value:f} per 1M tokens"


def _times(ratio: Decimal) -> str:
    """1234.5 -> "1,235x"; 250 -> "250x"."""
    return f"{ratio.to_integral_value():,f}x" if ratio >= 10 else f"{ratio:.2g}x"
