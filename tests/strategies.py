"""Hypothesis strategies for small, valid catalogs, written as documents (dicts) per file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

OPENAI_MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o4-mini", "gpt-5"]
ANTHROPIC_MODELS = ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]
SERVICES = {"openai": OPENAI_MODELS, "anthropic": ANTHROPIC_MODELS}
WORKSPACES = ["alpha", "beta", "gamma", "delta"]


def patterns_for(models: list[str]) -> st.SearchStrategy[list[str]]:
    """Allow/deny entries that match something: exact names or prefix globs."""
    choices = sorted(set(models) | {m[: max(3, len(m) // 2)] + "*" for m in models})
    return st.lists(st.sampled_from(choices), max_size=3, unique=True)


def limits() -> st.SearchStrategy[dict[str, Any]]:
    budget = st.fixed_dictionaries(
        {
            "limit": st.integers(0, 5000),
            "unit": st.sampled_from(["usd", "tokens", "requests"]),
            "period": st.sampled_from(["daily", "weekly", "monthly"]),
        }
    )
    rate = st.fixed_dictionaries(
        {
            "limit": st.integers(0, 1000),
            "unit": st.sampled_from(["requests", "tokens"]),
            "per": st.sampled_from(["second", "minute", "hour"]),
        }
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "budgets": st.lists(budget, max_size=2, unique_by=lambda b: (b["unit"], b["period"])),
            "rate_limits": st.lists(rate, max_size=2, unique_by=lambda r: (r["unit"], r["per"])),
            "concurrency": st.integers(1, 100),
        },
    )


@st.composite
def catalogs(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    """file name -> documents. Every reference resolves; access rules are random."""
    files: dict[str, list[dict[str, Any]]] = {}
    org: dict[str, Any] = {
        "kind": "Organization",
        "version": 1,
        "name": "Prop Org",
        **draw(limits()),
    }
    if draw(st.booleans()):
        org["models"] = {"deny": draw(patterns_for(OPENAI_MODELS + ANTHROPIC_MODELS))}
    files["catalog.yaml"] = [org]
    workspaces = draw(st.lists(st.sampled_from(WORKSPACES), min_size=1, max_size=4, unique=True))
    integrations = []
    for i, service in enumerate(draw(st.lists(st.sampled_from(sorted(SERVICES)), min_size=1,
                                              max_size=3))):  # fmt: skip
        doc: dict[str, Any] = {
            "kind": "Integration", "slug": f"int-{i}", "service": service,
            "credentials": {"api_key": {"env": f"KEY_{i}"}}, **draw(limits()),
        }  # fmt: skip
        if draw(st.booleans()):
            doc["models"] = {"allow": draw(patterns_for(SERVICES[service]).filter(bool))}
        if draw(st.booleans()):
            doc["workspaces"] = draw(st.lists(st.sampled_from(workspaces), max_size=3, unique=True))
        integrations.append(doc)
    files["integrations.yaml"] = integrations
    providers = []
    for j in range(draw(st.integers(1, 4))):
        integ = draw(st.sampled_from(integrations))
        doc = {
            "kind": "Provider",
            "slug": f"prov-{j}",
            "integration": integ["slug"],
            **draw(limits()),
        }
        models = SERVICES[integ["service"]]
        if draw(st.booleans()):
            doc["models"] = {"deny": draw(patterns_for(models))}
        providers.append(doc)
    files["providers.yaml"] = providers
    docs = []
    for slug in workspaces:
        doc = {"kind": "Workspace", "slug": slug, **draw(limits())}
        if draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(providers), max_size=3, unique_by=id))
            doc["providers"] = [f"@{p['slug']}" for p in chosen]
        if draw(st.booleans()):
            doc["models"] = {"deny": draw(patterns_for(OPENAI_MODELS + ANTHROPIC_MODELS))}
        docs.append(doc)
    files["workspaces.yaml"] = docs
    return files


def write_catalog(root: Path, files: dict[str, list[dict[str, Any]]]) -> Path:
    """Each document as JSON (which is YAML), `---` between documents."""
    root.mkdir(parents=True, exist_ok=True)
    for name, docs in files.items():
        (root / name).write_text("\n---\n".join(json.dumps(d, indent=1) for d in docs) + "\n")
    return root
