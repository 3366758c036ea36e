"""The alias law, over random catalogs and requests: each workspace gets the Organization's
aliases overridden by its own, and naming an alias decides exactly what naming its target
decides (allowed or the same refusal; the same attempts, provider, model, counter chain,
prices and params) in every request form. An alias that could reach what its target cannot
is the bypass class known from other gateways."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_compiler.compiler import compile_catalog
from runtime import Router
from runtime.bundle.aliases import usable_aliases
from runtime.bundle.errors import InvalidConfig, RequestError
from tests.strategies import SERVICES, catalogs, write_catalog

Files = dict[str, list[dict[str, Any]]]


Effective = dict[str, dict[str, str]]  # workspace -> alias name -> target


@st.composite
def with_aliases(draw: st.DrawFn) -> tuple[Files, Effective]:
    """A random catalog whose Organization and some Workspaces declare aliases for random
    exposed models (allowed or not to each workspace: a Workspace alias its workspace may
    not use is an error, E0521, but the bundle's index still serves the law), and the
    effective map each workspace must get."""
    files = draw(catalogs())
    services = {i["slug"]: i["service"] for i in files["integrations.yaml"]}
    targets = sorted(
        f"@{p['slug']}/{m}"
        for p in files["providers.yaml"]
        for m in SERVICES[services[p["integration"]]]
    )
    chosen = draw(st.lists(st.sampled_from(targets), min_size=1, max_size=4, unique=True))
    org = {f"alias-{i}": t for i, t in enumerate(chosen)}
    files["catalog.yaml"][0]["aliases"] = org
    effective: Effective = {}
    for ws in files["workspaces.yaml"]:
        names = draw(st.lists(st.sampled_from([*org, "own-0", "own-1"]), max_size=2, unique=True))
        own = {n: draw(st.sampled_from(targets)) for n in names}
        if own:
            ws["aliases"] = own
        effective[ws["slug"]] = {**org, **own}
    return files, effective


def router_of(files: Files) -> Router:
    with tempfile.TemporaryDirectory() as tmp:
        compiled = compile_catalog(write_catalog(Path(tmp) / "c", files))
    # the index, also when the resolved catalog has errors elsewhere (an E0511, say)
    assert not compiled.validation.errors, compiled.validation.errors[:3]
    assert compiled.index is not None
    return Router(compiled.index)


def decision(router: Router, workspace: str, model: str, form: dict[str, Any]) -> Any:
    """What the router decides: the refusal's type (and its words, but for the 400 that
    names the conflicting alias), or what every attempt would do."""
    try:
        plan = router.resolve(workspace, model, **form)
    except RequestError as exc:
        words = None if isinstance(exc, InvalidConfig) else str(exc)
        return type(exc).__name__, exc.status, words
    attempts = [
        (a.provider, a.model, tuple(c.id for c in a.chain), a.prices, a.rates, a.catalog_rates,
         dict(a.params), a.url, a.option, a.fallback, a.max_output_tokens)
        for a in plan.attempts
    ]  # fmt: skip
    return plan.mode, plan.config, plan.branch, attempts


def forms(providers: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Request forms: bare, a provider header, an inline config whose targets take the
    request's model (with or without a provider of their own), a request body."""
    header = st.sampled_from(providers).map(lambda p: {"provider": f"@{p}"})
    leaf = st.one_of(st.just({}), st.sampled_from(providers).map(lambda p: {"provider": f"@{p}"}))
    inline = st.lists(leaf, min_size=1, max_size=2).map(
        lambda ts: {"config": {"strategy": {"mode": "fallback"}, "targets": ts}}
    )
    body = st.just({"params": {"max_tokens": 16, "messages": []}})
    return st.one_of(st.just({}), header, inline, body)


def with_model(form: dict[str, Any], model: str) -> dict[str, Any]:
    """The form, its body (if any) naming `model` as a client's would."""
    if "params" not in form:
        return form
    return {**form, "params": {**form["params"], "model": model}}


@settings(max_examples=40)
@given(with_aliases(), st.data())
def test_an_alias_decides_what_its_target_decides(
    catalog: tuple[Files, Effective], data: st.DataObject
) -> None:
    files, effective = catalog
    router = router_of(files)
    providers = sorted(router.bundle.providers)
    for workspace in sorted(router.bundle.workspaces):
        recorded = router.bundle.workspaces[workspace].aliases
        assert {n: a.target for n, a in recorded.items()} == effective[workspace]
        for name, target in sorted(effective[workspace].items()):
            form = data.draw(forms(providers))
            via_alias = decision(router, workspace, name, with_model(form, name))
            direct = decision(router, workspace, target, with_model(form, target))
            assert via_alias == direct, (workspace, name, target, form)


@settings(max_examples=20)
@given(with_aliases())
def test_v1_models_lists_exactly_the_aliases_whose_target_is_allowed(
    catalog: tuple[Files, Effective],
) -> None:
    files, effective = catalog
    router = router_of(files)
    for workspace in router.bundle.workspaces:
        listed = {a.name for a in usable_aliases(router.bundle, workspace)}
        aliases = effective[workspace]
        allowed = {
            n for n, t in aliases.items() if decision(router, workspace, t, {})[0] == "single"
        }
        assert listed == allowed
