"""Pieces of one bundle entry, built before the entry is written: a model's draft (its known
facts, then its price layer by layer), an integration's URL and headers, a custom model's
endpoint, and the price override that applies to a model (the most specific pattern)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from catalog_compiler.model.common import PriceOverride, SecretRef
from catalog_compiler.model.documents import CustomModel, Integration
from catalog_compiler.model.refs import HeaderValue, ref_json
from catalog_compiler.registry import KnownModel
from catalog_compiler.resolve.context import Located, Path
from catalog_compiler.resolve.values import dec
from catalog_compiler.services import SERVICES, base_url_for
from runtime.bundle.access import pattern


@dataclass
class ModelDraft:
    """A model's facts as layers are applied, lowest priority first."""

    mode: str = "chat"
    context_window: int | None = None
    max_output_tokens: int | None = None
    prices: dict[str, Decimal] = field(default_factory=dict)
    variants: dict[str, Any] = field(default_factory=dict)  # tiers, batch, service_tiers
    sources: dict[str, str] = field(default_factory=dict)
    elements: dict[str, Located | None] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    endpoint: dict[str, Any] = field(default_factory=dict)  # base_url, headers (refs.py)

    def known(self, known: KnownModel) -> None:
        self.mode = known.mode
        self.context_window = known.context_window or self.context_window
        self.max_output_tokens = known.max_output_tokens or self.max_output_tokens
        self.price(known.prices, "registry", None, (), known.variants)

    def price(
        self,
        prices: dict[str, Decimal],
        source: str,
        located: Located | None,
        path: Path,
        variants: dict[str, Any] | None = None,
    ) -> None:
        """Apply one layer: each field it gives replaces the lower layers'; so does each
        variant (tiers, batch, service tiers) as a whole, and a None variant removes it."""
        for name, value in prices.items():
            self.prices[name] = value
            self.sources[name] = source
            self.elements[name] = located
            self.paths[name] = (*path, name)
        for name, variant in (variants or {}).items():
            self.variants.pop(name, None)
            self.sources.pop(name, None)
            if variant is not None:
                self.variants[name] = variant
                self.sources[name] = source
                self.elements[name] = located
                self.paths[name] = (*path, name)

    def json(self) -> dict[str, Any]:
        prices: dict[str, Any] = {k: dec(v) for k, v in self.prices.items()}
        out: dict[str, Any] = {
            "mode": self.mode,
            "prices": dict(sorted({**prices, **self.variants}.items())),
            "price_sources": dict(sorted(self.sources.items())),
        }
        if self.context_window is not None:
            out["context_window"] = self.context_window
        if self.max_output_tokens is not None:
            out["max_output_tokens"] = self.max_output_tokens
        out.update(self.endpoint)  # only when a definition gives them: old bundles unchanged
        return out


def integration_url(integ: Integration) -> str | SecretRef | None:
    """Its own base URL (text or a reference), else its service's template filled in."""
    if isinstance(integ.base_url, SecretRef):
        return integ.base_url
    return base_url_for(SERVICES[integ.service], integ.settings, integ.base_url)


def headers_json(headers: dict[str, HeaderValue] | None) -> dict[str, Any]:
    """`{"headers": ...}` when there are some (bundles without them stay byte-identical)."""
    if not headers:
        return {}
    return {"headers": {k: ref_json(v) for k, v in sorted(headers.items())}}


def endpoint_of(custom: CustomModel, out: dict[str, Any]) -> None:
    """A custom definition's `base_url` replaces the one below it; `headers` add up."""
    if custom.base_url is not None:
        out["base_url"] = ref_json(custom.base_url)
    if custom.headers:
        merged = {**out.get("headers", {}), **headers_json(custom.headers)["headers"]}
        out["headers"] = dict(sorted(merged.items()))


def most_specific(
    overrides: tuple[PriceOverride, ...], model: str, provider: str
) -> tuple[int, PriceOverride] | None:
    """The override whose pattern matches most specifically (literal beats glob)."""
    names = (model, f"@{provider}/{model}")
    matching = [
        (pattern(o.model).specificity(), i, o)
        for i, o in enumerate(overrides)
        if any(pattern(o.model).matches(n) for n in names)
    ]
    if not matching:
        return None
    _, i, override = max(matching, key=lambda m: m[0])
    return i, override
