"""Every variant of a resolved price, for people (`explain`, the gallery) and as JSON.

The base table is shown as before; these are the rest: the 1-hour cache write, the
long-context tiers, the batch table and the service tiers, each as the runtime charges it
(runtime/bundle/price_tables.py: a variant's absent fields are the base's).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from runtime.bundle.load import PRICE_FIELDS, Prices, PriceTier

LABELS = {
    "input": "input",
    "output": "output",
    "cache_read": "cache read",
    "cache_write": "cache write",
    "cache_write_1h": "cache write (1 h)",
    "per_request": "per request",
}
Money = Callable[[Decimal], str]


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"


def table_words(prices: Prices, money: Money = _plain) -> str:
    return ", ".join(f"{LABELS[k]} {money(v)}" for k, v in prices.fields().items())


def tier_words(tiers: tuple[PriceTier, ...], money: Money = _plain) -> list[str]:
    return [
        f"above {t.above_input_tokens:,} prompt tokens (whole request): "
        f"{table_words(t.prices, money) or 'as below it'}"
        for t in tiers
    ]


def variant_lines(prices: Prices, money: Money = _plain) -> list[str]:
    """One line per variant: "Batch: input $1.25, output $5.00", …; [] for a flat price."""
    lines = [f"Long context, {w}" for w in tier_words(prices.tiers, money)]
    named = [("Batch", prices.batch)] if prices.batch is not None else []
    named += [(name.capitalize(), p) for name, p in prices.service_tiers]
    for label, table in named:
        words = table_words(table, money) or "as the base"
        lines.append(f"{label} (other fields as the base): {words}")
        lines += [f"{label}, {w}" for w in tier_words(table.tiers, money)]
    return lines


def variants_json(prices: Prices) -> dict[str, Any]:
    """The variants as the bundle writes them (decimal strings); {} for a flat price."""

    def table(p: Prices) -> dict[str, Any]:
        out: dict[str, Any] = {k: str(v) for k in PRICE_FIELDS if (v := p.get(k)) is not None}
        if p.tiers:
            out["tiers"] = [{"above_input_tokens": t.above_input_tokens, **table(t.prices)}
                            for t in p.tiers]  # fmt: skip
        return out

    out: dict[str, Any] = {}
    if prices.tiers:
        out["tiers"] = table(Prices(tiers=prices.tiers))["tiers"]
    if prices.batch is not None:
        out["batch"] = table(prices.batch)
    if prices.service_tiers:
        out["service_tiers"] = {name: table(p) for name, p in prices.service_tiers}
    return out
