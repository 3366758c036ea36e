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
from runtime.bundle.load import Bundle, effective
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


BREAKS = ("unknown-field", "wrong-type", "slug-deleted", "kind-misspelt")


def broken(doc: dict[str, Any], how: str) -> dict[str, Any]:
    """The document with one mistake that makes it fail its structure check."""
    if how == "unknown-field":
        return {**doc, "budget": []}
    if how == "wrong-type":
        return {**doc, "concurrency": "lots"}
    if how == "slug-deleted" and "slug" in doc:
        return {k: v for k, v in doc.items() if k != "slug"}
    return {**doc, "kind": doc["kind"].lower()}


def diagnostics_outside(files: Files, skip: str) -> set[tuple[str, int, int, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        compiled = compile_catalog(write_catalog(Path(tmp) / "c", files))
        prefix = f"{tmp}/c/"
    return {(d.span.file.removeprefix(prefix), d.span.line, d.span.column, d.code)
            for d in compiled.diagnostics if d.span.file != f"{prefix}{skip}"}  # fmt: skip


@settings(max_examples=80)
@given(catalogs(), st.data())
def test_breaking_a_document_reports_nothing_new_elsewhere(
    files: Files, data: st.DataObject
) -> None:
    """A document that fails its structure check changes nothing reported in other files
    but what depended on it going quiet: no check concludes from a broken document's
    absence (so fixing a mistake never reveals a new one elsewhere either)."""
    name = data.draw(st.sampled_from(sorted(files)))
    i = data.draw(st.integers(0, len(files[name]) - 1))
    mutated = copy.deepcopy(files)
    mutated[name][i] = broken(mutated[name][i], data.draw(st.sampled_from(BREAKS)))
    before, after = diagnostics_outside(files, name), diagnostics_outside(mutated, name)
    if any(code == "E0500" for *_, code in before):
        # A dead allow entry makes the list's refusals uncertain (it may have meant another
        # model), which quiets E0502/W0502 about them; with a broken ancestor the entry is no
        # longer known to be dead, and those refusals are reported for what they are.
        after = {d for d in after if d[3] not in ("E0502", "W0502")}
    assert after <= before
