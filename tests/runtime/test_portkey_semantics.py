"""Portkey's routing rules that a pasted config relies on (issue 12, point 1), at the router:
`@slug/model` targets, passthrough, fallback rules up a nested tree, listed 2xx statuses,
inheritance of `override_params`, and sticky picks that every replica makes alike.
The gateway's half (retries, response headers) is in tests/gateway/test_portkey_rules.py;
docs/portkey-compat.md lists every rule with its test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import AccessDenied, InvalidConfig, RequestError, Router, UnknownModel
from runtime.routing.plan import Attempt
from tests.conftest import ROOT


@pytest.fixture
def router(acme_bundle: bytes) -> Router:
    return Router.load(acme_bundle)


def targets(plan: Any) -> list[tuple[str | None, str]]:
    return [(a.provider, a.model) for a in plan.attempts]


def walk(attempts: tuple[Attempt, ...], statuses: list[int]) -> list[int]:
    """The attempts a plan makes when they answer `statuses` in turn (as the gateway's
    engine walks them, retries aside)."""
    seen: list[int] = []
    index: int | None = 0
    answers = iter(statuses)
    while index is not None:
        seen.append(index)
        index = attempts[index].next_after(next(answers))
    return seen


# -- `provider: "@slug/model"` --------------------------------------------------------------
def test_a_provider_string_may_name_the_model_too(router: Router) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "@openai-prod/gpt-4o-mini"},
            {"provider": "@anthropic-prod/claude-3-5-sonnet-20241022"},
            # an override_params.model still wins over the provider string's model
            {"provider": "@openai-prod/gpt-4o-mini", "override_params": {"model": "gpt-4o"}},
        ],
    }
    plan = router.resolve("support", config=config)
    assert targets(plan) == [
        ("openai-prod", "gpt-4o-mini"),
        ("anthropic-prod", "claude-3-5-sonnet-20241022"),
        ("openai-prod", "gpt-4o"),
    ]
    # and it is held to the catalog like any other target
    with pytest.raises(UnknownModel):
        router.resolve("support", config={"provider": "@openai-prod/gpt-4o-minii"})
    with pytest.raises(AccessDenied):
        router.resolve("support", config={"provider": "@openai-research/gpt-4.1"})


# -- passthrough and the request's provider -------------------------------------------------
def test_a_target_without_provider_takes_the_requests(router: Router) -> None:
    config = {"retry": {"attempts": 2}, "override_params": {"temperature": 0.2}}
    by_header = router.resolve("support", "gpt-4o", provider="@openai-prod", config=config)
    by_model = router.resolve("support", "@openai-prod/gpt-4o", config=config)
    assert targets(by_header) == targets(by_model) == [("openai-prod", "gpt-4o")]
    assert by_header.attempts[0].retry == {"attempts": 2}
    with pytest.raises(InvalidConfig, match="names no provider"):
        router.resolve("support", "gpt-4o", config=config)


def test_passthrough_routes_to_the_provider_the_request_names(router: Router) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "@azure-eu", "passthrough": True},
            {"provider": "@openai-prod/gpt-4o-mini"},
        ],
    }
    plan = router.resolve("support", "gpt-4o", provider="@openai-prod", config=config)
    assert targets(plan) == [("openai-prod", "gpt-4o"), ("openai-prod", "gpt-4o-mini")]
    plan = router.resolve("support", "@anthropic-prod/claude-3-5-sonnet-20241022", config=config)
    assert plan.attempts[0].provider == "anthropic-prod"
    # naming no provider, the passthrough target keeps its own
    assert router.resolve("support", "gpt-4o", config=config).attempts[0].provider == "azure-eu"


def test_passthrough_never_widens_access(router: Router) -> None:
    """The request's provider is checked like any other: `research` may not use @openai-prod."""
    config = {"provider": "@openai-research", "passthrough": True}
    with pytest.raises(AccessDenied):
        router.resolve("research", "gpt-4o", provider="@openai-prod", config=config)
    with pytest.raises(AccessDenied):
        router.resolve("research", "@openai-prod/gpt-4o", config={"retry": {"attempts": 1}})


# -- url.pathname ---------------------------------------------------------------------------
def test_url_pathname_is_the_path_the_gateway_passes(router: Router) -> None:
    config = {
        "strategy": {
            "mode": "conditional",
            "conditions": [{"query": {"url.pathname": {"$regex": "/responses$"}}, "then": "r"}],
            "default": "c",
        },
        "targets": [
            {"name": "r", "provider": "@openai-prod/gpt-4o"},
            {"name": "c", "provider": "@openai-prod/gpt-4o-mini"},
        ],
    }
    chosen = {
        path: router.resolve("support", config=config, path=path).attempts[0].model
        for path in ("/v1/responses", "/v1/chat/completions")
    }
    assert chosen == {"/v1/responses": "gpt-4o", "/v1/chat/completions": "gpt-4o-mini"}
    # a library caller that names no path: `url.pathname` is absent, as a metadata key the
    # request lacks (it matched /v1/chat/completions, so an embeddings call took chat's branch)
    config["strategy"]["conditions"] = [  # type: ignore[index]
        {"query": {"url.pathname": {"$eq": "/v1/chat/completions"}}, "then": "r"}
    ]
    assert router.resolve("support", config=config).attempts[0].model == "gpt-4o-mini"


# -- fallback rules -------------------------------------------------------------------------
def leaves(n: int) -> list[dict[str, Any]]:
    return [{"provider": "@openai-prod/gpt-4o"} for _ in range(n)]


def test_a_listed_2xx_status_moves_on(router: Router) -> None:
    """A guardrail's 246 is a 2xx: listed, it moves on; not listed, it is the answer."""
    listed = {"strategy": {"mode": "fallback", "on_status_codes": [246, 429]}, "targets": leaves(2)}
    plan = router.resolve("support", config=listed)
    assert walk(plan.attempts, [246, 200]) == [0, 1]
    assert walk(plan.attempts, [200]) == [0]
    assert walk(plan.attempts, [500]) == [0]  # not listed
    default = {"strategy": {"mode": "fallback"}, "targets": leaves(2)}
    plan = router.resolve("support", config=default)
    assert walk(plan.attempts, [246]) == [0]
    assert walk(plan.attempts, [201]) == [0]
    assert walk(plan.attempts, [400, 200]) == [0, 1]  # any non-2xx


def test_an_answer_goes_up_the_tree_to_the_first_group_that_moves_on(router: Router) -> None:
    """Portkey's handler: a nested fallback group that stops hands its answer to its parent,
    whose own rule may move on to the parent's next target."""
    config = {
        "strategy": {"mode": "fallback"},  # any non-2xx
        "targets": [
            {"strategy": {"mode": "fallback", "on_status_codes": [429]}, "targets": leaves(2)},
            {"provider": "@anthropic-prod/claude-3-5-sonnet-20241022"},
        ],
    }
    plan = router.resolve("support", config=config)
    assert [a.option for a in plan.attempts] == [
        "config.targets[0].targets[0]", "config.targets[0].targets[1]", "config.targets[1]",
    ]  # fmt: skip
    assert walk(plan.attempts, [429, 200]) == [0, 1]  # the inner group moves on
    assert walk(plan.attempts, [500, 200]) == [0, 2]  # the inner stops, the outer moves on
    assert walk(plan.attempts, [429, 503, 200]) == [0, 1, 2]
    assert walk(plan.attempts, [200]) == [0]
    assert walk(plan.attempts, [429, 429, 500]) == [0, 1, 2]
    # inner "any non-2xx", outer only 503: a 500 inside moves on inside, not outside
    config["strategy"] = {"mode": "fallback", "on_status_codes": [503]}
    config["targets"][0]["strategy"] = {"mode": "fallback"}
    plan = router.resolve("support", config=config)
    assert walk(plan.attempts, [500, 500]) == [0, 1]
    assert walk(plan.attempts, [500, 503, 200]) == [0, 1, 2]


def test_a_loadbalance_pick_inside_a_fallback_falls_back_as_a_whole(router: Router) -> None:
    config = {
        "strategy": {"mode": "fallback", "on_status_codes": [500]},
        "targets": [
            {"strategy": {"mode": "loadbalance"}, "targets": leaves(3)},
            {"provider": "@anthropic-prod/claude-3-5-sonnet-20241022"},
        ],
    }
    for seed in range(20):
        plan = router.resolve("support", config=config, seed=seed)
        assert len(plan.attempts) == 2
        assert walk(plan.attempts, [500, 200]) == [0, 1]
        assert walk(plan.attempts, [429]) == [0]


# -- inheritance ----------------------------------------------------------------------------
def test_children_inherit_as_portkeys_handler_does(router: Router) -> None:
    config = {
        "retry": {"attempts": 3, "on_status_codes": [429]},
        "request_timeout": 5000,
        "override_params": {"temperature": 0.5, "top_p": 0.3, "metadata": {"a": "1", "b": "2"}},
        "strategy": {"mode": "fallback"},
        "targets": [
            # override_params merge key by key: the child's `metadata` replaces the parent's
            {"provider": "@openai-prod/gpt-4o", "override_params": {"metadata": {"a": "3"}}},
            # a child's retry replaces the parent's whole (no per-field merge)
            {
                "provider": "@openai-prod/gpt-4o",
                "retry": {"attempts": 1},
                "request_timeout": 700,
            },
        ],
    }
    first, second = router.resolve("support", config=config, params={"model": "x"}).attempts
    assert first.params["metadata"] == {"a": "3"}
    assert (first.params["temperature"], first.params["top_p"]) == (0.5, 0.3)
    assert (first.retry, first.timeout_ms) == ({"attempts": 3, "on_status_codes": [429]}, 5000)
    assert (second.retry, second.timeout_ms) == ({"attempts": 1}, 700)
    assert second.params["metadata"] == {"a": "1", "b": "2"}


# -- sticky load balancing ------------------------------------------------------------------
STICKY = {
    "strategy": {
        "mode": "loadbalance",
        "sticky": {"enabled": True, "hash_fields": ["metadata.user"], "ttl": 60},
    },
    "targets": [
        {"provider": "@openai-prod/gpt-4o", "weight": 1},
        {"provider": "@openai-prod/gpt-4o-mini", "weight": 3},
    ],
}


def sticky_picks(router: Router, users: range) -> list[str]:
    return [
        router.resolve("support", config=STICKY, metadata={"user": f"u{u}"}).attempts[0].model
        for u in users
    ]


def test_sticky_picks_are_a_function_of_the_hash_fields(router: Router) -> None:
    picks = sticky_picks(router, range(2000))
    assert picks == sticky_picks(router, range(2000))  # the same user, the same target
    share = Counter(picks)["gpt-4o-mini"] / len(picks)
    assert 0.72 < share < 0.78  # and the weights still hold across users (expected 0.75)


def picks_elsewhere(bundle: Path, config: dict[str, Any], seed: int) -> list[str]:
    """The first attempt's model for users u0..u299 (metadata `user` only), picked in
    another process with hash seed `seed`."""
    script = (
        "import json, sys; from runtime import Router; r = Router.load(sys.argv[1]); "
        f"c = json.loads({json.dumps(json.dumps(config))}); "
        "print(json.dumps([r.resolve('support', config=c, metadata={'user': f'u{u}'})"
        ".attempts[0].model for u in range(300)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(bundle)], capture_output=True, text=True,
        check=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": str(seed)},
    ).stdout  # fmt: skip
    picks: list[str] = json.loads(out)
    return picks


def test_sticky_picks_agree_across_replicas(acme_bundle: bytes, tmp_path: Path) -> None:
    """Another process (another hash seed, no shared memory) picks the same targets."""
    bundle = tmp_path / "b.json"
    bundle.write_bytes(acme_bundle)
    runs = [picks_elsewhere(bundle, STICKY, seed) for seed in (1, 2)]
    assert runs[0] == runs[1] == sticky_picks(Router.load(acme_bundle), range(300))


def test_a_sticky_field_the_request_lacks_picks_alike_everywhere(
    acme_bundle: bytes, tmp_path: Path
) -> None:
    """A missing field hashed as a Python object's `str`, its memory address: each process
    picked its own target. Now the pick is fixed; and a request with none of the fields is
    not sticky, so the weights hold for it too (every such request went to one target)."""
    two = {**STICKY, "strategy": {**STICKY["strategy"],
                                  "sticky": {"hash_fields": ["metadata.user", "metadata.team"]}}}  # fmt: skip
    bundle = tmp_path / "b.json"
    bundle.write_bytes(acme_bundle)
    runs = [picks_elsewhere(bundle, two, seed) for seed in (1, 2, 3)]
    assert runs[0] == runs[1] == runs[2]
    router = Router.load(acme_bundle)
    lacking = [router.resolve("support", config=two, metadata={}).attempts[0].model
               for _ in range(400)]  # fmt: skip
    assert 0.65 < Counter(lacking)["gpt-4o-mini"] / len(lacking) < 0.85


def test_a_targets_own_status_codes_do_not_decide(router: Router) -> None:
    """Only the strategy's `on_status_codes` count, as in Portkey's handler (W0504 warns)."""
    config = {
        "strategy": {"mode": "fallback", "on_status_codes": [503]},
        "targets": [{"provider": "@openai-prod/gpt-4o", "on_status_codes": [429]}, *leaves(1)],
    }
    plan = router.resolve("support", config=config)
    assert walk(plan.attempts, [503, 200]) == [0, 1]
    assert walk(plan.attempts, [429]) == [0]


def test_a_conditional_without_default_refuses_what_matches_nothing(router: Router) -> None:
    config = {
        "strategy": {"mode": "conditional",
                     "conditions": [{"query": {"metadata.tier": "pro"}, "then": "a"}]},
        "targets": [{"name": "a", "provider": "@openai-prod/gpt-4o"}],
    }  # fmt: skip
    assert targets(router.resolve("support", config=config, metadata={"tier": "pro"})) == [
        ("openai-prod", "gpt-4o")
    ]
    with pytest.raises(InvalidConfig, match="no `default`"):
        router.resolve("support", config=config, metadata={"tier": "free"})


NO_MATCH = {"strategy": {"mode": "conditional",
                         "conditions": [{"query": {"metadata.tier": "pro"}, "then": "a"}]},
            "targets": [{"name": "a", "provider": "@openai-prod/gpt-4o"}]}  # fmt: skip


def test_a_later_fallback_target_s_conditions_are_read_only_when_reached(router: Router) -> None:
    """Portkey routes a fallback target's conditions when the fallback reaches it: a
    healthy first target serves a request that target's conditions do not match. Here the
    whole tree was read first, and such a request was a 400 with no call made."""
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "@openai-prod/gpt-4o-mini"}, NO_MATCH,
                          {"provider": "@anthropic-prod/claude-3-5-sonnet-20241022"}]}  # fmt: skip
    plan = router.resolve("support", config=config, metadata={"tier": "free"})
    assert targets(plan) == [("openai-prod", "gpt-4o-mini")]  # it failing, its answer stands
    assert plan.attempts[0].next_after(503) is None
    matched = router.resolve("support", config=config, metadata={"tier": "pro"})
    assert [t for t, _ in targets(matched)] == ["openai-prod", "openai-prod", "anthropic-prod"]
    nested = {"strategy": {"mode": "fallback"},
              "targets": [{"strategy": {"mode": "fallback", "on_status_codes": [429]},
                           "targets": [{"provider": "@openai-prod/gpt-4o-mini"}, NO_MATCH]},
                          {"provider": "@anthropic-prod/claude-3-5-sonnet-20241022"}]}  # fmt: skip
    plan = router.resolve("support", config=nested, metadata={"tier": "free"})
    # the inner group stops where its unmatched target was; the outer one still moves on
    assert [t for t, _ in targets(plan)] == ["openai-prod", "anthropic-prod"]
    assert plan.attempts[0].next_after(429) == 1 and plan.attempts[0].next_after(503) == 1
    first = {"strategy": {"mode": "fallback"},
             "targets": [NO_MATCH, {"provider": "@openai-prod/gpt-4o-mini"}]}  # fmt: skip
    with pytest.raises(InvalidConfig, match="no `default`"):  # the first target is taken
        router.resolve("support", config=first, metadata={"tier": "free"})


def test_targets_of_one_name_the_first_is_taken(router: Router) -> None:
    config = {"strategy": {"mode": "conditional", "conditions": [], "default": "a"},
              "targets": [{"name": "a", "provider": "@openai-prod/gpt-4o-mini"},
                          {"name": "a", "provider": "@openai-prod/gpt-4o"}]}  # fmt: skip
    plan = router.resolve("support", config=config)
    assert targets(plan) == [("openai-prod", "gpt-4o-mini")]
    assert plan.attempts[0].option == "config.targets[0]"


@pytest.mark.parametrize(("query", "metadata", "params", "hit"), [
    ({"metadata.flag": {"$eq": 1}}, {"flag": True}, {}, False),  # true is not 1
    ({"metadata.flag": 1}, {"flag": True}, {}, False),
    ({"metadata.flag": {"$in": [1, 2]}}, {"flag": True}, {}, False),
    ({"metadata.flag": {"$ne": 1}}, {"flag": True}, {}, True),
    ({"metadata.flag": {"$eq": True}}, {"flag": True}, {}, True),
    ({"params.max_tokens": {"$eq": 100}}, {}, {"max_tokens": 100}, True),
    ({"params.max_tokens": {"$regex": "^1"}}, {}, {"max_tokens": 100}, True),  # as "100"
    ({"params.temperature": {"$regex": "^0\\.5$"}}, {}, {"temperature": 0.5}, True),
    ({"params.stream": {"$regex": "^true$"}}, {}, {"stream": True}, True),
    ({"params.messages": {"$regex": "."}}, {}, {"messages": []}, False),
])  # fmt: skip
def test_conditions_compare_as_json_values_do(
    router: Router, query: dict[str, Any], metadata: dict[str, Any], params: dict[str, Any],
    hit: bool,
) -> None:  # fmt: skip
    """`$eq 1` matched `true` (Python's True == 1); `$regex` never matched a number, which
    Portkey tests as JavaScript writes it."""
    config = {"strategy": {"mode": "conditional", "conditions": [{"query": query, "then": "a"}],
                           "default": "b"},
              "targets": [{"name": "a", "provider": "@openai-prod/gpt-4o"},
                          {"name": "b", "provider": "@openai-prod/gpt-4o-mini"}]}  # fmt: skip
    plan = router.resolve("support", config=config, metadata=metadata,
                          params={"messages": [], **params})  # fmt: skip
    assert plan.branch == ("a" if hit else "b")


# -- law: taking the provider from the request never widens access ------------------------
PROVIDERS = ["@openai-prod", "@openai-research", "@anthropic-prod", "@azure-eu", "@llama-local"]
MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "o4-mini", "claude-3-5-sonnet-20241022"]


def trees(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.fixed_dictionaries(
        {},
        optional={
            "provider": st.sampled_from(PROVIDERS),
            "passthrough": st.booleans(),
            "override_params": st.fixed_dictionaries({"model": st.sampled_from(MODELS)}),
        },
    )
    if depth == 0:
        return leaf
    group = st.fixed_dictionaries(
        {
            "strategy": st.fixed_dictionaries(
                {"mode": st.sampled_from(["fallback", "loadbalance", "single"])}
            ),
            "targets": st.lists(trees(depth - 1), min_size=1, max_size=3),
        }
    )
    return st.one_of(leaf, group)


@settings(max_examples=300)
@given(
    config=trees(),
    workspace=st.sampled_from(["support", "research", "data-science", "platform"]),
    provider=st.none() | st.sampled_from(PROVIDERS),
    model=st.sampled_from([*MODELS, *(f"{p}/{m}" for p in PROVIDERS[:2] for m in MODELS[:2])]),
)
def test_every_attempt_is_one_the_workspace_may_use(
    acme_router: Router, config: dict[str, Any], workspace: str, provider: str | None, model: str
) -> None:
    """Whatever the config and the request name, a plan holds only attempts the catalog
    allows the workspace: a refusal is a typed RequestError, never a wider plan."""
    try:
        plan = acme_router.resolve(workspace, model, provider=provider, config=config, seed=1)
    except RequestError:
        return
    for attempt in plan.attempts:
        assert attempt.provider is not None
        assert acme_router.bundle.decide(workspace, attempt.provider, attempt.model).allowed


@pytest.fixture(scope="module")
def acme_router(acme_bundle: bytes) -> Router:
    return Router.load(acme_bundle)
