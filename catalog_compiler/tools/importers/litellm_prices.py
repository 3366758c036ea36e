"""`catalogc import litellm-prices`: LiteLLM's price map -> Model documents.

LiteLLM keeps USD per token (`input_cost_per_token: 2.5e-06`); the catalog keeps USD per
1M tokens as exact decimals (`input: "2.5"`). Each number goes through its shortest text
(`Decimal(str(x))`), is multiplied by 1,000,000 and normalized: no float arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from catalog_compiler.model.types import MAX_MODEL_TOKENS
from catalog_compiler.tools.importers import (
    PriceCatalog,
    PriceEntry,
    Target,
    read_json_object,
    service_for,
    token_limits,
)
from catalog_compiler.tools.importers.emit import (
    Report,
    Skipped,
    exact,
    per_request_problem,
    plain_decimal,
    price_problem,
    valid_model_name,
    whole,
)
from catalog_compiler.tools.importers.tables import Table, Tables

TOKEN_PRICES = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write",
}
PER_REQUEST = "input_cost_per_request"  # USD per request
# `<price>[_above_1hr][_above_<N>k_tokens][_<mode>]`: 1-hour cache writes, long-context
# tiers (the whole request above N thousand prompt tokens), batch and service-tier tables.
_TABLE_PRICE = re.compile(
    r"(?P<price>input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost)(?P<hour>_above_1hr)?(?:_above_(?P<k>[0-9]{1,6})k_tokens)?"
    r"(?:_(?P<mode>batches|flex|priority))?\Z"
)
_MODES = {"batches": "batch", "flex": "flex", "priority": "priority"}
TEXT_MODES = frozenset({"chat", "completion", "responses", "embedding"})
IMAGE_MODES = frozenset({"image_generation", "image_edit"})
# LiteLLM's price classes for models it does not list one by one, e.g. `together-ai-4.1b-8b`.
_TIER = re.compile(r"(together-ai|fireworks-ai)-")
_AWS_REGION = re.compile(r"(us|eu|ap|ca|sa|me|af|il|mx)(-gov)?-[a-z]+-[0-9]+\Z")
_BEDROCK_APIS = frozenset({"converse", "invoke"})
_COMMITMENT = re.compile(r"[0-9]+-months?-commitment\Z")
_REGION_KEY = re.compile(r"[a-z][a-z0-9-]{0,62}\Z")  # a region or Azure data zone: `eu`
# What a unit-priced entry is priced by, checked in this order (first match names it).
_UNITS = (
    ("per_second", "priced per second"),
    ("per_character", "priced per character"),
    ("per_query", "priced per query"),
    ("per_page", "priced per page"),
    ("per_image", "image model: no token prices"),
    ("per_pixel", "image model: no token prices"),
)
# Price dimensions a converted entry may have that the catalog has no field for.
_DIMENSIONS = (
    ("_above_1hr", "long-lived cache write prices (1h/12h)"),
    ("_above_12hr", "long-lived cache write prices (1h/12h)"),
    ("_above_", "long-context tier prices (above N tokens)"),
    ("_batches", "batch prices"),
    ("dbu", "Databricks DBU prices"),
    ("audio", "audio prices"),
    ("video", "video prices"),
    ("image", "image prices"),
    ("pixel", "image prices"),
    ("reasoning", "a separate reasoning-token price"),
    ("per_query", "per-query tool fees (search, grounding)"),
    ("grounding", "per-query tool fees (search, grounding)"),
    ("search", "per-query tool fees (search, grounding)"),
    ("per_second", "per-second prices"),
    ("per_character", "per-character prices"),
    ("_priority", "service-tier prices (priority, flex, …)"),
    ("_flex", "service-tier prices (priority, flex, …)"),
    ("_ultrafast", "service-tier prices (priority, flex, …)"),
    ("_balanced", "service-tier prices (priority, flex, …)"),
    ("_decisions", "service-tier prices (priority, flex, …)"),
    ("cache_hit", "a second cache-read price (`input_cost_per_token_cache_hit`)"),
    ("explicit_cache", "a second cache-read price (explicit caching)"),
)


def load(path: Path) -> dict[str, Any]:
    return read_json_object(path, "LiteLLM's price map (a JSON object of models)")


def run(path: Path, select: Mapping[str, str] | None) -> tuple[dict[str, str], Report]:
    """The catalog files for the price map at `path`, and the report."""
    data = load(path)
    report = Report("Import of LiteLLM prices", path.name, total=len(data))
    entries = []
    for key in sorted(data):
        result = convert(key, data[key], report)
        if isinstance(result, Skipped):
            report.skipped.append(result)
        else:
            entries.append(result)
    catalog = PriceCatalog("Imported from LiteLLM prices", "litellm", report)
    return catalog.build(entries, select), report


def convert(key: str, value: Any, report: Report) -> PriceEntry | Skipped:
    """One entry of the map: a PriceEntry, or why not (caveats counted in `report`)."""
    if not isinstance(value, dict):
        return Skipped(key, "not a model entry", "not a JSON object")
    if key == "sample_spec":
        return Skipped(key, "not a model entry", "LiteLLM's documentation of the format")
    if "alias_of" in value:
        return Skipped(key, "alias of another entry", f"alias of `{value['alias_of']}`")
    provider = value.get("litellm_provider")
    if not isinstance(provider, str) or not provider:
        return Skipped(key, "not a model entry", "no `litellm_provider`")
    target = service_for(provider)
    if target is None:
        return Skipped(key, "unsupported provider", f"`{provider}`")
    if _TIER.match(key):
        return Skipped(key, "price class, not a model", "LiteLLM's price for a model size range")
    unpriced = _unpriced(value)
    if unpriced is not None:
        return Skipped(key, unpriced)
    name = model_name(key, target)
    if isinstance(name, Skipped):
        return name
    name, region = name if isinstance(name, tuple) else (name, None)
    prices = _prices(key, value)
    if isinstance(prices, Skipped):
        return prices
    tables = _tables(value, prices, report)
    context, max_output, note = token_limits(
        whole(value.get("max_input_tokens"), MAX_MODEL_TOKENS),
        whole(value.get("max_output_tokens"), MAX_MODEL_TOKENS),
    )
    if note is not None:
        report.caveats["max_output_tokens above the context window (left out)"] += 1
    for dimension in sorted(_dropped(value)):
        report.caveats[dimension] += 1
    if region is not None:  # one region's table: the model's limits come from its own entry
        return PriceEntry(key, target.group, target.service, name, prices, derived=True,
                          tables=tables, part=("region", region))  # fmt: skip
    return PriceEntry(
        key,
        target.group,
        target.service,
        name,
        prices,
        context,
        max_output,
        name != key,
        tables,
    )


def _unpriced(value: Mapping[str, Any]) -> str | None:
    """Why an entry has no token prices the catalog can hold, or None if it has."""
    mode = value.get("mode")
    if mode is not None and not isinstance(mode, str):
        return "`mode` is not a string"
    tokens = any(
        value.get(k) is not None for k in ("input_cost_per_token", "output_cost_per_token")
    )
    if mode in IMAGE_MODES:
        return "image model: priced per image" if tokens else "image model: no token prices"
    if mode is not None and mode not in TEXT_MODES:
        if tokens:
            return f"{mode} model: not a chat, completion or embedding model"
        return _unit(value) or f"{mode} model: no token prices"
    if not tokens:
        return _unit(value) or "no token prices"
    return None


def _unit(value: Mapping[str, Any]) -> str | None:
    priced = [k for k, v in value.items() if "cost" in k and v not in (None, 0, 0.0)]
    for part, reason in _UNITS:
        if any(part in k for k in priced):
            return reason
    return None


def model_name(key: str, target: Target) -> str | tuple[str, str] | Skipped:
    """The name the service knows the model by: the key without LiteLLM's provider prefix;
    (name, region) for an Azure or Bedrock price of one region or data zone (it becomes a
    regional table of the model's own entry)."""
    segments = key.split("/")
    if len(segments) > 1:
        first = service_for(segments[0])
        if first is not None and first.service == target.service:
            segments = segments[1:]
    if target.service == "bedrock" and len(segments) > 1 and segments[0] in _BEDROCK_APIS:
        segments = segments[1:]  # which Bedrock API LiteLLM calls; the model is the same
    name = "/".join(segments)
    if target.service in ("azure-openai", "bedrock") and len(segments) > 1:
        route = segments[:-1]
        if any(_COMMITMENT.match(s) for s in route):
            return Skipped(key, "provisioned-throughput (commitment) price")
        region = route[0] if len(route) == 1 else ""
        if _REGION_KEY.match(region) and (
            target.service == "azure-openai" or _AWS_REGION.match(region)
        ):
            name = segments[-1]
            return (name, region) if valid_model_name(name) else _invalid(key)
        if target.service == "azure-openai" or all(_AWS_REGION.match(s) or s == "*" for s in route):
            return Skipped(key, "region-specific price", f"`{'/'.join(route)}`")
        return Skipped(key, "unsupported route", f"`{'/'.join(route)}` on {target.service}")
    if not valid_model_name(name):
        return _invalid(key)
    return name


def _invalid(key: str) -> Skipped:
    return Skipped(key, "invalid model name", "empty, spaces or over 256 characters")


def _prices(key: str, value: Mapping[str, Any]) -> dict[str, Decimal] | Skipped:
    prices: dict[str, Decimal] = {}
    for source, field in TOKEN_PRICES.items():
        raw = value.get(source)
        if raw is None:
            continue
        per_token = exact(raw)
        if per_token is None:
            return Skipped(key, "invalid price value", f"`{source}` is not a number")
        per_million = per_token * 1_000_000
        problem = price_problem(per_million)
        if problem is not None:
            shown = plain_decimal(per_million)
            return Skipped(key, problem, f"{field} = {shown} USD per 1M tokens ({source})")
        prices[field] = per_million.normalize()
    raw = value.get(PER_REQUEST)
    if raw is not None:
        usd = exact(raw)
        problem = "invalid price value" if usd is None else per_request_problem(usd)
        if problem is not None or usd is None:
            return Skipped(key, problem or "invalid price value", f"`{PER_REQUEST}`")
        prices["per_request"] = usd.normalize()
    return prices


def _tables(value: Mapping[str, Any], prices: dict[str, Decimal], report: Report) -> Tables:
    """Long-context tiers, batch and service-tier tables; the 1-hour cache write of the
    base table goes into `prices`."""
    tables = Tables()
    for source in sorted(value):
        m = _table_price(source)
        if m is None or not (m["hour"] or m["k"] or m["mode"]):
            continue
        per_token = exact(value[source])
        if per_token is None or per_token == 0:  # LiteLLM's 0 means "no such price"
            continue
        per_million = per_token * 1_000_000
        if price_problem(per_million) is not None:
            report.caveats["a tier, batch or service-tier price out of range (left out)"] += 1
            continue
        name = TOKEN_PRICES[m["price"]] + ("_1h" if m["hour"] else "")
        price = {name: per_million.normalize()}
        variant = _MODES.get(m["mode"] or "", "")
        if m["k"]:
            tables.add_tier(int(m["k"]) * 1000, price, variant)
        elif variant:
            tables.variants.setdefault(variant, Table()).prices.update(price)
        else:
            prices.update(price)
    return tables


def _dropped(value: Mapping[str, Any]) -> set[str]:
    """Labels of the priced dimensions of an entry that the catalog cannot express."""
    found = set()
    for k, v in value.items():
        if ("cost" not in k and "price" not in k) or k in TOKEN_PRICES or k == PER_REQUEST:
            continue
        if _carried(k):
            continue
        if v in (None, 0, 0.0, {}, []) or isinstance(v, bool):
            continue
        for part, label in _DIMENSIONS:
            if part in k:
                found.add(label)
                break
        else:
            found.add(f"`{k}`")
    return found


def _table_price(source: str) -> re.Match[str] | None:
    """The parts of a price `_tables` carries over (a 1-hour price only of cache writes)."""
    m = _TABLE_PRICE.match(source)
    if m is None or (m["hour"] and m["price"] != "cache_creation_input_token_cost"):
        return None
    return m


def _carried(source: str) -> bool:
    """Whether `_tables` carries this price over (so it is no caveat)."""
    return _table_price(source) is not None
