"""Which price table a request is charged at: long-context tier, batch, service tier.

A model's `Prices` may carry variants (see runtime/bundle/load.py): long-context `tiers` (a
request whose prompt tokens are strictly above a threshold is priced wholly at the highest
tier it exceeds), a `batch` table, and `service_tiers` (`flex`, `priority`). A variant is a
partial table: its absent fields fall back to the base table at the same long-context tier;
a variant with its own `tiers` uses them instead of the base's.

`RateCard` precomputes every table as integer `Rates` once per attempt, so costing stays a
handful of multiplications; a card without variants costs exactly as `Rates` does.

Admission reserves the most the request may cost: its estimated prompt tokens at the
dearest prompt rate (input, cache read, cache writes) and its output, at every table the
request may end up with (the long-context tiers its estimate may reach; for a requested
`flex`, flex and default; for `priority` or `auto`, priority and default; otherwise the
default table). So when the estimate bounds the usage, the reservation is never below the
final charge.
Settlement charges the service tier the upstream reports, else the requested one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.bundle.errors import InvalidRequest
from runtime.bundle.load import Prices
from runtime.bundle.money import Rates, Usage, shown

SERVICE_TIERS = ("flex", "priority")
# a request's `service_tier` -> the tables its answer may be charged at. No tier is the
# default table: what the request implies (an OpenAI project configured to serve `auto` at
# priority is charged priority at settlement, above the reservation: docs/pricing.md).
_MAY_END_AT = {"flex": ("flex", None), "priority": ("priority", None), "auto": ("priority", None)}


def requested_tier(params: Mapping[str, Any] | None) -> str | None:
    """The `service_tier` a request body asks for (anything but a string is no request)."""
    tier = params.get("service_tier") if params else None
    return tier if type(tier) is str else None


def _prompt_rate(rates: Rates) -> int:
    return max(rates.input, rates.cache_read, rates.cache_write, rates.cache_write_1h)


@dataclass(frozen=True, slots=True)
class Ladder:
    """One table and its long-context tiers: `rates[i]` applies above `thresholds[i]`."""

    thresholds: tuple[int, ...]  # the first is -1: the base table applies from 0 tokens
    rates: tuple[Rates, ...]
    prompt: tuple[int, ...]  # per table, the dearest prompt token (for reservations)

    @classmethod
    def of(cls, prices: Prices, tiers: tuple[tuple[int, Prices], ...]) -> Ladder:
        tables = [Rates.of(prices), *(Rates.of(p) for _, p in tiers)]
        return cls((-1, *(n for n, _ in tiers)), tuple(tables), tuple(map(_prompt_rate, tables)))

    def at(self, prompt_tokens: int) -> Rates:
        return self.rates[bisect_left(self.thresholds, prompt_tokens) - 1]

    def most(self, usage: Usage) -> int:
        """The dearest cost of `usage` with its prompt tokens in any reachable table."""
        prompt = usage.prompt_tokens
        reach = bisect_left(self.thresholds, prompt)  # tables a smaller prompt may land at
        return max(
            prompt * self.prompt[i] + usage.output_tokens * r.output + r.per_request
            for i, r in enumerate(self.rates[:reach])
        )


def _over(base: Prices, variant: Prices) -> Prices:
    """`variant`'s fields over `base`'s (tiers, batch and service tiers are not copied)."""
    return Prices.of_fields({**base.fields(), **variant.fields()})


def _ladder(base: Prices, variant: Prices | None) -> Ladder:
    """The ladder of `variant` (None: of the base table itself)."""
    plain = Prices.of_fields(base.fields())
    if variant is None:
        tiers = tuple((t.above_input_tokens, _over(plain, t.prices)) for t in base.tiers)
        return Ladder.of(plain, tiers)
    table = _over(plain, variant)
    if variant.tiers:  # its own tiers, over the variant's table
        tiers = tuple((t.above_input_tokens, _over(table, t.prices)) for t in variant.tiers)
    else:  # the base's tiers, the variant's own fields kept at every tier
        tiers = tuple(
            (t.above_input_tokens, _over(_over(plain, t.prices), variant)) for t in base.tiers
        )
    return Ladder.of(table, tiers)


@dataclass(frozen=True, slots=True)
class RateCard:
    """Every table a model's price may take, as integer rates (units of 1e-16 USD per token)."""

    default: Ladder
    batch: Ladder | None = None
    services: tuple[tuple[str, Ladder], ...] = ()
    flat: Rates | None = None  # the only table, when there are no variants (fast path)
    flat_prompt: int = 0  # the flat table's dearest prompt token

    @classmethod
    def of(cls, prices: Prices | None) -> RateCard:
        if prices is None or not (prices.tiers or prices.batch or prices.service_tiers):
            rates = Rates.of(prices)
            prompt = _prompt_rate(rates)
            return cls(Ladder((-1,), (rates,), (prompt,)), flat=rates, flat_prompt=prompt)
        batch = _ladder(prices, prices.batch) if prices.batch is not None else None
        services = tuple((name, _ladder(prices, p)) for name, p in prices.service_tiers)
        return cls(_ladder(prices, None), batch, services)

    @property
    def priced(self) -> bool:
        return self.default.rates[0].priced

    def ladder(self, tier: str | None, batch: bool = False) -> Ladder:
        if batch and self.batch is not None:
            return self.batch
        for name, ladder in self.services:
            if name == tier:
                return ladder
        return self.default

    def table(self, usage: Usage, requested: str | None = None, batch: bool = False) -> Rates:
        """The rates `usage` is charged at: the tier the upstream reports, else the one
        requested; batch prices only when the caller says the request was a batch's."""
        if self.flat is not None:
            return self.flat
        if type(usage) is not Usage:  # a library caller may pass anything
            raise InvalidRequest("usage", f"must be a Usage, found {shown(usage)}")
        tier = usage.service_tier or requested
        return self.ladder(tier, batch).at(usage.prompt_tokens)

    def cost(self, usage: Usage, requested: str | None = None, batch: bool = False) -> int:
        """The exact cost in units of 1e-16 USD."""
        flat = self.flat
        if flat is not None:
            return flat.cost(usage)
        return self.table(usage, requested, batch).cost(usage)

    def reserve(self, usage: Usage, requested: str | None = None, batch: bool = False) -> int:
        """What admission reserves for an estimated `usage`: the most it may cost."""
        flat = self.flat
        if flat is not None:
            return (
                usage.prompt_tokens * self.flat_prompt
                + usage.output_tokens * flat.output
                + flat.per_request
            )
        if batch and self.batch is not None:
            return self.batch.most(usage)
        candidates = _MAY_END_AT.get(requested or "", (None,))
        return max(self.ladder(tier).most(usage) for tier in candidates)
