"""Laws of resolution, as properties over random catalogs (derandomized in CI):
narrowing never widens access, effective limits never exceed an ancestor's, and an unrelated
workspace changes nobody else's routes."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from catalog_compiler.compiler import compile_catalog
from runtime.bundle import Bundle, effective
from tests.strategies import ANTHROPIC_MODELS, OPENAI_MODELS, catalogs, patterns_for, write_catalog

Files = dict[str, list[dict[str, Any]]]


def index_of(files: Files) -> Bundle:
    with tempfile.TemporaryDirectory() as tmp:
        compiled = compile_catalog(write_catalog(Path(tmp) / "c", files))
    assert not compiled.validation.errors, compiled.validation.errors[:3]
    assert compiled.index is not None
    return compiled.index


def routes(index: Bundle) -> dict[str, set[tuple[str, str]]]:
    return {ws: set(index.routes(ws)) for ws in index.workspaces}


def documents(files: Files) -> list[dict[str, Any]]:
    return [d for docs in files.values() for d in docs]


@settings(max_examples=60)
@given(catalogs(), st.data())
def test_removing_an_allow_entry_never_adds_a_route(files: Files, data: st.DataObject) -> None:
    with_allow = [d for d in documents(files) if d.get("models", {}).get("allow")]
    assume(with_allow)
    before = routes(index_of(files))
    narrowed = copy.deepcopy(files)
    doc = data.draw(
        st.sampled_from([d for d in documents(narrowed) if d.get("models", {}).get("allow")])
    )
    allow = doc["models"]["allow"]
    allow.pop(data.draw(st.integers(0, len(allow) - 1)))
    after = routes(index_of(narrowed))
    for ws, got in after.items():
        assert got <= before[ws], (ws, got - before[ws])


@settings(max_examples=60)
@given(catalogs(), st.data())
def test_adding_a_deny_never_adds_a_route(files: Files, data: st.DataObject) -> None:
    before = routes(index_of(files))
    narrowed = copy.deepcopy(files)
    doc = data.draw(st.sampled_from(documents(narrowed)))
    new = data.draw(patterns_for(OPENAI_MODELS + ANTHROPIC_MODELS).filter(bool))
    models = doc.setdefault("models", {})
    models["deny"] = sorted(set(models.get("deny", [])) | set(new))
    after = routes(index_of(narrowed))
    for ws, got in after.items():
        assert got <= before[ws]
    denied = set(new)
    if doc["kind"] in ("Organization", "Workspace"):  # these levels see every route of theirs
        for ws, got in after.items():
            if doc["kind"] == "Organization" or doc.get("slug") == ws:
                assert not {r for r in got if r[1] in denied}


@settings(max_examples=60)
@given(catalogs())
def test_effective_limit_never_exceeds_any_ancestor(files: Files) -> None:
    index = index_of(files)
    for ws in index.workspaces:
        for provider in index.usable_providers(ws):
            chain = index.chain(ws, provider.slug)
            eff = effective(chain)
            for counter in chain:
                for b in counter.budgets:
                    assert eff.budgets[b.key][0].limit <= b.limit
                for r in counter.rate_limits:
                    assert eff.rate_limits[r.key][0].limit <= r.limit
                if counter.concurrency is not None:
                    assert eff.concurrency is not None
                    assert eff.concurrency[0] <= counter.concurrency


@settings(max_examples=60)
@given(catalogs(), st.data())
def test_an_unrelated_workspace_changes_no_other_route(files: Files, data: st.DataObject) -> None:
    before = index_of(files)
    grown = copy.deepcopy(files)
    providers = [d["slug"] for d in grown["providers.yaml"]]
    newcomer: dict[str, Any] = {"kind": "Workspace", "slug": "zeta"}
    if data.draw(st.booleans()):
        newcomer["providers"] = [
            f"@{p}"
            for p in data.draw(st.lists(st.sampled_from(providers), max_size=2, unique=True))
        ]
    if data.draw(st.booleans()):
        newcomer["budgets"] = [{"limit": 1, "unit": "usd", "period": "daily"}]
    grown["workspaces.yaml"].append(newcomer)
    after = index_of(grown)
    for ws in before.workspaces:
        assert set(after.routes(ws)) == set(before.routes(ws))
        for provider, model in before.routes(ws):
            assert (
                after.price(ws, provider, model).prices == before.price(ws, provider, model).prices
            )
            assert after.chain(ws, provider) == before.chain(ws, provider)
