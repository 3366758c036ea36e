"""Resolution: the three request forms, configs (compiled and inline), and every refusal."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import (
    AccessDenied,
    InvalidConfig,
    InvalidRequest,
    RequestError,
    Router,
    UnknownConfig,
    UnknownModel,
    UnknownProvider,
    UnknownWorkspace,
)
from runtime.bundle.hosts import host_allowed, parse_host_pattern, parse_origin
from runtime.bundle.load import thaw
from runtime.routing.inline import parse_config
from runtime.routing.params import drop, request_body
from tests.conftest import MINIMAL_ORG, shared_data


@pytest.fixture
def router(acme_bundle: bytes) -> Router:
    return Router.load(acme_bundle)


def test_model_string_form(router: Router) -> None:
    plan = router.resolve("support", "@openai-prod/gpt-4o")
    (attempt,) = plan.attempts
    assert plan.mode == "single"
    assert (attempt.provider, attempt.model, attempt.service) == ("openai-prod", "gpt-4o", "openai")
    assert attempt.url == "https://api.openai.com/v1"
    assert dict(attempt.credentials) == {
        "api_key": "env:ACME_OPENAI_API_KEY", "organization": "env:ACME_OPENAI_ORG"
    }  # fmt: skip
    assert [c.id for c in attempt.chain] == [
        "organization", "integration/openai-main", "provider/openai-prod", "workspace/support"
    ]  # fmt: skip
    assert str(attempt.prices.input) == "2.5"  # type: ignore[union-attr]


def test_provider_header_form_is_the_same_decision(router: Router) -> None:
    a = router.resolve("support", "gpt-4o", provider="@openai-prod").attempts[0]
    b = router.resolve("support", "@openai-prod/gpt-4o").attempts[0]
    assert (a.provider, a.model, a.chain, a.prices) == (b.provider, b.model, b.chain, b.prices)
    with pytest.raises(InvalidConfig, match=r"^invalid request: .*names no provider"):
        router.resolve("research", "gpt-4o")  # a workspace without a default_config
    with pytest.raises(InvalidConfig, match="provider header"):
        router.resolve("support", "@openai-prod/gpt-4o", provider="@azure-eu")


def test_a_request_naming_no_provider_or_config_takes_the_default_config(
    router: Router,
) -> None:
    default = router.bundle.workspace("support").default_config
    assert default == "support-bot"
    plan = router.resolve("support", "gpt-4o")
    assert plan.config == default
    assert plan == router.resolve("support", "gpt-4o", config=default)
    assert [a.option for a in plan.attempts] == [
        a.option for a in router.resolve("support", config=default).attempts
    ]
    assert all(a.option and a.option.startswith("config.targets[") for a in plan.attempts)
    # a provider or a config named by the request wins over the default
    assert router.resolve("support", "gpt-4o", provider="@openai-prod").config is None
    assert router.resolve("support", "@openai-prod/gpt-4o").config is None


def test_url_pathname_conditions_see_the_request_path(router: Router) -> None:
    config = {
        "strategy": {
            "mode": "conditional",
            "default": "chat",
            "conditions": [{"query": {"url.pathname": {"$eq": "/v1/embeddings"}}, "then": "embed"}],
        },
        "targets": [
            {"name": "chat", "provider": "@openai-prod", "override_params": {"model": "gpt-4o"}},
            {
                "name": "embed",
                "provider": "@openai-prod",
                "override_params": {"model": "gpt-4o-mini"},
            },
        ],
    }
    assert router.resolve("support", config=config, path="/v1/embeddings").branch == "embed"
    assert router.resolve("support", config=config, path="/v1/chat/completions").branch == "chat"
    assert router.resolve("support", config=config).branch == "chat"
    with pytest.raises(InvalidConfig, match="path"):
        router.resolve("support", config=config, path="/" * 5000)


def test_repeated_resolution_is_cached(router: Router) -> None:
    assert router.resolve("support", "@openai-prod/gpt-4o") is router.resolve(
        "support", "@openai-prod/gpt-4o"
    )


def test_provider_default_params_fill_the_request(router: Router) -> None:
    attempt = router.resolve("support", "@azure-eu/gpt-4o", params={"temperature": 1}).attempts[0]
    assert attempt.params["temperature"] == 1  # the request wins over default_params
    attempt = router.resolve("support", "@azure-eu/gpt-4o", params={"messages": []}).attempts[0]
    assert attempt.params["temperature"] == 0.2 and attempt.params["model"] == "gpt-4o"


@pytest.mark.parametrize(
    ("workspace", "model", "error", "words"),
    [
        ("support", "@openai-prod/gpt-4-omni", UnknownModel, "did you mean `gpt-4o-mini`"),
        ("support", "@opnai-prod/gpt-4o", UnknownProvider, "did you mean `@openai-prod`"),
        ("suport", "@openai-prod/gpt-4o", UnknownWorkspace, "did you mean `support`"),
        (
            "support",
            "@openai-research/gpt-4.1",
            AccessDenied,
            "provider `@openai-research` is not provisioned",
        ),
        (
            "data-science",
            "@openai-research/o4-mini",
            AccessDenied,
            "workspace `data-science` denies `o4-mini`",
        ),
        ("support", "@openai-prod/gpt-5", AccessDenied, "workspace `support` allows only"),
        ("platform", "@openai-prod/gpt-4o-audio-preview", UnknownModel, "has no model"),
    ],
)
def test_refusals_are_distinct_and_name_the_rule(
    router: Router, workspace: str, model: str, error: type[RequestError], words: str
) -> None:
    with pytest.raises(error, match=words) as caught:
        router.resolve(workspace, model)
    assert caught.value.status == {UnknownModel: 404, UnknownProvider: 404, UnknownWorkspace: 404,
                                   AccessDenied: 403}[error]  # fmt: skip


def test_access_denied_carries_level_rule_and_origin(router: Router) -> None:
    with pytest.raises(AccessDenied) as caught:
        router.resolve("data-science", "@openai-research/o4-mini")
    err = caught.value
    assert (err.level, err.rule, err.origin) == (
        "workspace `data-science`", "denies `o4-mini`", "workspaces/teams.yaml:40:10"
    )  # fmt: skip


def test_fallback_config_lists_attempts_with_move_on_codes(router: Router) -> None:
    plan = router.resolve("support", config="support-bot", params={"messages": [{"role": "user"}]})
    assert plan.mode == "fallback" and plan.config == "support-bot"
    first, second = plan.attempts
    assert first.target == "@openai-prod/ft:gpt-4o-mini-2024-07-18:acme:support:9xYzAb"
    assert first.moves_on(503) and first.moves_on(429) and not first.moves_on(400)
    assert not first.moves_on(200)
    assert (
        second.params["max_tokens"] == 1024
        and second.params["model"] == "claude-sonnet-4-5-20250929"
    )
    assert thaw(second.retry) == {
        "attempts": 2,
        "on_status_codes": [429],
        "use_retry_after_headers": True,
    }
    assert second.timeout_ms == 30000


@pytest.mark.parametrize(
    ("metadata", "params", "branch", "target"),
    [
        ({"region": "eu"}, {}, "eu", "@azure-eu/gpt-4o"),
        ({"region": "us", "tier": "free"}, {"max_tokens": 100}, "cheap", "@azure-eu/gpt-4o-mini"),
        ({"region": "us", "tier": "free"}, {"max_tokens": 4000}, "direct", "@openai-prod/gpt-4o"),
        ({}, {}, "direct", "@openai-prod/gpt-4o"),
    ],
)
def test_conditional_picks_the_first_matching_branch(
    router: Router, metadata: dict[str, Any], params: dict[str, Any], branch: str, target: str
) -> None:
    plan = router.resolve("support", config="eu-router", metadata=metadata, params=params)
    assert plan.branch == branch and [a.target for a in plan.attempts] == [target]


def test_conditional_branch_params_merge_and_drop(router: Router) -> None:
    params = {
        "logprobs": True,
        "tools": [{"function": {"name": "f", "strict": True}}],
        "temperature": 1,
    }
    cheap = router.resolve("support", config="eu-router", metadata={"tier": "free"},
                           params={**params, "max_tokens": 10}).attempts[0]  # fmt: skip
    assert "logprobs" not in cheap.params
    assert cheap.params["tools"] == [{"function": {"name": "f"}}]
    direct = router.resolve("support", config="eu-router", params={"messages": []}).attempts[0]
    assert direct.params["temperature"] == 0.3  # default_params fill what the request lacks


def test_loadbalance_is_deterministic_given_a_seed_and_honours_weights(router: Router) -> None:
    picks = [
        router.resolve("research", config="research-lb", seed=s).attempts[0].provider
        for s in range(400)
    ]
    assert picks == [
        router.resolve("research", config="research-lb", seed=s).attempts[0].provider
        for s in range(400)
    ]
    counts = Counter(picks)
    assert "llama-local" not in counts  # weight 0 is never chosen
    assert 240 < counts["openai-research"] < 360  # weight 3 of 4


def test_configs_are_offered_only_to_their_workspaces(router: Router) -> None:
    with pytest.raises(AccessDenied, match="config `support-bot` is not offered"):
        router.resolve("research", config="support-bot")
    with pytest.raises(UnknownConfig, match="did you mean `support-bot`") as caught:
        router.resolve("support", config="suport-bot")
    assert caught.value.suggestion == "support-bot"  # as UnknownProvider's and the others'


def test_a_plan_from_the_cache_cannot_be_changed_by_its_caller(router: Router) -> None:
    """Plans are shared between requests: one caller's write to an attempt's `carried`
    reached the next request's plan (params were read-only already)."""
    config = {"forward_headers": ["x-request-id"], "provider": "@openai-prod"}
    router.resolve("support", "gpt-4o", config="support-bot")  # cached from here on
    attempt = router.resolve("support", "gpt-4o", config="support-bot").attempts[0]
    with pytest.raises(TypeError):
        attempt.carried["poison"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        router.resolve("support", "gpt-4o", config=config).attempts[0].carried["x"] = 1  # type: ignore[index]


def test_admit_takes_an_attempt_only(router: Router) -> None:
    """A target's name where its attempt belongs was an AttributeError."""
    with pytest.raises(InvalidRequest, match="`attempt`"):
        router.admit("@openai-prod/gpt-4o")  # type: ignore[arg-type]


def test_inline_config_follows_the_same_rules(router: Router) -> None:
    inline = {
        "strategy": {"mode": "fallback", "on_status_codes": [429]},
        "targets": [
            {"provider": "@openai-prod", "override_params": {"model": "gpt-4o-mini"}},
            {"override_params": {"model": "@anthropic-prod/claude-haiku-4-5"}, "weight": 2},
        ],
    }
    plan = router.resolve("support", config=inline)
    assert [a.target for a in plan.attempts] == [
        "@openai-prod/gpt-4o-mini",
        "@anthropic-prod/claude-haiku-4-5",
    ]
    assert plan.attempts[0].fallback_on == frozenset({429})


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"provider": "@openai-prod", "retyr": {"attempts": 1}}, "unknown field `retyr`"),
        (
            {"provider": "openai", "api_key": "sk-proj-FAKEFAKEFAKEFAKEFAKE0000"},
            "may not carry credentials",
        ),
        (
            {
                "strategy": {"mode": "loadbalance"},
                "targets": [{"provider": "@openai-prod", "weight": 0}],
            },
            "weight 0",
        ),
        (
            {
                "strategy": {
                    "mode": "conditional",
                    "conditions": [{"query": {"metadata.x": {"$equals": 1}}, "then": "a"}],
                    "default": "a",
                },
                "targets": [{"name": "a", "provider": "@openai-prod"}],
            },
            "unknown query operator",
        ),
        (
            {
                "strategy": {
                    "mode": "conditional",
                    "conditions": [{"query": {"metadata.x": {"$regex": "("}}, "then": "a"}],
                    "default": "a",
                },
                "targets": [{"name": "a", "provider": "@openai-prod"}],
            },
            "invalid regular expression",
        ),
        (
            {
                "strategy": {"mode": "conditional", "conditions": [], "default": "b"},
                "targets": [{"name": "a", "provider": "@openai-prod"}],
            },
            "no target",
        ),
        (
            {"strategy": {"mode": "roundrobin"}, "targets": [{"provider": "@openai-prod"}]},
            "did you mean",
        ),
    ],
)
def test_invalid_inline_configs_are_refused(
    router: Router, config: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidConfig, match=words):
        router.resolve("support", "gpt-4o", config=config)


def test_inline_config_reaching_a_forbidden_provider_is_denied(router: Router) -> None:
    with pytest.raises(AccessDenied):
        router.resolve(
            "support",
            config={"provider": "@openai-research", "override_params": {"model": "gpt-4.1"}},
        )


def test_request_body_merge_rules() -> None:
    request = {"temperature": 0.9, "metadata": {"a": 1, "b": {"c": 2}}, "messages": []}
    leaf = {
        "default": {"temperature": 0.1, "top_p": 0.5, "metadata": {"z": 0}},
        "override": {"metadata": {"b": {"d": 3}}, "max_tokens": 64},
        "drop": ["messages", "metadata.a"],
    }
    body = request_body(request, {"top_p": 0.2, "seed": 7}, leaf, "gpt-4o")
    assert body == {
        "temperature": 0.9,  # the request's own value
        "top_p": 0.5,  # the config's default beats the provider's
        "seed": 7,
        "metadata": {"b": {"c": 2, "d": 3}, "z": 0},  # deep merge
        "max_tokens": 64,
        "model": "gpt-4o",
    }
    assert request["metadata"] == {"a": 1, "b": {"c": 2}}  # the caller's params are untouched


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tools[*].function.strict", {"tools": [{"function": {}}, {"function": {"x": 1}}], "n": 1}),
        ("tools[0]", {"tools": [{"function": {"x": 1, "strict": False}}], "n": 1}),
        ("n", {"tools": [{"function": {"strict": True}}, {"function": {"x": 1, "strict": False}}]}),
        (
            "missing.path",
            {
                "tools": [{"function": {"strict": True}}, {"function": {"x": 1, "strict": False}}],
                "n": 1,
            },
        ),
    ],
)
def test_drop_paths(path: str, expected: dict[str, Any]) -> None:
    body = {
        "tools": [{"function": {"strict": True}}, {"function": {"x": 1, "strict": False}}],
        "n": 1,
    }
    drop(body, path)
    assert body == expected


# -- where credentials may go (allowed_hosts) -------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "url", "allowed"),
    [
        ("api.example.com", "https://api.example.com/v1", True),
        ("api.example.com", "http://api.example.com/v1", True),  # default port of the scheme
        ("api.example.com", "https://api.example.com:8443/v1", False),
        ("api.example.com:8443", "https://api.example.com:8443", True),
        ("api.example.com:8443", "https://api.example.com", False),
        ("*.example.com", "https://a.b.example.com/", True),
        ("*.example.com", "https://example.com/", False),  # the apex is not below itself
        ("*.example.com", "https://badexample.com/", False),
        ("*.example.com", "https://example.com.evil.test/", False),
        ("*.example.com:8443", "https://a.example.com:8443/", True),
        ("10.0.0.5:8000", "http://10.0.0.5:8000/v1", True),
        ("[::1]:8080", "http://[0:0::1]:8080/", True),  # IPv6 compared in compressed form
    ],
)
def test_host_patterns_match_origins(pattern: str, url: str, allowed: bool) -> None:
    assert host_allowed(parse_origin(url), None, (pattern,)) is allowed


@pytest.mark.parametrize(
    ("outer", "inner", "covered"),
    [
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "*.eu.example.com", True),
        ("*.example.com", "*.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.example.com:8443", False),
        ("a.example.com", "a.example.com", True),
        ("a.example.com", "*.a.example.com", False),
    ],
)
def test_a_provider_list_can_only_narrow(outer: str, inner: str, covered: bool) -> None:
    assert parse_host_pattern(outer).covers(parse_host_pattern(inner)) is covered


def test_effective_allowed_hosts_reach_the_bundle(make_router: Any) -> None:
    router = make_router(
        {
            "catalog.yaml": MINIMAL_ORG,
            "p.yaml": """\
                kind: Integration
                slug: gw
                service: openai
                credentials: {api_key: {env: KEY}}
                allowed_hosts: ["b.example.com:8443", "*.a.example.com"]
                ---
                kind: Provider
                slug: inherits
                integration: gw
                ---
                kind: Provider
                slug: narrows
                integration: gw
                allowed_hosts: [x.a.example.com]
                ---
                kind: Provider
                slug: none
                integration: gw
                allowed_hosts: []
                ---
                kind: Workspace
                slug: default
                """,
        }
    )
    hosts = {s: p.allowed_hosts for s, p in router.bundle.providers.items()}
    assert hosts == {
        "inherits": ("*.a.example.com", "b.example.com:8443"),  # sorted
        "narrows": ("x.a.example.com",),
        "none": (),
    }
    config = {"provider": "@narrows", "custom_host": "https://x.a.example.com/v1"}
    assert (
        router.resolve("default", "gpt-4o", config=config).attempts[0].url.startswith("https://x.")
    )
    with pytest.raises(AccessDenied, match="narrows"):
        router.resolve(
            "default", "gpt-4o", config={**config, "custom_host": "https://y.a.example.com"}
        )


def test_parse_config_reads_what_json_reads() -> None:
    for path in sorted(shared_data("portkey-configs").glob("*.json")):
        text = path.read_bytes()
        assert parse_config(text) == json.loads(text)


def test_regex_conditions_accept_javascript_named_groups(router: Router) -> None:
    config = {
        "strategy": {"mode": "conditional", "default": "b", "conditions": [
            {"query": {"metadata.app": {"$regex": "^(?<team>[a-z]+)-app$"}}, "then": "a"}]},
        "targets": [{"name": "a", "provider": "@openai-prod"},
                    {"name": "b", "provider": "@azure-eu"}],
    }  # fmt: skip
    assert (
        router.resolve("support", "gpt-4o", config=config, metadata={"app": "x-app"}).branch == "a"
    )
    assert (
        router.resolve("support", "gpt-4o", config=config, metadata={"app": "X-app"}).branch == "b"
    )


def test_inline_checks_know_every_field_the_compiler_accepts() -> None:
    """A config pasted inline is not refused for a field a compiled config may have."""
    from catalog_compiler.model import routing as model
    from runtime.routing import inline

    pairs = [
        (model.Target, inline.TARGET_FIELDS), (model.Strategy, inline.STRATEGY_CHECKS),
        (model.Retry, inline.RETRY_CHECKS), (model.Cache, inline.CACHE_CHECKS),
        (model.Sticky, inline.STICKY_CHECKS), (model.CircuitBreaker, inline.CB_CHECKS),
        (model.Deployment, inline.DEPLOYMENT_CHECKS), (model.Condition, inline.CONDITION_CHECKS),
    ]  # fmt: skip
    for typed, checks in pairs:
        assert set(typed.model_fields) == set(checks), typed.__name__


_LEAF = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
         | st.text(max_size=8))  # fmt: skip
_PARAMS = st.dictionaries(
    st.text(max_size=6),
    st.recursive(_LEAF, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=10),
    max_size=4,
)  # fmt: skip
_TARGETS = [("support", "@openai-prod/gpt-4o", None), ("support", "gpt-4o", "@openai-prod"),
            ("support", "@azure-eu/gpt-4o", None), ("support", "@openai-prod/gpt-4-omni", None)]  # fmt: skip


def _outcome(resolve: Any) -> Any:
    try:
        return ("plan", resolve())
    except RequestError as exc:
        return ("refused", type(exc), str(exc))


@settings(max_examples=150, deadline=None)
@given(
    first=_PARAMS,
    then=_PARAMS | st.lists(_LEAF, max_size=2),
    target=st.sampled_from(_TARGETS),
    path=st.none() | st.text(max_size=5) | st.just("/v1/" + "x" * 5000),
)
def test_a_target_named_before_resolves_as_it_did_the_first_time(
    acme_bundle: bytes, first: dict[str, Any], then: Any, target: Any, path: str | None
) -> None:
    """The second request naming a target with params takes the remembered route (only
    the params merged): the same plan, or the same refusal, as a router seeing it first."""
    workspace, model, provider = target
    warm, cold = Router.load(acme_bundle), Router.load(acme_bundle)
    _outcome(lambda: warm.resolve(workspace, model, provider=provider, params=first))
    again = _outcome(lambda: warm.resolve(workspace, model, provider=provider, params=then,
                                          path=path))  # fmt: skip
    fresh = _outcome(lambda: cold.resolve(workspace, model, provider=provider, params=then,
                                          path=path))  # fmt: skip
    assert again == fresh
