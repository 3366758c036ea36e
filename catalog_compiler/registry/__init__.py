"""The built-in model registry: well-known models per service, hand-curated in models.json.

Prices are exact decimal strings in USD per 1M tokens; `as_of` dates the whole table, and an
entry's `prices_as_of` the day its variant prices (1-hour cache writes, long-context `tiers`,
`batch`, `service_tiers`) were taken from the providers' published prices (as LiteLLM's price
map 1.110.2 records them; Claude Sonnet 4.5's long context from Anthropic's price page: the
whole request at 2x input, 1.5x output above 200k prompt tokens). Model documents extend or
override it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

PRICE_KEYS = ("input", "output", "cache_read", "cache_write", "per_request", "cache_write_1h")
# tables inside an entry, in the bundle's form: long-context `tiers` (with `above_input_tokens`),
# `batch`, `service_tiers` (`flex`, `priority`); `prices_as_of` dates them
VARIANT_KEYS = ("tiers", "batch", "service_tiers")


@dataclass(frozen=True, slots=True)
class KnownModel:
    service: str
    name: str
    prices: dict[str, Decimal] = field(default_factory=dict)
    context_window: int | None = None
    max_output_tokens: int | None = None
    mode: str = "chat"
    aliases: tuple[str, ...] = ()
    variants: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Registry:
    as_of: str
    services: dict[str, dict[str, KnownModel]]  # service -> name or alias -> model

    def models(self, service: str) -> dict[str, KnownModel]:
        return self.services.get(service, {})

    def lookup(self, service: str, name: str) -> KnownModel | None:
        return self.services.get(service, {}).get(name)


def _known(service: str, name: str, entry: dict[str, Any]) -> KnownModel:
    return KnownModel(
        service=service,
        name=name,
        prices={k: Decimal(entry[k]) for k in PRICE_KEYS if k in entry},
        context_window=entry.get("context_window"),
        max_output_tokens=entry.get("max_output_tokens"),
        mode=entry.get("mode", "chat"),
        aliases=tuple(entry.get("aliases", ())),
        variants={k: entry[k] for k in VARIANT_KEYS if k in entry},
    )


def parse_registry(data: dict[str, Any]) -> Registry:
    services: dict[str, dict[str, KnownModel]] = {}
    for service, models in data["services"].items():
        table: dict[str, KnownModel] = {}
        for name, entry in models.items():
            known = _known(service, name, entry)
            table[name] = known
            for alias in known.aliases:
                table.setdefault(alias, known)
        services[service] = table
    return Registry(as_of=data["as_of"], services=services)


@cache
def builtin() -> Registry:
    text = resources.files(__package__).joinpath("models.json").read_text(encoding="utf-8")
    return parse_registry(json.loads(text))
