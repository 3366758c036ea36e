"""The bundle's counters: one pool of limits (budgets, rate limits, concurrency) per
level, the Organization, each integration, provider and workspace. A provider takes its
integration's `provider_defaults`, a workspace the Organization's `workspace_defaults`, for
what it does not declare itself; such limits are marked defaulted (never reported as a
limit that cannot bind: they are the parent's choice)."""

from __future__ import annotations

from typing import Any

from catalog_compiler.model.common import Limits
from catalog_compiler.resolve.context import Context, Located, Path
from catalog_compiler.resolve.values import dec

ORG_COUNTER = "organization"


def counter_id(level: str, slug: str) -> str:
    return f"{level}/{slug}"


def counters(ctx: Context) -> dict[str, Any]:
    org = ctx.org
    out = {ORG_COUNTER: counter(ctx, ORG_COUNTER, org, ctx.organization, None, None)}
    for slug, located in ctx.integrations.items():
        cid = counter_id("integration", slug)
        out[cid] = counter(ctx, cid, located.model, located, None, None)
    for slug, located in ctx.providers.items():
        cid = counter_id("provider", slug)
        integ_loc = ctx.integrations[located.model.integration]
        defaults = integ_loc.model.provider_defaults
        out[cid] = counter(ctx, cid, located.model, located, defaults, integ_loc,
                           ("provider_defaults",))  # fmt: skip
    for slug, located in ctx.workspaces.items():
        cid = counter_id("workspace", slug)
        out[cid] = counter(ctx, cid, located.model, located, org.workspace_defaults,
                           ctx.organization, ("workspace_defaults",))  # fmt: skip
    return out


def counter(
    ctx: Context, cid: str, own: Limits, own_at: Located, defaults: Limits | None,
    defaults_at: Located | None, defaults_path: Path = (),
) -> dict[str, Any]:  # fmt: skip
    """One pool: its own limits, plus defaults for the (unit, period) it did not declare."""
    budgets: dict[str, Any] = {}
    rates: dict[str, Any] = {}
    layers: list[tuple[Limits, Located, Path]] = [(own, own_at, ())]
    if defaults is not None and defaults_at is not None:
        layers.append((defaults, defaults_at, defaults_path))
    for limits, located, path in layers:
        from_defaults = limits is defaults
        for i, b in enumerate(limits.budgets):
            key = f"{b.unit}/{b.period}"
            if key not in budgets:
                budgets[key] = {
                    "unit": b.unit, "period": b.period,
                    "limit": dec(b.limit) if b.unit == "usd" else int(b.limit),
                }  # fmt: skip
                if b.alert_threshold is not None:
                    budgets[key]["alert_threshold"] = dec(b.alert_threshold)
                element = f"counters/{cid}/budgets/{key}"
                ctx.remember(element, located, (*path, "budgets", i))
                if from_defaults:
                    ctx.defaulted.add(element)
        for i, r in enumerate(limits.rate_limits):
            key = f"{r.unit}/{r.per}"
            if key not in rates:
                burst = r.burst if r.burst is not None else r.limit
                rates[key] = {"unit": r.unit, "per": r.per, "limit": r.limit, "burst": burst}
                element = f"counters/{cid}/rate_limits/{key}"
                ctx.remember(element, located, (*path, "rate_limits", i))
                if from_defaults:
                    ctx.defaulted.add(element)
    concurrency = own.concurrency
    if concurrency is not None:
        ctx.remember(f"counters/{cid}/concurrency", own_at, ("concurrency",))
    elif defaults is not None and defaults.concurrency is not None and defaults_at is not None:
        concurrency = defaults.concurrency
        element = f"counters/{cid}/concurrency"
        ctx.remember(element, defaults_at, (*defaults_path, "concurrency"))
        ctx.defaulted.add(element)
    out: dict[str, Any] = {
        "budgets": [budgets[k] for k in sorted(budgets)],
        "rate_limits": [rates[k] for k in sorted(rates)],
    }
    if concurrency is not None:
        out["concurrency"] = concurrency
    return out
