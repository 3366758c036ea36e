"""Model aliases at run time: a request naming an alias is resolved as if it had named the
target, in every request form (docs/aliases.md)."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import Router
from runtime.bundle.aliases import usable_aliases
from runtime.bundle.canonical import seal
from runtime.bundle.errors import (
    AccessDenied,
    BundleContentError,
    BundleError,
    InvalidConfig,
    RequestError,
    UnknownModel,
)
from runtime.bundle.load import Bundle
from tests.runtime.conftest import OPENAI_PROVIDER, compile_files

FILES = {
    "catalog.yaml": """\
        kind: Organization
        version: 1
        name: Acme
        aliases:
          fast: "@openai-prod/gpt-4o-mini"
          smart: {config: two-step}
          big: "@openai-prod/gpt-4.1"
        """,
    "providers.yaml": OPENAI_PROVIDER
    + """\
---
kind: Integration
slug: anthropic-main
service: anthropic
credentials: {api_key: {env: ANTHROPIC_API_KEY}}
---
kind: Provider
slug: anthropic-prod
integration: anthropic-main
workspaces: [research]
""",
    "workspaces.yaml": """\
        kind: Workspace
        slug: support
        default_config: any-model
        models: {deny: ["gpt-4.1"]}
        ---
        kind: Workspace
        slug: research
        aliases:
          fast: "@anthropic-prod/claude-haiku-4-5"
        """,
    "configs.yaml": """\
        kind: Config
        slug: two-step
        workspaces: "*"
        config:
          strategy: {mode: fallback}
          targets:
            - provider: "@openai-prod"
              override_params: {model: gpt-4o}
            - provider: "@openai-prod"
              override_params: {model: gpt-4o-mini}
        ---
        kind: Config
        slug: any-model
        workspaces: "*"
        config:
          strategy: {mode: fallback}
          targets:
            - provider: "@openai-prod"
            - {provider: "@openai-prod", request_timeout: 1000}
        """,
}


@pytest.fixture(scope="module")
def alias_body(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compiled FILES, without their digest (to be changed and sealed again)."""
    body: dict[str, Any] = json.loads(compile_files(tmp_path_factory.mktemp("c"), FILES))
    body.pop("digest")
    return body


@pytest.fixture
def router(make_router: Callable[..., Router]) -> Router:
    return make_router(FILES)


def shape(plan: Any) -> tuple[Any, ...]:
    """What a plan decides, apart from the alias it was named by."""
    return (
        plan.mode,
        plan.config,
        [(a.provider, a.model, [c.id for c in a.chain], a.prices, dict(a.params), a.option)
         for a in plan.attempts],
    )  # fmt: skip


def test_the_bundle_records_each_workspace_s_effective_aliases(router: Router) -> None:
    support = router.bundle.workspaces["support"].aliases
    research = router.bundle.workspaces["research"].aliases
    assert support["fast"].target == "@openai-prod/gpt-4o-mini"
    assert support["fast"].source == "organization"
    assert research["fast"].target == "@anthropic-prod/claude-haiku-4-5"
    assert research["fast"].source == "workspace"  # the workspace's overrides the org's
    assert research["smart"].config == "two-step"
    origin = router.bundle.origin(research["fast"].origin_element("research"))
    assert origin is not None and origin.startswith("workspaces.yaml:")


def test_a_bare_alias_is_its_target_and_skips_the_default_config(router: Router) -> None:
    plan = router.resolve("support", "fast")
    assert plan.alias == "fast"
    assert shape(plan) == shape(router.resolve("support", "@openai-prod/gpt-4o-mini"))
    assert router.resolve("support", "fast") is plan  # cached like any plan
    # a bare name that is no alias still takes the workspace's default_config
    assert router.resolve("support", "gpt-4o").config == "any-model"


def test_the_workspace_alias_wins(router: Router) -> None:
    attempt = router.resolve("research", "fast").attempts[0]
    assert (attempt.provider, attempt.model) == ("anthropic-prod", "claude-haiku-4-5")


def test_a_provider_header_must_be_the_alias_s_provider(router: Router) -> None:
    plan = router.resolve("support", "fast", provider="@openai-prod")
    assert shape(plan) == shape(router.resolve("support", "gpt-4o-mini", provider="@openai-prod"))
    conflict = r"`fast` is an alias of `@openai-prod/gpt-4o-mini`.*`@anthropic-prod`"
    with pytest.raises(InvalidConfig, match=conflict):
        router.resolve("support", "fast", provider="@anthropic-prod")


def test_a_config_alias_takes_no_provider_nor_other_config(router: Router) -> None:
    plan = router.resolve("support", "smart")
    assert plan.alias == "smart"
    assert shape(plan) == shape(router.resolve("support", config="two-step"))
    with pytest.raises(InvalidConfig, match="config `two-step`: it takes no provider"):
        router.resolve("support", "smart", provider="@openai-prod")
    with pytest.raises(InvalidConfig, match="cannot name another config"):
        router.resolve("support", "smart", config="any-model")


def test_a_config_that_takes_the_request_s_model_gets_the_target(router: Router) -> None:
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
    plan = router.resolve("support", "fast", config="any-model", params=body)
    direct = router.resolve("support", "@openai-prod/gpt-4o-mini", config="any-model",
                            params={**body, "model": "@openai-prod/gpt-4o-mini"})  # fmt: skip
    assert shape(plan) == shape(direct)
    assert [a.params["model"] for a in plan.attempts] == ["gpt-4o-mini", "gpt-4o-mini"]
    assert body["model"] == "fast"  # the caller's body is never changed


def test_an_inline_config_sees_the_target_too(router: Router) -> None:
    inline = {"strategy": {"mode": "fallback"}, "targets": [{"provider": "@openai-prod"}]}
    plan = router.resolve("support", "fast", config=inline, params={"model": "fast"})
    assert [(a.provider, a.model) for a in plan.attempts] == [("openai-prod", "gpt-4o-mini")]


def test_an_alias_never_grants_what_its_target_would_not(router: Router) -> None:
    with pytest.raises(AccessDenied) as via_alias:
        router.resolve("support", "big")
    with pytest.raises(AccessDenied) as direct:
        router.resolve("support", "@openai-prod/gpt-4.1")
    assert str(via_alias.value) == str(direct.value)
    assert "support" in str(via_alias.value) and "gpt-4.1" in str(via_alias.value)


def test_requests_name_the_model_string_for_other_providers(router: Router) -> None:
    """Only a bare name is an alias: `@p/fast` is the model `fast` of `@p`."""
    with pytest.raises(UnknownModel):
        router.resolve("support", "@openai-prod/fast")


def test_usable_aliases_lists_only_usable_targets(router: Router) -> None:
    names = [a.name for a in usable_aliases(router.bundle, "support")]
    assert names == ["fast", "smart"]  # `big` is denied to support
    assert [a.name for a in usable_aliases(router.bundle, "research")] == ["big", "fast", "smart"]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"from": "organization", "provider": "nope", "model": "gpt-4o"}, "provider `nope`"),
        ({"from": "organization", "provider": "openai-prod", "model": "gpt-9"}, "model `gpt-9`"),
        ({"from": "organization", "config": "nope"}, "names no config"),
        ({"from": "elsewhere", "config": "two-step"}, "expected `organization`"),
    ],
)
def test_a_bundle_with_a_dangling_alias_is_refused(
    tmp_path: Path, entry: dict[str, str], problem: str
) -> None:
    body = json.loads(compile_files(tmp_path / "c", FILES))
    body.pop("digest")
    body["workspaces"]["support"]["aliases"]["fast"] = entry
    with pytest.raises(BundleContentError, match=problem):
        Bundle.load(seal(body))


def test_a_bundle_with_a_bad_alias_name_is_refused(tmp_path: Path) -> None:
    body = json.loads(compile_files(tmp_path / "c", FILES))
    body.pop("digest")
    aliases = body["workspaces"]["support"]["aliases"]
    aliases["@fast"] = aliases.pop("fast")
    with pytest.raises(BundleContentError, match="alias name"):
        Bundle.load(seal(body))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(
        ["organization", "workspace", "openai-prod", "anthropic-prod", "gpt-4o", "two-step",
         "claude-haiku-4-5", "nope", "@fast", "fast"]
    ),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(
        st.sampled_from(["from", "provider", "model", "config", "x"]), inner, max_size=4
    ),
    max_leaves=6,
)  # fmt: skip


@settings(max_examples=150)
@given(st.sampled_from(["support", "research"]), st.sampled_from(["fast", "smart", "big", "new"]),
       JSONISH)  # fmt: skip
def test_a_changed_alias_is_refused_at_load_or_serves(
    alias_body: dict[str, Any], workspace: str, name: str, value: Any
) -> None:
    """Load is a full gate for aliases too: whatever an entry becomes, the bundle is refused
    with a BundleError, or every alias of every workspace resolves or is refused with a
    RequestError (never an internal error)."""
    body = copy.deepcopy(alias_body)
    body["workspaces"][workspace].setdefault("aliases", {})[name] = value
    try:
        router = Router(Bundle.load(seal(body)))
    except BundleError:
        return
    for ws in router.bundle.workspaces.values():
        for alias in ws.aliases:
            for form in ({}, {"provider": "@openai-prod"}, {"params": {"model": alias}}):
                with contextlib.suppress(RequestError):
                    router.resolve(ws.slug, alias, **form)


SPREAD = {
    "catalog.yaml": "kind: Organization\nversion: 1\nname: Spread\n"
    "aliases: {spread: {config: halves}}\n",
    "providers.yaml": OPENAI_PROVIDER,
    "w.yaml": "kind: Workspace\nslug: team\n",
    "configs.yaml": """\
        kind: Config
        slug: halves
        workspaces: "*"
        config:
          strategy: {mode: loadbalance}
          targets:
            - {provider: "@openai-prod", override_params: {model: gpt-4o}, weight: 1}
            - {provider: "@openai-prod", override_params: {model: gpt-4o-mini}, weight: 1}
        """,
}


def test_an_alias_of_a_loadbalance_config_picks_per_request(
    make_router: Callable[..., Router],
) -> None:
    """A library caller's bare alias of a loadbalance config was cached with its first pick:
    every later request went to the same target (a review: 200 of 200), and one seeded
    request fixed the pick for every unseeded one after it."""
    router = make_router(SPREAD)

    def picks(**kw: Any) -> set[str]:
        return {router.resolve("team", "spread", **kw).attempts[0].model for _ in range(100)}

    assert picks() == {"gpt-4o", "gpt-4o-mini"}  # each 1 - 2^-99 likely
    assert len(picks(seed=7)) == 1  # a seed decides the pick
    assert picks() == {"gpt-4o", "gpt-4o-mini"}  # for its own request only
