"""`catalogc import portkey-prices`: Portkey's pricing tables -> Model documents.

Portkey keeps one JSON file per provider (`openai.json`), a `default` entry the others
extend, and prices in US **cents** per token under `pricing_config.pay_as_you_go`
(`request_token: {price: 0.00025}` is 2.5 USD per 1M tokens). Cents per token x 10,000 =
USD per 1M tokens, exactly (`Decimal(str(x))`, no float arithmetic).

A `0` in a file's `default` is Portkey's placeholder for "no price": it is not copied into
entries that leave the field out (our router charges a missing cache price at the input
price; a copied 0 would make cache reads free). Non-zero defaults are inherited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from catalog_compiler.tools.importers import (
    InputError,
    PriceCatalog,
    PriceEntry,
    Target,
    read_json_object,
    service_for,
)
from catalog_compiler.tools.importers.emit import (
    Report,
    Skipped,
    exact,
    per_request_problem,
    plain_decimal,
    price_problem,
    valid_model_name,
)
from catalog_compiler.tools.importers.tables import SERVICE_TIERS, Table, Tables

TOKEN_PRICES = {
    "request_token": "input",
    "response_token": "output",
    "cache_read_input_token": "cache_read",
    "cache_write_input_token": "cache_write",
}
CENTS_PER_TOKEN_TO_USD_PER_M = 10_000  # / 100 cents, x 1,000,000 tokens
_SIZE_CLASS = re.compile(r"[0-9]+(\.[0-9]+)?b\Z")  # fireworks' `4b`, `16b`: prices by size
_ABOVE = re.compile(r"(.+)-gt-([0-9]{1,6})k\Z")
_UP_TO = re.compile(r"(.+)-lte-([0-9]+k)\Z")
_DIMENSIONS = {
    "image": "image prices",
    "additional_units": "per-unit fees (web search, file search, …)",
    "reasoning_token": "a separate reasoning-token price",
}


def load_dir(directory: Path) -> dict[str, dict[str, Any]]:
    """Provider name (file stem) -> its table, for every `*.json` in `directory`."""
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory of Portkey pricing tables")
    try:
        paths = sorted(directory.glob("*.json"))
    except OSError as exc:
        raise InputError(f"cannot read {directory}: {exc.strerror or exc}") from None
    if not paths:
        raise InputError(f"{directory} holds no pricing tables (*.json)")
    tables = {}
    for path in paths:
        tables[path.stem] = read_json_object(path, "a JSON object of models")
    return tables


def run(directory: Path, select: Mapping[str, str] | None) -> tuple[dict[str, str], Report]:
    tables = load_dir(directory)
    shown = "/".join(directory.resolve().parts[-2:])  # the same on every machine
    report = Report("Import of Portkey prices", shown)
    entries: list[PriceEntry] = []
    for provider, table in tables.items():
        report.total += len(table)
        results = convert_table(provider, table, report)
        entries.extend(r for r in results if isinstance(r, PriceEntry))
        report.skipped.extend(r for r in results if isinstance(r, Skipped))
    catalog = PriceCatalog("Imported from Portkey prices", "portkey", report)
    return catalog.build(entries, select), report


def convert_table(
    provider: str, table: Mapping[str, Any], report: Report
) -> list[PriceEntry | Skipped]:
    target = service_for(provider)
    default = _pay(table.get("default")) or {}
    inherited = {k: v for k, v in default.items() if _nonzero(v)}
    out: list[PriceEntry | Skipped] = []
    for key in sorted(table):
        label = f"{provider}: {key}"
        if key == "default":
            out.append(Skipped(label, "file default (the template other entries extend)"))
        elif target is None:
            out.append(Skipped(label, "unsupported provider", f"`{provider}`"))
        else:
            out.append(convert(label, key, table[key], inherited, target, report))
    return out


def convert(
    label: str,
    key: str,
    value: Any,
    inherited: Mapping[str, Any],
    target: Target,
    report: Report,
) -> PriceEntry | Skipped:
    if not isinstance(value, dict):
        return Skipped(label, "not a model entry", "not a JSON object")
    own = _pay(value)
    if own is None:
        return Skipped(label, "no pricing", "no `pricing_config.pay_as_you_go`")
    name = _name(label, key)
    if isinstance(name, Skipped):
        return name
    name, above = name if isinstance(name, tuple) else (name, None)
    pay = {**inherited, **own}
    if not any(k in pay for k in ("request_token", "response_token")):
        return Skipped(label, _unpriced(pay))
    prices = _prices(label, pay)
    if isinstance(prices, Skipped):
        return prices
    fixed = _per_request(label, value)
    if isinstance(fixed, Skipped):
        return fixed
    if fixed is not None:
        prices["per_request"] = fixed
    prices.update(_hour_write(pay, report))
    dropped = _dropped(value, pay)
    tables = _tables(value, report, dropped)
    for dimension in sorted(dropped):
        report.caveats[dimension] += 1
    part = ("above", above) if above is not None else None
    return PriceEntry(label, target.group, target.service, name, prices, derived=name != key,
                      tables=tables, part=part)  # fmt: skip


def _pay(value: Any) -> dict[str, Any] | None:
    config = value.get("pricing_config") if isinstance(value, dict) else None
    pay = config.get("pay_as_you_go") if isinstance(config, dict) else None
    return pay if isinstance(pay, dict) else None


def _nonzero(item: Any) -> bool:
    price = item.get("price") if isinstance(item, dict) else None
    number = exact(price)
    return number is not None and number != 0


def _name(label: str, key: str) -> str | tuple[str, int] | Skipped:
    """The model's name; (name, N) for Portkey's `model-gt-200k` entries, the prices of
    the whole request above N prompt tokens (a tier of the model's own entry)."""
    if _SIZE_CLASS.match(key):
        return Skipped(label, "price class, not a model", "Portkey's price for a model size")
    above = _ABOVE.match(key)
    if above:
        if not valid_model_name(above[1]):
            return Skipped(label, "invalid model name", "empty, spaces or over 256 characters")
        return above[1], int(above[2]) * 1000
    up_to = _UP_TO.match(key)
    name = up_to[1] if up_to else key  # the base tier is the model's price
    if not valid_model_name(name):
        return Skipped(label, "invalid model name", "empty, spaces or over 256 characters")
    return name


def _unpriced(pay: Mapping[str, Any]) -> str:
    if "image" in pay or any("image" in k for k in pay):
        return "image model: no token prices"
    if any("audio" in k for k in pay):
        return "priced per audio token or second"
    if "additional_units" in pay:
        return "priced per unit (no token prices)"
    return "no token prices"


def _prices(label: str, pay: Mapping[str, Any]) -> dict[str, Decimal] | Skipped:
    prices: dict[str, Decimal] = {}
    for source, field in TOKEN_PRICES.items():
        if source not in pay:
            continue
        item = pay[source]
        cents = exact(item.get("price")) if isinstance(item, dict) else None
        if cents is None:
            return Skipped(label, "invalid price value", f"`{source}` has no numeric `price`")
        per_million = cents * CENTS_PER_TOKEN_TO_USD_PER_M
        problem = price_problem(per_million)
        if problem is not None:
            shown = plain_decimal(per_million)
            return Skipped(label, problem, f"{field} = {shown} USD per 1M tokens ({source})")
        prices[field] = per_million.normalize()
    return prices


def _hour_write(pay: Mapping[str, Any], report: Report) -> dict[str, Decimal]:
    """The 1-hour cache write (`additional_units.cache_write_1h`), as a price field."""
    units = pay.get("additional_units")
    item = units.get("cache_write_1h") if isinstance(units, dict) else None
    if not _nonzero(item):
        return {}
    return _lenient({"cache_write_1h": item}, report)


def _lenient(pay: Mapping[str, Any], report: Report) -> dict[str, Decimal]:
    """Token prices of a tier or variant table; one out of range is left out (a caveat),
    not the whole model."""
    prices: dict[str, Decimal] = {}
    fields = {**TOKEN_PRICES, "cache_write_1h": "cache_write_1h"}
    for source, item in pay.items():
        cents = exact(item.get("price")) if isinstance(item, dict) else None
        if source not in fields or cents is None or cents == 0:
            continue
        per_million = cents * CENTS_PER_TOKEN_TO_USD_PER_M
        if price_problem(per_million) is not None:
            report.caveats["a tier, batch or service-tier price out of range (left out)"] += 1
            continue
        prices[fields[source]] = per_million.normalize()
    return prices


def _table(pay: Any, report: Report) -> dict[str, Decimal]:
    if not isinstance(pay, dict):
        return {}
    return {**_lenient(pay, report), **_hour_write(pay, report)}


def _tables(value: Mapping[str, Any], report: Report, dropped: set[str]) -> Tables:
    """`batch_config`, and `custom_pricing`: context tiers, batch and service-tier modes,
    and regional prices."""
    tables = Tables()
    config = value.get("pricing_config")
    batch = _table(config.get("batch_config"), report) if isinstance(config, dict) else {}
    if batch:
        tables.variants["batch"] = Table(batch)
    custom = value.get("custom_pricing")
    if not isinstance(custom, dict) or not isinstance(custom.get("regions"), dict):
        return tables
    regions: dict[str, Any] = custom["regions"]
    thresholds = _thresholds(custom.get("context_tier_map"))
    for names, region in sorted(regions.items()):
        modes = region.get("execution_modes") if isinstance(region, dict) else None
        if not isinstance(modes, dict):
            continue
        for mode, spec in sorted(modes.items()):
            table = _mode_table(spec, thresholds, report)
            if not table:
                continue
            if names == "default":
                _default_mode(tables, mode, table, dropped)
            elif mode == "standard":
                for name in names.split(","):
                    tables.regions[name.strip()] = table
            else:
                dropped.add("regional batch or service-tier prices")
    return tables


def _default_mode(tables: Tables, mode: str, table: Table, dropped: set[str]) -> None:
    """A mode of the default region: Portkey's mode names are the catalog's variant names."""
    if mode == "standard":  # the base table: the entry's own prices; its tiers are new
        tables.tiers.update(table.tiers)
    elif mode == "batch" or mode in SERVICE_TIERS:
        known = tables.variants.setdefault(mode, Table())
        known.prices.update(table.prices)
        known.tiers.update(table.tiers)
    else:
        dropped.add(f"execution-mode prices (`{mode}`)")


def _thresholds(tier_map: Any) -> dict[str, int]:
    """Portkey's `context_tier_map` ({"0": "lte-272k", "272000": "gt-272k"}): tier name ->
    the prompt tokens above which it applies."""
    out: dict[str, int] = {}
    if isinstance(tier_map, dict):
        for above, name in tier_map.items():
            if isinstance(name, str) and isinstance(above, str) and above.isdigit():
                out[name] = int(above)
    return out


def _mode_table(spec: Any, thresholds: Mapping[str, int], report: Report) -> Table:
    if not isinstance(spec, dict):
        return Table()
    tiers = spec.get("context_tiers")
    if not isinstance(tiers, dict):
        return Table(_table(_pay(spec), report))
    table = Table()
    for name, tier in tiers.items():
        above = thresholds.get(name)
        prices = _table(_pay(tier), report)
        if above is None or not prices:
            continue
        if above == 0:
            table.prices.update(prices)
        else:
            table.tiers[above] = prices
    return table


def _per_request(label: str, value: Mapping[str, Any]) -> Decimal | Skipped | None:
    """`fixed_cost` (cents per request and per response) -> USD per request."""
    config = value.get("pricing_config")
    fixed = config.get("fixed_cost") if isinstance(config, dict) else None
    if not isinstance(fixed, dict):
        return None
    total = Decimal(0)
    for part in ("request", "response"):
        item = fixed.get(part)
        if item is None:
            continue
        cents = exact(item.get("price")) if isinstance(item, dict) else None
        if cents is None:
            return Skipped(label, "invalid price value", f"`fixed_cost.{part}`")
        total += cents
    usd = total / 100
    problem = per_request_problem(usd)
    if problem is not None:
        return Skipped(label, problem, f"fixed cost {plain_decimal(usd)} USD per request")
    return usd.normalize() if total else None


def _dropped(value: Mapping[str, Any], pay: Mapping[str, Any]) -> set[str]:
    found = set()
    for k, item in pay.items():
        if k in TOKEN_PRICES or not (_nonzero(item) or (k in _DIMENSIONS and item)):
            continue
        if k == "additional_units" and isinstance(item, dict) and set(item) == {"cache_write_1h"}:
            continue  # carried as the 1-hour cache write price
        if k in _DIMENSIONS:
            found.add(_DIMENSIONS[k])
        elif "audio" in k:
            found.add("audio prices")
        elif "image" in k or "text" in k:
            found.add("separate text and image token prices")
        else:
            found.add(f"`{k}`")
    config = value.get("pricing_config")
    if isinstance(config, dict) and config.get("finetune_config"):
        found.add("fine-tuning prices")
    return found
