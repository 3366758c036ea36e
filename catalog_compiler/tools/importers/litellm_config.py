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

import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from catalog_compiler.model.types import ENV_RE, HTTP_URL
from catalog_compiler.registry import Registry, builtin
from catalog_compiler.services import SERVICES, Service
from catalog_compiler.tools.importers import (
    PLACEHOLDER_SETTINGS,
    organization_doc,
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
    valid_model_name,
    whole,
)
from catalog_compiler.tools.importers.litellm_input import Creds, Deployment, Endpoint, load
from catalog_compiler.tools.importers.litellm_tables import (
    AZURE_BASE,
    COST_PARAMS,
    CREDENTIAL_PARAMS,
    DURATION,
    ENV_PREFIX,
    EPOCH,
    GENERATION_PARAMS,
    HANDLED_PARAMS,
    HINTS,
    LITELLM_DEFAULT_ENV,
    MODEL_INFO_USED,
    SETTING_PARAMS,
)


def run(path: Path, registry: Registry | None = None) -> tuple[dict[str, str], Report]:
    data = load(path)
    converter = ConfigImport(path.name, data, registry or builtin())
    return converter.convert(), converter.report


class ConfigImport:
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

    def note(self, text: str) -> None:
        self.report.notes.append(text)

    # -- the whole import -------------------------------------------------------------------

    def convert(self) -> dict[str, str]:
        model_list = self.data.get("model_list") or []
        self.report.total = len(model_list)
        for i, entry in enumerate(model_list):
            deployment = self.deployment(i, entry)
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

    # -- deployments ------------------------------------------------------------------------

    def deployment(self, index: int, entry: Any) -> Deployment | None:
        where = f"model_list[{index}]"
        if not isinstance(entry, dict):
            self.report.skip(where, "not a deployment", "not a mapping")
            return None
        model_name = entry.get("model_name")
        params = entry.get("litellm_params")
        if not isinstance(model_name, str) or not model_name.strip():
            self.report.skip(where, "not a deployment", "no `model_name`")
            return None
        where = f"{where} {model_name}"
        if not isinstance(params, dict):
            self.report.skip(where, "not a deployment", "no `litellm_params`")
            return None
        model = params.get("model")
        if not isinstance(model, str) or not model.strip():
            self.report.skip(where, "not a deployment", "no `litellm_params.model`")
            return None
        raw_info = entry.get("model_info")
        info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
        located = self.locate(where, model.strip(), params)
        if located is None:
            return None
        service, group, upstream = located
        literals: list[tuple[str, str]] = []
        endpoint = self.endpoint(where, service, group, params, literals)
        return Deployment(
            index, model_name, model, upstream, endpoint, params, info, entry, literals
        )

    def locate(
        self, where: str, model: str, params: Mapping[str, Any]
    ) -> tuple[Service, str, str] | None:
        """(service, integration group, upstream model name) of a litellm `model` string."""
        explicit = params.get("custom_llm_provider")
        prefix, _, rest = model.partition("/")
        if isinstance(explicit, str) and explicit:
            prefix, rest = explicit, (rest if service_for(prefix) else model)
        elif "/" not in model:
            prefix, rest = self.infer_provider(model), model
            if not prefix:
                self.report.skip(
                    where, "unknown provider", f"cannot tell the provider of `{model}`"
                )
                return None
        target = service_for(prefix)
        if target is None:
            self.report.skip(where, "unsupported provider", f"`{prefix}` (model `{model}`)")
            return None
        service = SERVICES[target.service]
        base = params.get("api_base") or params.get("base_url")
        if service.id == "openai" and isinstance(base, str) and "api.openai.com" not in base:
            service = SERVICES["openai-compatible"]  # LiteLLM's `openai/` + api_base idiom
            self.note(
                f"{where}: `openai/…` with its own `api_base` is an OpenAI-compatible server: "
                "service `openai-compatible`"
            )
        if service.id == "bedrock" and rest.split("/", 1)[0] in ("converse", "invoke"):
            rest = rest.split("/", 1)[1] if "/" in rest else ""
        if not rest or not valid_model_name(rest):
            self.report.skip(where, "no model name", f"`{model}` names no model")
            return None
        group = target.group if target.service == service.id else service.id
        return service, group, rest

    def infer_provider(self, model: str) -> str:
        """LiteLLM's guess for a bare model name, as far as we can tell."""
        if self.registry.lookup("openai", model) or re.match(
            r"(gpt-|o[1-9]|chatgpt|dall-e|text-embedding|whisper|tts-|davinci|babbage|ft:)", model
        ):
            return "openai"
        if model.startswith("claude"):
            return "anthropic"
        for service in sorted(self.registry.services):
            if self.registry.lookup(service, model):
                return service
        return ""

    def endpoint(
        self,
        where: str,
        service: Service,
        group: str,
        params: Mapping[str, Any],
        literals: list[tuple[str, str]],
    ) -> Endpoint:
        creds = Creds()
        accepted = set(service.credentials) | set(service.optional_credentials)
        for param, field_name in CREDENTIAL_PARAMS.items():
            if param not in params or params[param] in (None, ""):
                continue
            if field_name not in accepted:
                self.note(f"{where}: `{param}` has no place on service `{service.id}`: dropped")
                continue
            if not self.credential(field_name, params[param], creds):
                literals.append((param, field_name))
        for field_name in service.credentials:
            if field_name not in creds.refs and field_name not in creds.literals:
                env = LITELLM_DEFAULT_ENV.get(service.id)
                if field_name.startswith("aws_"):
                    env = field_name.upper()
                creds.refs[field_name] = {"env": env or env_name(group, field_name)}
        settings: dict[str, str] = {}
        base_url = self.base_url(where, service, params, settings)
        for param, setting in SETTING_PARAMS.items():
            value = params.get(param)
            if value is None or setting not in (*service.settings, *service.optional_settings):
                continue
            if isinstance(value, str) and value.startswith(ENV_PREFIX):
                self.note(
                    f"{where}: `{param}` is read from `{value[len(ENV_PREFIX) :]}` at run "
                    f"time; the catalog needs the value: set `settings.{setting}`"
                )
                continue
            settings[setting] = str(value)
        return Endpoint(service, group, creds, settings, base_url)

    @staticmethod
    def credential(field_name: str, value: Any, creds: Creds) -> bool:
        """Record a credential as a reference; False when it was a literal (kept only as
        a hash, to tell two keys apart: the value itself goes nowhere)."""
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            env = value[len(ENV_PREFIX) :].strip()
            if ENV_RE.match(env):
                creds.refs[field_name] = {"env": env}
                return True
        if field_name == "service_account_json" and isinstance(value, str) and _is_path(value):
            creds.refs[field_name] = {"file": value}
            return True
        creds.literals[field_name] = sha256(str(value).encode()).hexdigest()
        return False

    def base_url(
        self, where: str, service: Service, params: Mapping[str, Any], settings: dict[str, str]
    ) -> str | None:
        base = params.get("api_base") or params.get("base_url")
        if isinstance(base, str) and base.startswith(ENV_PREFIX):
            env = base[len(ENV_PREFIX) :]
            self.note(
                f"{where}: `api_base` is read from `{env}` at run time; a catalog `base_url` "
                "is a literal URL: set it (a placeholder is written where one is required)"
            )
            base = None
        if not isinstance(base, str) or not base.strip():
            return None
        base = base.strip()
        if service.id == "azure-openai":
            found = AZURE_BASE.match(base.rstrip("/"))
            if found:
                settings["resource_name"] = found[1]
                return None
        if not HTTP_URL.match(base):
            self.note(f"{where}: `api_base` is not an http(s) URL: dropped")
            return None
        parts = urlsplit(base)
        if "@" in parts.netloc or parts.query:  # user:password@ or ?key=…: maybe a secret
            self.note(f"{where}: `api_base` carries credentials or a query: dropped, set it")
            return None
        return base.rstrip("/")

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
        concurrency = whole(d.params.get("max_parallel_requests"))
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
            count = whole(value)
            if count is None and exact(value) == 0:
                count = 0
            if count is None:
                self.note(f"{where}: `{key}` is not a whole number: dropped")
                continue
            out.append({"limit": count, "unit": unit, "per": "minute"})
        return out

    def budget(self, where: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        limit = params.get("max_budget")
        if limit is None:
            return None
        amount = exact(limit)
        if amount is None or amount < 0:
            self.note(f"{where}: `max_budget` is not an amount: dropped")
            return None
        period = self.period(where, params.get("budget_duration"))
        if period is None:
            return None
        return {"limit": amount.normalize(), "unit": "usd", "period": period}

    def period(self, where: str, duration: Any) -> str | None:
        """A catalog budget period for a LiteLLM `budget_duration` (None: none fits)."""
        if duration is None:
            return "none"  # LiteLLM: a budget without a duration never resets
        found = DURATION.match(str(duration))
        if not found:
            self.note(f"{where}: `budget_duration: {duration}` is not a duration: budget dropped")
            return None
        n, unit = int(found[1]), found[2]
        if unit == "mo" and n == 1:
            return "monthly"
        days = _days(n, unit)
        if days is None or not 1 <= days <= 9999:
            self.note(
                f"{where}: `budget_duration: {duration}`: the catalog's budget periods are "
                "days, weeks or months: budget dropped"
            )
            return None
        # LiteLLM resets 1d at midnight, 7d on Monday, 30d on the 1st (calendar-aligned).
        named = {1: "daily", 7: "weekly", 30: "monthly"}.get(days)
        if named:
            return named
        self.needs_epoch = True
        return f"{days}d"

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
            whole(d.info.get("max_input_tokens")), whole(d.info.get("max_output_tokens"))
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

    # -- settings sections ------------------------------------------------------------------

    def organization(self) -> dict[str, Any]:
        settings = _section(self.data, "litellm_settings")
        general = _section(self.data, "general_settings")
        extra: dict[str, Any] = {}
        budget = self.budget("litellm_settings", settings)
        if budget is not None:
            extra["budgets"] = [budget]
            self.usd_budget_orgwide = True
        concurrency = whole(
            general.get("max_parallel_requests", general.get("global_max_parallel_requests"))
        )
        if concurrency is not None:
            extra["concurrency"] = concurrency
        timezone = settings.get("timezone")
        if timezone is not None and str(timezone).upper() != "UTC" and budget is not None:
            self.note(
                f"litellm_settings: budgets reset at midnight `{timezone}` in LiteLLM; "
                "catalog periods are UTC"
            )
        for key in sorted(settings):
            if key in ("max_budget", "budget_duration", "timezone", "default_team_settings"):
                continue
            self.not_carried(f"litellm_settings: `{key}`", key, settings[key])
        for key in sorted(general):
            if key in ("max_parallel_requests", "global_max_parallel_requests"):
                continue
            self.not_carried(f"general_settings: `{key}`", key, general[key])
        return organization_doc(f"Imported from {self.source}", **extra)

    def router_settings(self) -> None:
        router = _section(self.data, "router_settings")
        for key in sorted(router):
            if key == "provider_budget_config" and isinstance(router[key], dict):
                self.provider_budgets(router[key])
            elif key == "routing_strategy" and router[key] in ("simple-shuffle", None):
                continue  # LiteLLM's default: weighted random, as a loadbalance Config does
            else:
                self.not_carried(f"router_settings: `{key}`", key, router[key])

    def provider_budgets(self, config: Mapping[str, Any]) -> None:
        for provider, spec in sorted(config.items(), key=lambda kv: str(kv[0])):
            where = f"router_settings.provider_budget_config `{provider}`"
            target = service_for(str(provider))
            slugs = [
                s
                for s, e in sorted(self.endpoints.items())
                if target is not None and e.service.id == target.service
            ]
            if not isinstance(spec, dict) or len(slugs) != 1:
                why = "no" if not slugs else f"{len(slugs)}"
                self.note(f"{where}: {why} matching integrations: budget not carried over")
                continue
            params = {"max_budget": spec.get("budget_limit"), "budget_duration": spec.get(
                "time_period")}  # fmt: skip
            budget = self.budget(where, params)
            if budget is not None:
                self.integration_budgets[slugs[0]].append(budget)
                self.usd_budget_orgwide = True  # every route of that integration

    def teams(self) -> dict[str, dict[str, Any]]:
        teams = _section(self.data, "litellm_settings").get("default_team_settings")
        if not isinstance(teams, list):
            return {}
        taken: set[str] = set()
        out = {}
        for i, team in enumerate(teams):
            if not isinstance(team, dict) or not team.get("team_id"):
                self.note(f"litellm_settings.default_team_settings[{i}]: no `team_id`: skipped")
                continue
            team_id = str(team["team_id"])
            slug = unique_slug(slugify(team_id, fallback="team"), taken)
            where = f"team `{team_id}`"
            doc: dict[str, Any] = {"kind": "Workspace", "slug": slug, "name": team_id}
            budget = self.budget(where, team)
            if budget is not None:
                doc["budgets"] = [budget]
                self.usd_budget_orgwide = True  # conservative: its providers' models
            limits = [
                {"limit": n, "unit": unit, "per": "minute"}
                for key, unit in (("rpm_limit", "requests"), ("tpm_limit", "tokens"))
                if (n := whole(team.get(key))) is not None
            ]
            if limits:
                doc["rate_limits"] = limits
            models = team.get("models")
            if isinstance(models, list):
                doc["providers"] = sorted(
                    {f"@{d.provider}" for d in self.deployments if d.model_name in models}
                )
            for key in sorted(team):
                if key not in ("team_id", "max_budget", "budget_duration", "rpm_limit",
                               "tpm_limit", "models"):  # fmt: skip
                    self.not_carried(f"{where}: `{key}`", key, team[key])
            out[slug] = doc
        return out

    def other_sections(self) -> None:
        known = ("model_list", "litellm_settings", "general_settings", "router_settings")
        for key in sorted(self.data, key=str):
            if key in known:
                continue
            value = self.data[key]
            if key == "environment_variables" and isinstance(value, dict):
                names = ", ".join(f"`{n}`" for n in sorted(map(str, value)))
                self.note(
                    f"`environment_variables` ({names}): not carried over; the catalog only "
                    "references variables, set them in the gateway's environment"
                )
                continue
            self.not_carried(f"`{key}`", str(key), value)

    def not_carried(self, where: str, key: str, value: Any) -> None:
        """A report line; values are shown only when they cannot be secrets."""
        shown = ""
        if isinstance(value, bool | int | float) or value is None:
            shown = f" = {value}"
        elif isinstance(value, str) and value.startswith(ENV_PREFIX):
            shown = f" (from `{value[len(ENV_PREFIX) :]}`)"
        elif key in ("routing_strategy", "mode") and isinstance(value, str) and len(value) < 40:
            shown = f" = {value}"
        hint = HINTS.get(key)
        self.note(f"{where}{shown}: not carried over" + (f" ({hint})" if hint else ""))


def _days(n: int, unit: str) -> int | None:
    """Whole days in a LiteLLM duration, or None (minutes, 36h, 2mo …)."""
    if unit == "d":
        return n
    if unit == "w":
        return 7 * n
    if unit in ("h", "hr") and n % 24 == 0:
        return n // 24
    return None


def _where(d: Deployment) -> str:
    return f"model_list[{d.index}] {d.model_name}"


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _is_path(value: str) -> bool:
    return value.endswith(".json") and "\n" not in value and "{" not in value


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
