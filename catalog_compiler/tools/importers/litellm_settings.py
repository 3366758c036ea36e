"""The parts of a LiteLLM proxy config beyond `model_list`, for `ConfigImport`
(litellm_config.py): `litellm_settings` and `general_settings` become the Organization,
`default_team_settings` Workspaces, `router_settings.provider_budget_config` integration
budgets; everything else is listed as not carried over. With them, the budget translation
every level shares (`max_budget` + `budget_duration` -> a catalog budget). A mixin: these
methods read and fill the import's own state (its report, deployments, integrations, and
whether a budget needs the Organization's `epoch` or prices)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog_compiler.model.common import MAX_BUDGET_USD, USD_PLACES
from catalog_compiler.model.types import MAX_CONCURRENCY, MAX_COUNT
from catalog_compiler.tools.importers import organization_doc, service_for
from catalog_compiler.tools.importers.emit import (
    Report,
    exact,
    places,
    slugify,
    unique_slug,
    whole,
)
from catalog_compiler.tools.importers.litellm_input import Deployment, Endpoint
from catalog_compiler.tools.importers.litellm_tables import DURATION, ENV_PREFIX, HINTS


class SettingsSections:
    source: str
    data: dict[str, Any]
    report: Report
    deployments: list[Deployment]
    endpoints: dict[str, Endpoint]  # integration slug -> endpoint
    integration_budgets: dict[str, list[dict[str, Any]]]
    needs_epoch: bool
    usd_budget_orgwide: bool

    def note(self, text: str) -> None:
        self.report.notes.append(text)

    # -- budgets, at every level ----------------------------------------------------------

    def budget(self, where: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        limit = params.get("max_budget")
        if limit is None:
            return None
        amount = exact(limit)
        if amount is None or not 0 <= amount <= MAX_BUDGET_USD or places(amount) > USD_PLACES:
            self.note(f"{where}: `max_budget` is not an amount up to {MAX_BUDGET_USD:,} USD "
                      f"(at most {USD_PLACES} decimal places): dropped")  # fmt: skip
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
            general.get("max_parallel_requests", general.get("global_max_parallel_requests")),
            MAX_CONCURRENCY,
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
                if (n := whole(team.get(key), MAX_COUNT)) is not None
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


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}
