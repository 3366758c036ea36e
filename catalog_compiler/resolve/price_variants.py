"""A price block's variants as the bundle carries them: long-context `tiers`, `batch` and
`service_tiers` (the runtime picks one per request, runtime/bundle/price_tables.py). Regional
prices are resolved here, at compile time: the integration's `settings.region` picks the
block's `regions` table, whose fields replace the base's at every long-context tier (its
own `tiers`, if it has some, replace the base's). A region without a table: the base.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from catalog_compiler.model.common import PRICE_FIELDS, PriceTable, PriceTier, PriceVariant, Pricing
from catalog_compiler.resolve.values import dec

VARIANT_FIELDS = ("tiers", "batch", "service_tiers")
# what a `free: true` override gives: every variant dropped (None removes it)
NO_VARIANTS: dict[str, Any] = dict.fromkeys(VARIANT_FIELDS)


def table_json(table: PriceTable, drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {k: dec(v) for k, v in sorted(table.fields().items()) if k not in drop}


def tiers_json(tiers: tuple[PriceTier, ...], drop: frozenset[str] = frozenset()) -> list[Any]:
    return [{"above_input_tokens": t.above_input_tokens, **table_json(t, drop)} for t in tiers]


def variant_json(variant: PriceVariant) -> dict[str, Any]:
    out = table_json(variant)
    if variant.tiers:
        out["tiers"] = tiers_json(variant.tiers)
    return out


def resolved(block: Pricing, region: str | None) -> tuple[dict[str, Decimal], dict[str, Any]]:
    """(the base table's fields, the variants) of `block` for a provider in `region`."""
    fields, tiers = block.fields(), tiers_json(block.tiers)
    local = block.regions.get(region) if region is not None else None
    if local is not None:
        fields = {**fields, **local.fields()}
        own = local.tiers
        tiers = tiers_json(own) if own else tiers_json(block.tiers, frozenset(local.fields()))
    variants: dict[str, Any] = {}
    if tiers:
        variants["tiers"] = tiers
    if block.batch is not None:
        variants["batch"] = variant_json(block.batch)
    if block.service_tiers:
        variants["service_tiers"] = {
            name: variant_json(v) for name, v in sorted(block.service_tiers.items())
        }
    return fields, variants


def free_fields() -> dict[str, Decimal]:
    return dict.fromkeys(PRICE_FIELDS, Decimal(0))
