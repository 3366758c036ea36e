"""`catalogc import litellm-config`: a LiteLLM proxy config -> a starting catalog.

How LiteLLM's concepts land in the catalog:
- each `model_list` entry (a *deployment*) becomes a Provider (`@slug` from its
  `model_name`) allowed to reach exactly its upstream model; its `rpm`/`tpm` become the
  provider's rate limits, `max_parallel_requests` its concurrency, `max_budget` +
  `budget_duration` its budget, generation params (`temperature`, `max_tokens` …) its
  `default_params`;
- deployments sharing a service, credentials and endpoint share one Integration;
  `os.environ/VAR` becomes `{env: VAR}`, a literal key becomes `{env: <SUGGESTED>}` (the
  key itself is never written anywhere, not even in the report);
- a model the built-in registry does not know becomes a custom Model on its provider, with
  the deployment's prices (USD per token -> per 1M, exactly) when it has them;
- a `model_name` served by several deployments (LiteLLM load balancing) becomes a
  loadbalance routing Config over their providers;
- `litellm_settings.max_budget`/`budget_duration` become the Organization's budget, teams in
  `default_team_settings` become Workspaces.
Everything else is listed in the report (fallbacks, routing strategies, callbacks,
guardrails, caching, unknown providers, …).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from catalog_compiler.model.types import MAX_CONCURRENCY, MAX_COUNT, MAX_MODEL_TOKENS
from catalog_compiler.registry import Registry, builtin
from catalog_compiler.tools.importers import (
    PLACEHOLDER_SETTINGS,
    pricing_block,
    service_for,
    token_limits,
)
from catalog_compiler.tools.importers.emit import (
    Report,
    dump,
    env_name,
    exact,
    per_request_problem,
    price_problem,
    slugify,
    unique_slug,
    whole,
)
from catalog_compiler.tools.importers.litellm_deployments import read_deployment
from catalog_compiler.tools.importers.litellm_input import Deployment, Endpoint, load
from catalog_compiler.tools.importers.litellm_settings import SettingsSections
from catalog_compiler.tools.importers.litellm_tables import (
    COST_PARAMS,
    EPOCH,
    GENERATION_PARAMS,
    HANDLED_PARAMS,
    MODEL_INFO_USED,
)


def run(path: Path, registry: Registry | None = None) -> tuple[dict[str, str], Report]:
    data = load(path)
    converter = ConfigImport(path.name, data, registry or builtin())
    return converter.convert(), converter.report


class ConfigImport(SettingsSections):
    """The import's orchestration and its documents; deployments are read by
    litellm_deployments.py, the settings sections are SettingsSections' (litellm_settings.py)."""

    def __init__(self, source: str, data: dict[str, Any], registry: Registry) -> None:
        self.source = source
        self.data = data
        self.registry = registry
        self.report = Report("Import of a LiteLLM proxy config", source, list_skipped=True)
        self.deployments: list[Deployment] = []
        self.integrations: dict[tuple[Any, ...], str] = {}  # endpoint identity -> slug
        self.endpoints: dict[str, Endpoint] = {}  # slug -> endpoint
        self.integration_budgets: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.needs_epoch = False
        self.usd_budget_orgwide = False

    # -- the whole import -------------------------------------------------------------------

    def convert(self) -> dict[str, str]:
        model_list = self.data.get("model_list") or []
        self.report.total = len(model_list)
        for i, entry in enumerate(model_list):
            deployment = read_deployment(i, entry, self.registry, self.report)
            if deployment is not None:
                self.deployments.append(deployment)
        self.report.converted = len(self.deployments)
        self.report.converted_keys = [_where(d) for d in self.deployments]
        self.assign_slugs()
        org = self.organization()
        self.router_settings()
        workspaces = self.teams()
        self.other_sections()
        files = {}
        for slug, endpoint in sorted(self.endpoints.items()):
            files[f"integrations/{slug}.yaml"] = dump([([], self.integration_doc(slug, endpoint))])
        for d in self.deployments:
            files[f"providers/{d.provider}.yaml"] = dump(self.provider_docs(d))
        for slug, config in self.configs().items():
            files[f"configs/{slug}.yaml"] = dump([([], config)])
        for slug, workspace in workspaces.items():
            files[f"workspaces/{slug}.yaml"] = dump([([], workspace)])
        if self.needs_epoch:  # known only now: any level's budget may have asked for it
            org["epoch"] = EPOCH
            self.note(
                f"the Organization's `epoch` is set to {EPOCH}: `<N>d` budget periods count "
                "from it (LiteLLM counted from when the budget started); adjust it"
            )
        files["catalog.yaml"] = dump([([f"imported from {self.source}"], org)])
        return files

    # -- slugs ------------------------------------------------------------------------------

    def assign_slugs(self) -> None:
        taken_integrations: set[str] = set()
        taken_providers: set[str] = set()
        for d in self.deployments:
            identity = d.endpoint.identity()
            slug = self.integrations.get(identity)
            if slug is None:
                slug = unique_slug(d.endpoint.group, taken_integrations)
                self.integrations[identity] = slug
                self.endpoints[slug] = d.endpoint
            d.integration = slug
            d.provider = unique_slug(
                slugify(d.model_name, fallback=d.endpoint.group), taken_providers
            )
        used = {
            ref["env"] for e in self.endpoints.values() for ref in e.creds.refs.values()
            if "env" in ref
        }  # fmt: skip
        placeholders: dict[tuple[str, str], str] = {}
        for slug, endpoint in sorted(self.endpoints.items()):
            for field_name in sorted(endpoint.creds.literals):
                env = env_name(slug, field_name)
                if env in used:
                    env = env_name(slug, field_name, "imported")
                used.add(env)
                placeholders[(slug, field_name)] = env
                endpoint.creds.refs[field_name] = {"env": env}
        for d in self.deployments:
            for param, field_name in d.literals:
                env = placeholders[(d.integration, field_name)]
                self.note(
                    f"{_where(d)}: `{param}` is a literal secret: "
                    f"not copied; the catalog reads `{{env: {env}}}`: put the key there "
                    "(and rotate it if the config was ever shared)"
                )

    # -- documents --------------------------------------------------------------------------

    def integration_doc(self, slug: str, endpoint: Endpoint) -> dict[str, Any]:
        service = endpoint.service
        doc: dict[str, Any] = {"kind": "Integration", "slug": slug, "service": service.id}
        doc["credentials"] = dict(sorted(endpoint.creds.refs.items()))
        settings = dict(endpoint.settings)
        for name in service.settings:
            if name not in settings and not (name == "resource_name" and endpoint.base_url):
                settings[name] = _placeholder(service.id, name)
                self.note(f"`integrations/{slug}.yaml`: `settings.{name}` is a placeholder")
        if settings:
            doc["settings"] = dict(sorted(settings.items()))
        if endpoint.base_url:
            doc["base_url"] = endpoint.base_url
        elif service.base_url is None:
            doc["base_url"] = "http://localhost:8000/v1"
            self.note(f"`integrations/{slug}.yaml`: `base_url` is a placeholder")
        if self.integration_budgets.get(slug):
            doc["budgets"] = self.integration_budgets[slug]
        return doc

    def provider_docs(self, d: Deployment) -> list[tuple[list[str], dict[str, Any]]]:
        where = _where(d)
        doc: dict[str, Any] = {
            "kind": "Provider",
            "slug": d.provider,
            "integration": d.integration,
            "name": d.model_name,
        }
        if d.upstream != "*":
            doc["models"] = {"allow": [d.upstream]}
        rate_limits = self.rate_limits(where, d)
        if rate_limits:
            doc["rate_limits"] = rate_limits
        concurrency = whole(d.params.get("max_parallel_requests"), MAX_CONCURRENCY)
        if concurrency is not None:
            doc["concurrency"] = concurrency
        budget = self.budget(where, d.params)
        if budget is not None:
            doc["budgets"] = [budget]
        defaults = {k: _plain(v) for k, v in sorted(d.params.items()) if k in GENERATION_PARAMS}
        if defaults:
            doc["default_params"] = defaults
        self.leftovers(where, d)
        docs = [([f"{where}: {d.model}"], doc)]
        model = self.model_doc(where, d, usd_budget=budget is not None)
        if model is not None:
            docs.append(model)
        return docs

    def rate_limits(self, where: str, d: Deployment) -> list[dict[str, Any]]:
        out = []
        for key, unit in (("rpm", "requests"), ("tpm", "tokens")):
            value = d.params.get(key, d.entry.get(key))
            if value is None:
                continue
            count = whole(value, MAX_COUNT)
            if count is None and exact(value) == 0:
                count = 0
            if count is None:
                self.note(f"{where}: `{key}` is not a whole number up to {MAX_COUNT:,}: dropped")
                continue
            out.append({"limit": count, "unit": unit, "per": "minute"})
        return out

    def model_doc(
        self, where: str, d: Deployment, usd_budget: bool
    ) -> tuple[list[str], dict[str, Any]] | None:
        """A Model on the provider: a custom model, or the deployment's own prices."""
        if "*" in d.upstream:
            return None
        service = d.endpoint.service
        known = self.registry.lookup(service.id, d.upstream)
        sources = {**d.info, **d.params}
        prices = self.prices(where, sources)
        if known is not None and not prices:
            return None
        doc: dict[str, Any] = {"kind": "Model", "name": d.upstream, "provider": d.provider}
        base = self.base_model(where, d) if known is None else None
        if base is not None:
            doc["base_model"] = base
        context, max_output, _ = token_limits(
            whole(d.info.get("max_input_tokens"), MAX_MODEL_TOKENS),
            whole(d.info.get("max_output_tokens"), MAX_MODEL_TOKENS),
        )
        if context is not None:
            doc["context_window"] = context
        if max_output is not None:
            doc["max_output_tokens"] = max_output
        priced = bool(prices) or known is not None or base is not None
        if not priced and (usd_budget or self.usd_budget_orgwide):
            prices = {"input": Decimal(0), "output": Decimal(0)}
            self.note(
                f"{where}: `{d.upstream}` has no known price but a USD budget governs it: "
                "priced at 0 (as LiteLLM charged it); set real prices"
            )
        if prices:
            doc["pricing"] = pricing_block(prices)
        what = "price override" if known is not None else "custom model"
        return [f"{what} of deployment {where}"], doc

    def base_model(self, where: str, d: Deployment) -> str | None:
        base = d.info.get("base_model")
        if not isinstance(base, str):
            return None
        name = base.split("/", 1)[1] if service_for(base.split("/", 1)[0]) else base
        service = d.endpoint.service.id
        if self.registry.lookup(service, name) is None:
            self.note(
                f"{where}: `model_info.base_model: {base}` is not a built-in model of "
                f"`{service}`: not carried over (prices and limits must be given)"
            )
            return None
        return name

    def prices(self, where: str, sources: Mapping[str, Any]) -> dict[str, Decimal]:
        prices: dict[str, Decimal] = {}
        for param, name in COST_PARAMS.items():
            per_token = exact(sources.get(param))
            if per_token is None:
                continue
            per_million = per_token * 1_000_000
            problem = price_problem(per_million)
            if problem is not None:
                self.note(f"{where}: `{param}` dropped: {problem}")
                continue
            prices[name] = per_million.normalize()
        fee = exact(sources.get("input_cost_per_request"))
        if fee is not None and per_request_problem(fee) is None:
            prices["per_request"] = fee.normalize()
        for unit in ("input_cost_per_second", "output_cost_per_second"):
            if sources.get(unit) is not None:
                self.note(f"{where}: `{unit}`: the catalog prices tokens, not seconds: dropped")
        return prices

    def leftovers(self, where: str, d: Deployment) -> None:
        for key in sorted(d.params):
            if key not in HANDLED_PARAMS:
                self.not_carried(f"{where}: `litellm_params.{key}`", key, d.params[key])
        for key in sorted(d.info):
            if key not in MODEL_INFO_USED:
                self.not_carried(f"{where}: `model_info.{key}`", key, d.info[key])
        for key in sorted(d.entry):
            if key not in ("model_name", "litellm_params", "model_info", "rpm", "tpm"):
                self.not_carried(f"{where}: `{key}`", key, d.entry[key])

    def configs(self) -> dict[str, dict[str, Any]]:
        """A loadbalance Config for each model_name served by several deployments."""
        groups: dict[str, list[Deployment]] = defaultdict(list)
        for d in self.deployments:
            groups[d.model_name].append(d)
        taken: set[str] = set()
        out = {}
        for name, members in groups.items():
            if len(members) < 2:
                continue
            if any("*" in d.upstream for d in members):
                self.note(f"model group `{name}` mixes wildcard deployments: no Config written")
                continue
            slug = unique_slug(slugify(name, fallback="group"), taken)
            targets = []
            for d in members:
                target: dict[str, Any] = {"provider": f"@{d.provider}"}
                weight = exact(d.params.get("weight"))
                if weight is not None and weight >= 0:
                    target["weight"] = weight.normalize()
                target["override_params"] = {"model": d.upstream}
                targets.append(target)
            out[slug] = {
                "kind": "Config",
                "slug": slug,
                "name": name,
                "workspaces": "*",
                "config": {"strategy": {"mode": "loadbalance"}, "targets": targets},
            }
            self.note(
                f"model group `{name}` ({len(members)} deployments) -> Config `{slug}` "
                f"(loadbalance over {', '.join(f'@{d.provider}' for d in members)}): clients "
                f"send `config: {slug}` where LiteLLM took `model: {name}`"
            )
        return out


def _where(d: Deployment) -> str:
    return f"model_list[{d.index}] {d.model_name}"


def _placeholder(service: str, setting: str) -> str:
    return PLACEHOLDER_SETTINGS.get((service, setting), "change-me")


def _plain(value: Any) -> Any:
    """A YAML-loaded value as plain data the emitter writes (dates as text)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, float):
        return exact(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


__all__ = ["ConfigImport", "load", "run"]
