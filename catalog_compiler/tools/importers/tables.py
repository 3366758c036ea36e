"""Price tables an import carries beyond one flat price: long-context tiers, batch and
service-tier tables, regional tables; rendered in the catalog's pricing language
(`tiers`, `batch`, `service_tiers`, `regions`: see docs/pricing.md).

Sources spell these differently (LiteLLM: `input_cost_per_token_above_200k_tokens_flex`;
Portkey: `custom_pricing.regions.*.execution_modes.*.context_tiers`); both converters fill
one `Tables` and this module writes it. The catalog refuses a tier or variant price for a
field the base table has no price for (it could never be chosen consistently), so such
prices are left out here and counted as a caveat instead of failing the whole model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from catalog_compiler.tools.importers.emit import Quoted, plain_decimal

FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "per_request")
SERVICE_TIERS = ("flex", "priority")  # the service tiers the catalog prices
NO_BASE = "tier, batch or regional price of a field with no base price (left out)"


@dataclass
class Table:
    """One price table: flat prices, and whole-request prices above N prompt tokens."""

    prices: dict[str, Decimal] = field(default_factory=dict)
    tiers: dict[int, dict[str, Decimal]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.prices or self.tiers)

    def key(self) -> tuple[Any, ...]:
        tiers = tuple((n, tuple(sorted(p.items()))) for n, p in sorted(self.tiers.items()))
        return (tuple(sorted(self.prices.items())), tiers)


@dataclass
class Tables:
    """What a model's price has beyond its base table (whose flat prices are the entry's)."""

    tiers: dict[int, dict[str, Decimal]] = field(default_factory=dict)
    variants: dict[str, Table] = field(default_factory=dict)  # "batch", "flex", "priority"
    regions: dict[str, Table] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tiers or self.variants or self.regions)

    def key(self) -> tuple[Any, ...]:
        return (
            Table({}, self.tiers).key(),
            tuple((k, t.key()) for k, t in sorted(self.variants.items())),
            tuple((k, t.key()) for k, t in sorted(self.regions.items())),
        )

    def add_tier(self, above: int, prices: Mapping[str, Decimal], variant: str = "") -> None:
        """Prices for the whole request above `above` prompt tokens, of the base table or
        of a variant ("batch", "flex", "priority")."""
        tiers = self.variants.setdefault(variant, Table()).tiers if variant else self.tiers
        tiers.setdefault(above, {}).update(prices)


def render(base: Mapping[str, Decimal], tables: Tables, caveats: Counter[str]) -> dict[str, Any]:
    """The `pricing` block: base prices, then tiers, batch, service tiers and regions.
    A caveat is counted once per model."""
    seen: Counter[str] = Counter()
    out = _render(base, tables, seen)
    caveats.update(seen.keys())
    return out


def _render(base: Mapping[str, Decimal], tables: Tables, caveats: Counter[str]) -> dict[str, Any]:
    out: dict[str, Any] = _flat(base, base, caveats)
    tiers = _tiers(tables.tiers, base, caveats)
    if tiers:
        out["tiers"] = tiers
    batch = tables.variants.get("batch")
    if batch:
        rendered = _table(batch, base, caveats)
        if rendered:
            out["batch"] = rendered
    service = {n: _table(t, base, caveats) for n, t in sorted(tables.variants.items())
               if n in SERVICE_TIERS and t}  # fmt: skip
    service = {n: t for n, t in service.items() if t}
    if service:
        out["service_tiers"] = service
    regions = {r: _table(t, base, caveats) for r, t in sorted(tables.regions.items()) if t}
    regions = {r: t for r, t in regions.items() if t}
    if regions:
        out["regions"] = regions
    return out


def _flat(
    prices: Mapping[str, Decimal], base: Mapping[str, Decimal], caveats: Counter[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in FIELDS:
        if name not in prices:
            continue
        if name not in base:
            caveats[NO_BASE] += 1
            continue
        out[name] = Quoted(plain_decimal(prices[name]))
    return out


def _tiers(
    tiers: Mapping[int, Mapping[str, Decimal]], base: Mapping[str, Decimal], caveats: Counter[str]
) -> list[dict[str, Any]]:
    out = []
    for above in sorted(tiers):
        flat = _flat(tiers[above], base, caveats)
        if flat and above > 0:
            out.append({"above_input_tokens": above, **flat})
    return out


def _table(table: Table, base: Mapping[str, Decimal], caveats: Counter[str]) -> dict[str, Any]:
    out = _flat(table.prices, base, caveats)
    tiers = _tiers(table.tiers, base, caveats)
    if tiers:
        out["tiers"] = tiers
    return out
