"""Importers: LiteLLM's price map, Portkey's pricing tables and LiteLLM proxy configs
turned into catalog documents (issue 6, item 5).

This module holds what the three share: the mapping from the other tools' provider names
to our service ids, one converted price entry, and the minimal catalog written around
imported Model documents so the output directory validates on its own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from catalog_compiler.load.fsutil import read_input
from catalog_compiler.model.types import SLUG_RE
from catalog_compiler.registry import Registry, builtin
from catalog_compiler.services import ALIASES, SERVICES, Service
from catalog_compiler.tools.importers.emit import Quoted, Report, dump, env_name, plain_decimal
from catalog_compiler.tools.importers.tables import Table, Tables, render


class InputError(Exception):
    """The input cannot be read or is not the expected shape (exit 2, no traceback)."""


def read_json_object(path: Path, expected: str) -> dict[str, Any]:
    """The JSON object in `path`; `expected` says what it should be, for the error."""
    try:
        data = json.loads(read_input(path).decode("utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a JSON file: {exc}") from None
    except ValueError:  # Python's bound on an integer's digits (4,300)
        raise InputError(f"{path}: a number has too many digits") from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected {expected}")
    return data


# LiteLLM provider names that are not a service id or alias as written.
LITELLM_SERVICES: dict[str, str] = {
    "azure_text": "azure-openai",
    "bedrock_converse": "bedrock",
    "cohere_chat": "cohere",
    "custom_openai": "openai-compatible",
    "fireworks_ai-embedding-models": "fireworks",
    "hosted_vllm": "vllm",
    "ollama_chat": "ollama",
    "text-completion-openai": "openai",
    "vertex_ai_beta": "vertex-ai",
}
# Source providers that are a different product on one of our services: their models go
# to an integration of their own, so two price tables never collide on one name.
SEPARATE_INTEGRATIONS: dict[str, str] = {"azure_ai": "azure-ai", "azure-ai": "azure-ai"}

PLACEHOLDER_SETTINGS: dict[tuple[str, str], str] = {
    ("azure-openai", "resource_name"): "my-azure-resource",
    ("bedrock", "region"): "us-east-1",
    ("vertex-ai", "project"): "my-gcp-project",
    ("vertex-ai", "region"): "us-central1",
}
PLACEHOLDER_BASE_URL = "http://localhost:8000/v1"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a source provider's models go: our service, and the default integration slug."""

    service: str
    group: str


def service_for(source: str) -> Target | None:
    """Our service for a LiteLLM provider name or a Portkey provider (file) name."""
    name = source.strip()
    service = LITELLM_SERVICES.get(name)
    if service is None and (name.startswith("vertex_ai-") or name.startswith("vertex_ai_")):
        service = "vertex-ai"
    if service is None:
        for spelling in (name, name.replace("_", "-"), name.lower()):
            service = spelling if spelling in SERVICES else ALIASES.get(spelling)
            if service is not None:
                break
    if service is None:
        return None
    return Target(service, SEPARATE_INTEGRATIONS.get(name, service))


# -- one converted model ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """One source entry converted: a Model document to be, on integration `group`."""

    key: str  # the source entry, as the report names it
    group: str  # default integration slug
    service: str
    name: str
    prices: Mapping[str, Decimal]  # catalog field -> USD per 1M tokens (per_request: USD)
    context_window: int | None = None
    max_output_tokens: int | None = None
    derived: bool = False  # the name is not the source key as written (prefix, tier cut)
    tables: Tables = field(default_factory=Tables)  # tiers, batch, service tiers, regions
    # A part of another entry's price: ("region", "eu-west-1") or ("above", 200000): the
    # entry of the same model on the same integration takes it as a table.
    part: tuple[str, str | int] | None = None

    def same_content(self, other: PriceEntry) -> bool:
        return (
            dict(self.prices) == dict(other.prices)
            and self.tables.key() == other.tables.key()
            and self.context_window == other.context_window
            and self.max_output_tokens == other.max_output_tokens
        )

    def rank(self) -> tuple[bool, int, int, str]:
        """Lower is preferred among entries for one model: the entry written under the
        model's own name, then the one with most prices, then limits, then by key."""
        limits = (self.context_window is not None) + (self.max_output_tokens is not None)
        return (self.derived, -len(self.prices), -limits, self.key)


PRICE_ORDER = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "per_request")


def pricing_block(prices: Mapping[str, Decimal]) -> dict[str, Quoted]:
    return {k: Quoted(plain_decimal(prices[k])) for k in PRICE_ORDER if k in prices}


def token_limits(
    context_window: int | None, max_output: int | None
) -> tuple[int | None, int | None, str | None]:
    """(context_window, max_output_tokens, note): a max output above the window is dropped
    (the catalog rejects it), with a note saying so."""
    if context_window is not None and max_output is not None and max_output > context_window:
        return context_window, None, f"max_output_tokens {max_output} > context {context_window}"
    return context_window, max_output, None


# -- the minimal catalog around imported models --------------------------------------------


def credential_refs(service: Service, slug: str) -> dict[str, dict[str, str]]:
    """`{env: …}` references for the service's required credentials."""
    out = {}
    for name in service.credentials:
        env = env_name(name) if name.startswith("aws_") else env_name(slug, name)
        out[name] = {"env": env}
    return out


def placeholder_settings(service: Service) -> dict[str, str]:
    """Example values for the service's required settings (the report says to fill them)."""
    return {n: PLACEHOLDER_SETTINGS.get((service.id, n), "change-me") for n in service.settings}


def organization_doc(name: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "Organization", "version": 1, "name": name, **extra}


@dataclass
class PriceCatalog:
    """Converted entries grouped into integrations; renders the catalog files."""

    title: str  # organization name
    origin: str  # "litellm" / "portkey": the comment prefix naming each model's source
    report: Report
    registry: Registry = field(default_factory=builtin)

    def build(
        self, entries: Iterable[PriceEntry], select: Mapping[str, str] | None
    ) -> dict[str, str]:
        """Catalog files (relative path -> text); skips and counts go to the report."""
        chosen = self.choose(entries, select)
        files = {"catalog.yaml": dump([([], organization_doc(self.title))])}
        settings_notes: list[str] = []
        for slug in sorted(chosen):
            models = sorted(chosen[slug], key=lambda e: e.name)
            service = SERVICES[models[0].service]
            files[f"integrations/{slug}.yaml"] = self.integration_file(slug, service)
            files[f"models/{slug}.yaml"] = self.models_file(slug, service, models)
            settings = placeholder_settings(service)
            if settings:
                shown = ", ".join(f"{k}: {v}" for k, v in settings.items())
                settings_notes.append(f"`integrations/{slug}.yaml`: placeholder settings ({shown})")
        envs = sorted(
            {
                ref["env"]
                for slug in chosen
                for ref in credential_refs(SERVICES[chosen[slug][0].service], slug).values()
            }
        )
        if envs:
            self.report.notes.append(
                "credentials are references to environment variables, set them where the "
                "gateway runs: " + ", ".join(f"`{e}`" for e in envs)
            )
        self.report.notes.extend(f"{n}: fill them in" for n in settings_notes)
        return files

    def choose(
        self, entries: Iterable[PriceEntry], select: Mapping[str, str] | None
    ) -> dict[str, list[PriceEntry]]:
        """One entry per (integration, model name); the others are reported as skipped."""
        by_model: dict[tuple[str, str], list[PriceEntry]] = defaultdict(list)
        for entry in entries:
            if select is not None and entry.group not in select:
                self.report.skip(
                    entry.key, "not selected (--integration)", f"integration `{entry.group}`"
                )
                continue
            slug = select[entry.group] if select is not None else entry.group
            by_model[(slug, entry.name)].append(entry)
        chosen: dict[str, list[PriceEntry]] = defaultdict(list)
        parts = {k: [e for e in v if e.part] for k, v in by_model.items()}
        for (slug, name), candidates in by_model.items():
            candidates = [e for e in candidates if not e.part]
            if not candidates:
                self.orphans(parts[(slug, name)])
                continue
            candidates.sort(key=PriceEntry.rank)
            kept = candidates[0]
            chosen[slug].append(kept)
            self.report.converted += 1
            self.report.converted_keys.append(kept.key)
            for other in candidates[1:]:
                if other.same_content(kept):
                    reason, detail = "duplicate of another entry", "same model and prices as"
                elif dict(other.prices) == dict(kept.prices):
                    reason, detail = "duplicate of another entry", "same prices (other limits) as"
                else:
                    reason, detail = "conflicts with another entry", "different prices; kept"
                self.report.skip(other.key, reason, f"{detail} `{kept.key}` (`{name}` on {slug})")
            self.attach(kept, sorted(parts[(slug, name)], key=PriceEntry.rank))
        return dict(chosen)

    def attach(self, kept: PriceEntry, parts: list[PriceEntry]) -> None:
        """Regional and long-context entries become tables of the model's own entry."""
        for part in parts:
            kind, value = part.part or ("", "")
            if kind == "region" and isinstance(value, str):
                if value in kept.tables.regions:
                    self.report.skip(part.key, "duplicate of another entry",
                                     f"a second `{value}` price of `{kept.key}`")  # fmt: skip
                    continue
                kept.tables.regions[value] = Table(dict(part.prices), dict(part.tables.tiers))
            elif isinstance(value, int):
                kept.tables.add_tier(value, part.prices)
                for variant, table in part.tables.variants.items():
                    kept.tables.add_tier(value, table.prices, variant)
            self.report.converted += 1
            self.report.converted_keys.append(part.key)

    def orphans(self, parts: list[PriceEntry]) -> None:
        for part in parts:
            kind, value = part.part or ("", "")
            if kind == "region":
                reason = "regional price of a model with no global price"
            else:
                reason = "long-context tier of a model with no base price"
            self.report.skip(part.key, reason, f"`{part.name}` ({kind} {value})")

    def integration_file(self, slug: str, service: Service) -> str:
        integration: dict[str, Any] = {
            "kind": "Integration",
            "slug": slug,
            "name": f"{service.title} (imported)",
            "service": service.id,
            "credentials": credential_refs(service, slug),
        }
        settings = placeholder_settings(service)
        if settings:
            integration["settings"] = settings
        if service.base_url is None:
            integration["base_url"] = PLACEHOLDER_BASE_URL
        provider = {"kind": "Provider", "slug": slug, "integration": slug}
        return dump([([], integration), ([], provider)])

    def models_file(self, slug: str, service: Service, models: list[PriceEntry]) -> str:
        docs = []
        for m in models:
            known = self.registry.lookup(service.id, m.name) is not None
            what = "overrides the built-in model" if known else "custom model"
            doc: dict[str, Any] = {"kind": "Model", "name": m.name, "integration": slug}
            if m.context_window is not None:
                doc["context_window"] = m.context_window
            if m.max_output_tokens is not None:
                doc["max_output_tokens"] = m.max_output_tokens
            if m.prices:
                doc["pricing"] = render(m.prices, m.tables, self.report.caveats)
            docs.append(([f"{self.origin}: {m.key} ({what})"], doc))
        overrides = sum(1 for m in models if self.registry.lookup(service.id, m.name))
        header = (
            f"{len(models)} models on `{slug}` ({service.id}): {overrides} override the registry"
        )
        docs[0] = ([header, *docs[0][0]], docs[0][1])
        return dump(docs)


def parse_selection(values: Iterable[str]) -> dict[str, str] | None:
    """`--integration GROUP[=SLUG]` values -> {group: slug}; None when none were given.

    GROUP is a default integration slug of the import (a service id such as `openai`, or
    `azure-ai`) or any spelling of a service (`azure`, `together_ai`)."""
    out: dict[str, str] = {}
    for value in values:
        group, _, slug = value.partition("=")
        group = group.strip()
        target = service_for(group)
        key = group if group in SEPARATE_INTEGRATIONS.values() else None
        if key is None and target is not None:
            key = target.group
        if key is None:
            raise InputError(
                f"--integration {value}: `{group}` is not a service "
                f"(one of: {', '.join(sorted(SERVICES))}, azure-ai)"
            )
        slug = slug.strip() or key
        if not SLUG_RE.match(slug):
            raise InputError(f"--integration {value}: `{slug}` is not a valid slug")
        if key in out and out[key] != slug:
            raise InputError(f"--integration names `{group}` twice")
        out[key] = slug
    if len(set(out.values())) != len(out):
        raise InputError("--integration: two services cannot share one integration slug")
    return out or None


__all__ = [
    "InputError",
    "PriceCatalog",
    "PriceEntry",
    "Target",
    "parse_selection",
    "service_for",
]
