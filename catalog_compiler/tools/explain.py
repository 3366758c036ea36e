"""`explain`: why a workspace may (or may not) use a model, its counter chain and its price.

Answers come from the runtime's index of the bundle, so they are what the router does.
"""

from __future__ import annotations

from typing import Any

from catalog_compiler.check.secrets import is_credential_name
from catalog_compiler.diagnostics.redact import mask
from catalog_compiler.tools.explain_aliases import (
    alias_json,
    aliases_listing,
    explain_config_alias,
    find_alias,
    not_an_alias,
)
from catalog_compiler.tools.price_words import variant_lines, variants_json
from runtime.bundle.access import Rules, qualified
from runtime.bundle.errors import RequestError
from runtime.bundle.load import PRICE_FIELDS, Bundle, Counter, ModelInfo, Provider, effective


def split_target(text: str) -> tuple[str, str]:
    if not text.startswith("@") or "/" not in text:
        raise ValueError(f"`{text}` is not a model string: write `@provider/model`")
    provider, _, model = text[1:].partition("/")
    return provider, model


def limit_json(counter: Counter, bundle: Bundle) -> dict[str, Any]:
    def origin(tail: str) -> str | None:
        return bundle.origin(f"counters/{counter.id}/{tail}")

    return {
        "counter": counter.id,
        "budgets": [
            {"unit": b.unit, "period": b.period, "limit": str(b.limit),
             "alert_threshold": str(b.alert_threshold) if b.alert_threshold else None,
             "origin": origin(f"budgets/{b.key}")}
            for b in counter.budgets
        ],
        "rate_limits": [
            {"unit": r.unit, "per": r.per, "limit": r.limit, "burst": r.burst,
             "origin": origin(f"rate_limits/{r.key}")}
            for r in counter.rate_limits
        ],
        "concurrency": counter.concurrency,
        "concurrency_origin": origin("concurrency") if counter.concurrency is not None else None,
    }  # fmt: skip


def effective_json(chain: tuple[Counter, ...]) -> dict[str, Any]:
    eff = effective(chain)
    return {
        "budgets": {k: {"limit": str(b.limit), "counter": c} for k, (b, c) in eff.budgets.items()},
        "rate_limits": {
            k: {"limit": r.limit, "burst": r.burst, "counter": c}
            for k, (r, c) in eff.rate_limits.items()
        },
        "concurrency": {"limit": eff.concurrency[0], "counter": eff.concurrency[1]}
        if eff.concurrency
        else None,
    }


def rule_trail(bundle: Bundle, provider: Provider, model: str, ws: str) -> list[dict[str, Any]]:
    """Each level's verdict on the model, with the rule that decided it."""
    names = (model, qualified(provider.slug, model))
    levels: list[Rules] = [
        bundle.org_rules, provider.integration.rules, provider.rules, bundle.workspace(ws).rules
    ]  # fmt: skip
    trail = []
    for rules in levels:
        refusal = rules.refuse(names)
        if refusal is not None:
            trail.append({"level": rules.level, "verdict": "refused", "rule": refusal.rule,
                          "origin": bundle.origin(refusal.element)})  # fmt: skip
            break
        allow = next((p for p in rules.allow or () if any(p.matches(n) for n in names)), None)
        if allow is not None:
            rule = f"allows `{allow.text}`"
            origin = bundle.origin(f"{rules.key}/allow/{allow.text}")
        else:
            rule, origin = "sets no allow-list here (inherits)", None
        trail.append({"level": rules.level, "verdict": "passes", "rule": rule, "origin": origin})
    return trail


def explain_route(bundle: Bundle, workspace: str, target: str) -> dict[str, Any]:
    alias = find_alias(bundle, workspace, target)
    if alias is not None and alias.config is not None:
        return explain_config_alias(bundle, workspace, alias)
    if alias is not None:  # explained as its target, which decides everything
        out = explain_route(bundle, workspace, alias.target)
        return {**out, "alias": alias_json(bundle, workspace, alias)}
    if not target.startswith("@"):
        raise ValueError(not_an_alias(bundle, workspace, target))
    provider_slug, model = split_target(target)
    out = {"workspace": workspace, "target": target}
    try:
        decision = bundle.decide(workspace, provider_slug, model)
    except RequestError as exc:
        return {**out, "allowed": False, "status": exc.status, "reason": exc.message}
    provider = bundle.providers[provider_slug]
    out["allowed"] = decision.allowed
    if decision.refusal is not None:
        out["status"] = 403
        out["reason"] = decision.error().message
        out["decided_by"] = {
            "level": decision.refusal.level, "rule": decision.refusal.rule,
            "origin": decision.origin,
        }  # fmt: skip
    if bundle.provisioning(bundle.workspace(workspace), provider) is None:
        out["rules"] = rule_trail(bundle, provider, model, workspace)
    chain = bundle.chain(workspace, provider_slug)
    out["chain"] = [limit_json(c, bundle) for c in chain]
    out["effective"] = effective_json(chain)
    info = provider.models.get(model)
    if info is not None:
        quote = bundle.price(workspace, provider_slug, model)
        as_of = bundle.provenance.get("registry_as_of")
        out["model"] = {
            "mode": info.mode,
            "context_window": info.context_window,
            "max_output_tokens": info.max_output_tokens,
        }
        endpoint = endpoint_json(provider, info)
        if endpoint is not None:  # only when references or headers are declared
            out["endpoint"] = endpoint
        out["price"] = {
            name: {
                "usd_per_1m": str(value) if name != "per_request" else None,
                "usd": str(value) if name == "per_request" else None,
                "source": quote.sources.get(name, "registry"),
                "origin": bundle.origin(quote.elements[name]) if name in quote.elements else None,
                "registry_as_of": as_of if quote.sources.get(name) == "registry" else None,
            }
            for name in PRICE_FIELDS
            if (value := quote.prices.get(name)) is not None
        }
        variants = variants_json(quote.prices)
        if variants:  # long-context tiers, batch, service tiers, and where they came from
            out["price_variants"] = {
                **variants,
                "sources": {k: quote.sources.get(k, "registry") for k in variants},
                "lines": variant_lines(quote.prices),
            }
    return out


def endpoint_json(provider: Provider, info: ModelInfo) -> dict[str, Any] | None:
    """Where the model is called and with which custom headers, a reference shown as
    `env:NAME`/`file:PATH` (the compiler never reads one)."""
    integ = provider.integration
    layers = (integ, provider, info)
    if not any(level.refs or level.headers for level in layers):
        return None
    base = (info.refs.get("base_url") or info.base_url or provider.refs.get("base_url")
            or provider.base_url)  # fmt: skip
    headers: dict[str, str] = {}
    for level in layers:
        headers.update(level.headers)
        headers.update({k.removeprefix("header:"): ref for k, ref in level.refs.items()
                        if k.startswith("header:")})  # fmt: skip
    # A bundle is only sealed, not trusted: a literal secret one carries is never shown.
    shown = {k: "****" if is_credential_name(k) and not v.startswith(("env:", "file:"))
             else mask(v) for k, v in sorted(headers.items())}  # fmt: skip
    return {"base_url": mask(base) if isinstance(base, str) else base, "headers": shown}


def explain_workspace(bundle: Bundle, workspace: str) -> dict[str, Any]:
    ws = bundle.workspace(workspace)
    rows = []
    for provider, model in bundle.routes(workspace):
        info = bundle.providers[provider].models[model]
        quote = bundle.price(workspace, provider, model)
        eff = effective(bundle.chain(workspace, provider))
        rows.append(
            {
                "target": qualified(provider, model),
                "input": _str(quote.prices.input),
                "output": _str(quote.prices.output),
                "context_window": info.context_window,
                "max_output_tokens": info.max_output_tokens,
                "budgets": {k: str(b.limit) for k, (b, _) in eff.budgets.items()},
                "rate_limits": {k: r.limit for k, (r, _) in eff.rate_limits.items()},
            }
        )
    out: dict[str, Any] = {"workspace": ws.slug, "counter": ws.counter, "routes": rows}
    if ws.aliases:
        out["aliases"] = aliases_listing(bundle, workspace)
    return out


def _str(value: object) -> str | None:
    return None if value is None else str(value)
