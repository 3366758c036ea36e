"""Load is a full gate: a correctly sealed bundle whose content was changed is refused at load
with a BundleError naming the JSON path, or it serves every route: every (provider, model)
of every workspace and every config the workspace may use resolves, admits and settles,
refusing only with RequestErrors. Never an internal error after a successful load."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog_compiler.compiler import compile_catalog
from runtime import (
    Bundle,
    BundleContentError,
    BundleError,
    Estimate,
    MemoryStore,
    RequestError,
    Router,
    Usage,
)
from runtime.bundle.canonical import CanonicalError, seal
from tests.conftest import EXAMPLE

Body = dict[str, Any]
Step = str | int

# Request contexts that reach every branch of the example's conditional config.
CONTEXTS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({}, {}),
    ({"region": "eu", "tier": "free"}, {"max_tokens": 100}),
    ({"tier": "free"}, {"max_tokens": 100}),
]
SEEDS = range(4)  # loadbalance picks: enough to reach each target of the example's


@cache
def acme_body() -> str:
    compiled = compile_catalog(EXAMPLE)
    assert compiled.data is not None
    return json.dumps({k: v for k, v in json.loads(compiled.data).items() if k != "digest"})


def body() -> Body:
    data: Body = json.loads(acme_body())
    return data


# -- what "serves every route" means ------------------------------------------------------


def serve_everything(bundle: Bundle) -> int:
    """Resolve, admit and settle every route and config of every workspace; RequestErrors
    are refusals the bundle may make. Returns the number of admissions tried."""
    router = Router(bundle, MemoryStore())
    tried = 0
    for ws in sorted(bundle.workspaces):
        requests: list[dict[str, Any]] = []
        for provider in bundle.usable_providers(ws):
            for model in sorted(provider.exposed):  # allowed or not: each answers typed
                requests.append({"model": f"@{provider.slug}/{model}"})
        configs = [
            s for s, c in bundle.configs.items() if c.workspaces is None or ws in c.workspaces
        ]
        default = bundle.workspaces[ws].default_config
        for slug in sorted({*configs, *([default] if default else [])}):
            for metadata, params in CONTEXTS:
                for seed in SEEDS:
                    requests.append({"config": slug, "metadata": metadata, "params": params,
                                     "seed": seed})  # fmt: skip
        for request in requests:
            try:
                plan = router.resolve(ws, **request)
            except RequestError:
                continue
            for attempt in plan.attempts:
                tried += 1
                try:
                    with router.admit(attempt, Estimate(input_tokens=120, max_tokens=80)) as ticket:
                        ticket.settle(Usage(input_tokens=120, output_tokens=40))
                except RequestError:
                    pass
    return tried


def loads_or_serves(data: bytes) -> str:
    """ "refused" or "served"; any other outcome is an exception, and a test failure."""
    try:
        bundle = Bundle.load(data)
    except BundleError as exc:
        assert "unchecked" not in str(exc), f"the safety net caught what the gate missed: {exc}"
        return "refused"
    serve_everything(bundle)
    return "served"


def test_the_example_serves_every_route() -> None:
    bundle = Bundle.load(seal(body()))
    assert serve_everything(bundle) > 100


# -- random structural mutations ------------------------------------------------------------

HOSTILE: list[Any] = [
    None, True, False, 0, -1, 1, 1.5, -0.5, 1e-7, 1e20, 2**53 - 1, -(2**53 - 1), 10**15 + 1,
    "", "NaN", "Infinity", "-Infinity", "-1", "1e400", "1e3", "0.0000001", "-0", "0", "1",
    "10001", "x" * 5000, "abc", "daily", "weekly2", "0d", "10000d", "usd", "eur", "minute",
    "organization", "nope/nope", "workspace/nope", "@nope", "*", "$regex", "(", "(?<=a)b",
    "env:", "file:", "env:OK_NAME", "sk-proj-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0123", "target",
    "conditional", "loadbalance", "\u2028", "\ud7ff\U0001f600", "https://evil.example",
    [], {}, [[]], [1, 2, 3], ["x"], {"$and": []}, {"unexpected": 1}, {"mode": "target"},
    {"metadata.x": {"$like": 1}}, {"metadata.x": {"$in": "abc"}},
]  # fmt: skip


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": [value]}
    return value


HOSTILE += [deep(40), deep(90)]


def paths(value: Any, at: tuple[Step, ...] = ()) -> list[tuple[Step, ...]]:
    """Every member and item, except inside provenance's long tables."""
    out = [at]
    if at[:2] in (("provenance", "origins"), ("provenance", "files")):
        return out
    if isinstance(value, dict):
        for key, v in value.items():
            out += paths(v, (*at, key))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*at, i))
    return out


def parent_of(root: Body, path: tuple[Step, ...]) -> Any:
    node: Any = root
    for step in path[:-1]:
        node = node[step]
    return node


def mutate(root: Body, path: tuple[Step, ...], how: str, value: Any) -> None:
    if not path:
        return
    parent, last = parent_of(root, path), path[-1]
    if how == "delete":
        del parent[last]
    elif how == "replace":
        parent[last] = copy.deepcopy(value)
    elif how == "wrap":
        parent[last] = [parent[last]]
    elif how == "stringify":
        parent[last] = json.dumps(parent[last])
    elif how == "rename" and isinstance(parent, dict):
        parent[f"{last}x"] = parent.pop(last)
    elif how == "duplicate" and isinstance(parent, list):
        parent.insert(int(last), copy.deepcopy(parent[last]))
    elif how == "empty":
        parent[last] = type(parent[last])() if isinstance(parent[last], (dict, list)) else ""


HOW = ["delete", "replace", "replace", "replace", "wrap", "stringify", "rename", "duplicate",
       "empty"]  # fmt: skip


@st.composite
def mutated_bodies(draw: st.DrawFn) -> Body:
    root = body()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(root)))
        mutate(root, path, draw(st.sampled_from(HOW)), draw(st.sampled_from(HOSTILE)))
    return root


OUTCOMES: dict[str, int] = {"refused": 0, "served": 0}


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_bodies())
def test_a_resealed_mutation_is_refused_at_load_or_serves_every_route(root: Body) -> None:
    if not isinstance(root.get("format"), str) or root.get("format") != "catalog-bundle/2":
        root["format"] = "catalog-bundle/2"  # a changed format is the format check's business
    try:
        data = seal(root)
    except CanonicalError:  # nested past what a bundle may be: no bundle to load
        OUTCOMES["refused"] += 1
        return
    OUTCOMES[loads_or_serves(data)] += 1


# -- semantic breakages, one by one ---------------------------------------------------------


def at(*steps: Step) -> Callable[[Body], Any]:
    def get(root: Body) -> Any:
        node: Any = root
        for step in steps:
            node = node[step]
        return node

    return get


def setter(*steps: Step, value: Any) -> Callable[[Body], None]:
    def change(root: Body) -> None:
        at(*steps[:-1])(root)[steps[-1]] = copy.deepcopy(value)

    return change


def deleter(*steps: Step) -> Callable[[Body], None]:
    def change(root: Body) -> None:
        del at(*steps[:-1])(root)[steps[-1]]

    return change


def doing(*changes: Callable[[Body], None]) -> Callable[[Body], None]:
    def change(root: Body) -> None:
        for c in changes:
            c(root)

    return change


ORG_BUDGET = ("counters", "organization", "budgets", 0)
RATE = ("counters", "organization", "rate_limits", 0)
GPT = ("providers", "openai-prod", "models", "gpt-4o")
EU = ("configs", "eu-router", "tree")
LB = ("configs", "research-lb", "tree")
BOT = ("configs", "support-bot", "tree")
LEAF = (*BOT, "targets", 0)
TOKENS = ("counters", "workspace/platform", "budgets", 0)

BREAKAGES: list[tuple[str, Callable[[Body], None], str]] = [
    # credentials a re-sealed bundle carries, which the compiler refuses (E0301): the tools
    # printed them and the gateway would send them (a review)
    ("a password in a base URL", setter("integrations", "gpu-cluster", "base_url",
     value="https://admin:pw-FAKE-0000@llm.internal.acme.example/v1"), "integrations.gpu-cluster.base_url"),
    ("a literal credential header", setter("integrations", "gpu-cluster", "headers",
     value={"X-Api-Key": "literal-FAKE-0000"}), "integrations.gpu-cluster.headers"),
    # counters and their limits
    ("no organization counter", deleter("counters", "organization"), "counters"),
    ("a counter of an unknown level", setter("counters", "team/x", value={"budgets": [], "rate_limits": []}), 'counters["team/x"]'),
    ("budget unit eur", setter(*ORG_BUDGET, "unit", value="eur"), "counters.organization.budgets[0].unit"),
    ("budget period fortnightly", setter(*ORG_BUDGET, "period", value="fortnightly"), "counters.organization.budgets[0].period"),
    ("budget period 0d", setter(*ORG_BUDGET, "period", value="0d"), "counters.organization.budgets[0].period"),
    ("usd limit NaN", setter(*ORG_BUDGET, "limit", value="NaN"), "counters.organization.budgets[0].limit"),
    ("usd limit malformed decimal", setter(*ORG_BUDGET, "limit", value="5,000"), "counters.organization.budgets[0].limit"),
    ("usd limit negative", setter(*ORG_BUDGET, "limit", value="-5"), "counters.organization.budgets[0].limit"),
    ("usd limit as a JSON number", setter(*ORG_BUDGET, "limit", value=50000), "counters.organization.budgets[0].limit"),
    ("usd limit above 1e9", setter(*ORG_BUDGET, "limit", value="1000000001"), "counters.organization.budgets[0].limit"),
    ("tokens limit fractional", setter(*TOKENS, "limit", value=5.5), 'counters["workspace/platform"].budgets[0].limit'),
    ("tokens limit above 1e15", setter(*TOKENS, "limit", value=10**15 + 1), 'counters["workspace/platform"].budgets[0].limit'),
    ("alert threshold above 1", setter(*ORG_BUDGET, "alert_threshold", value="1.5"), "counters.organization.budgets[0].alert_threshold"),
    ("alert threshold 0", setter(*ORG_BUDGET, "alert_threshold", value="0"), "counters.organization.budgets[0].alert_threshold"),
    ("two budgets for one unit and period", lambda r: at(*ORG_BUDGET[:-1])(r).append(dict(at(*ORG_BUDGET)(r))), "counters.organization.budgets[1]"),
    ("a budget among the rate limits", lambda r: at(*RATE[:-1])(r).append(dict(at(*ORG_BUDGET)(r))), "counters.organization.rate_limits[1]"),
    ("rate limit per week", setter(*RATE, "per", value="week"), "counters.organization.rate_limits[0].per"),
    ("rate limit in usd", setter(*RATE, "unit", value="usd"), "counters.organization.rate_limits[0].unit"),
    ("rate limit negative", setter(*RATE, "limit", value=-1), "counters.organization.rate_limits[0].limit"),
    ("burst 0 under a positive limit", setter(*RATE, "burst", value=0), "counters.organization.rate_limits[0].burst"),
    ("burst that never refills", doing(setter(*RATE, "per", value="day"), setter(*RATE, "limit", value=1), setter(*RATE, "burst", value=36_501)), "counters.organization.rate_limits[0].burst"),
    ("concurrency negative", setter("counters", "organization", "concurrency", value=-1), "counters.organization.concurrency"),
    ("concurrency as text", setter("counters", "organization", "concurrency", value="400"), "counters.organization.concurrency"),
    # providers, models and prices
    ("chain names an unknown counter", setter("providers", "openai-prod", "chain", 2, value="provider/ghost"), "providers.openai-prod.chain[2]"),
    ("chain empty", setter("providers", "openai-prod", "chain", value=[]), "providers.openai-prod.chain"),
    ("provider on an unknown integration", setter("providers", "openai-prod", "integration", value="ghost"), "providers.openai-prod.integration"),
    ("model the integration does not expose", setter("providers", "openai-prod", "models", "ghost-1", value={"mode": "chat", "prices": {}, "price_sources": {}}), 'providers.openai-prod.models.ghost-1'),
    ("exposed, allowed model without its entry", deleter(*GPT), "providers.openai-prod.models"),
    ("price malformed decimal", setter(*GPT, "prices", "input", value="2.5.1"), 'providers.openai-prod.models.gpt-4o.prices.input'),
    ("price NaN", setter(*GPT, "prices", "input", value="NaN"), 'providers.openai-prod.models.gpt-4o.prices.input'),
    ("prices that are another model's price sources", lambda r: at(*GPT)(r).__setitem__("prices", dict(next(iter(at("providers", "anthropic-prod", "models")(r).values()))["price_sources"])), 'providers.openai-prod.models.gpt-4o.prices'),
    ("price above 10000", setter(*GPT, "prices", "output", value="10001"), 'providers.openai-prod.models.gpt-4o.prices.output'),
    ("price with 11 decimal places", setter(*GPT, "prices", "input", value="0.00000000001"), 'providers.openai-prod.models.gpt-4o.prices.input'),
    ("per-request fee above 100", setter(*GPT, "prices", "per_request", value="100.5"), 'providers.openai-prod.models.gpt-4o.prices.per_request'),
    ("context window 0", setter(*GPT, "context_window", value=0), 'providers.openai-prod.models.gpt-4o.context_window'),
    ("max output tokens negative", setter(*GPT, "max_output_tokens", value=-5), 'providers.openai-prod.models.gpt-4o.max_output_tokens'),
    ("unknown price source", setter(*GPT, "price_sources", "input", value="guess"), 'providers.openai-prod.models.gpt-4o.price_sources.input'),
    ("allowed host that is a URL", setter("providers", "openai-prod", "allowed_hosts", value=["https://evil.example/x"]), "providers.openai-prod.allowed_hosts[0]"),
    ("300 allowed hosts", setter("providers", "openai-prod", "allowed_hosts", value=[f"h{i}.example" for i in range(300)]), "providers.openai-prod.allowed_hosts"),
    ("default params nested 80 deep", setter("providers", "openai-prod", "default_params", value=deep(80)), "providers.openai-prod.default_params"),
    # integrations
    ("wire format unknown", setter("integrations", "openai-main", "api", value="soap"), "integrations.openai-main.api"),
    ("a literal secret as a credential", setter("integrations", "openai-main", "credentials", "api_key", value="sk-proj-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0123"), "integrations.openai-main.credentials.api_key"),
    # workspaces
    ("workspace counter unknown", setter("workspaces", "support", "counter", value="workspace/ghost"), "workspaces.support.counter"),
    ("default config unknown", setter("workspaces", "support", "default_config", value="ghost"), "workspaces.support.default_config"),
    ("price rule with neither prices nor free", setter("workspaces", "support", "pricing", value=[{"model": "gpt-4o"}]), "workspaces.support.pricing[0]"),
    ("api key that is not a sha256", setter("workspaces", "support", "api_keys", value=[{"name": "k", "sha256": "sk-live", "disabled": False}]), "workspaces.support.api_keys[0].sha256"),
    ("one api key in two workspaces", doing(setter("workspaces", "support", "api_keys", value=[{"name": "a", "sha256": "a" * 64, "disabled": False}]), setter("workspaces", "research", "api_keys", value=[{"name": "b", "sha256": "a" * 64, "disabled": False}])), "workspaces.support.api_keys[0].sha256"),
    # organization and top level
    ("epoch not a calendar date", setter("organization", "epoch", value="2026-02-30"), "organization.epoch"),
    ("currency EUR", setter("organization", "currency", value="EUR"), "organization.currency"),
    ("unknown top-level member", setter("extra", value={}), "extra"),
    ("missing configs", deleter("configs"), ""),
    # routing configs
    ("conditional then names no target", setter(*EU, "strategy", "conditions", 0, "then", value="ghost"), "configs.eu-router.tree.strategy.conditions[0].then"),
    # (a conditional without `default` is valid: Portkey accepts it; nothing matching is a 400)
    ("conditional default names no target", setter(*EU, "strategy", "default", value="ghost"), "configs.eu-router.tree.strategy.default"),
    ("loadbalance with every weight 0", doing(*(setter(*LB, "targets", i, "weight", value="0") for i in range(3))), "configs.research-lb.tree.targets"),
    ("weight negative", setter(*LB, "targets", 0, "weight", value="-1"), "configs.research-lb.tree.targets[0].weight"),
    ("weight null", setter(*LB, "targets", 0, "weight", value=None), "configs.research-lb.tree.targets[0].weight"),
    ("strategy without targets", setter(*BOT, "targets", value=[]), "configs.support-bot.tree.targets"),
    ("node mode roundrobin", setter(*LB, "mode", value="roundrobin"), "configs.research-lb.tree.mode"),
    ("regex that cannot compile", setter(*EU, "strategy", "conditions", 0, "query", value={"metadata.x": {"$regex": "("}}), 'configs.eu-router.tree.strategy.conditions[0].query["metadata.x"]["$regex"]'),
    ("unknown query operator", setter(*EU, "strategy", "conditions", 0, "query", value={"metadata.x": {"$like": "a"}}), 'configs.eu-router.tree.strategy.conditions[0].query["metadata.x"]["$like"]'),
    ("$in with a string", setter(*EU, "strategy", "conditions", 0, "query", value={"metadata.x": {"$in": "eu"}}), 'configs.eu-router.tree.strategy.conditions[0].query["metadata.x"]["$in"]'),
    ("$and with an object", setter(*EU, "strategy", "conditions", 0, "query", value={"$and": {"metadata.x": 1}}), 'configs.eu-router.tree.strategy.conditions[0].query["$and"]'),
    ("drop path naming no field", setter(*LEAF, "params", "drop", value=[".."]), "configs.support-bot.tree.targets[0].params.drop[0]"),
    ("target on an unknown provider", setter(*LEAF, "provider", value="ghost"), "configs.support-bot.tree.targets[0].provider"),
    ("retry 6 attempts", setter(*LEAF, "retry", "attempts", value=6), "configs.support-bot.tree.targets[0].retry.attempts"),
    ("status code 700", setter(*BOT, "strategy", "on_status_codes", value=[700]), "configs.support-bot.tree.strategy.on_status_codes[0]"),
    ("request timeout 0", setter(*LEAF, "request_timeout", value=0), "configs.support-bot.tree.targets[0].request_timeout"),
    ("a literal secret in a target", setter(*LEAF, "api_key", value="sk-proj-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0123"), "configs.support-bot.tree.targets[0].api_key"),
    ("strategies nested 70 deep", setter(*BOT, "targets", 0, value=json.loads('{"mode":"fallback","strategy":{},"targets":[' * 70 + '{"mode":"target","params":{"default":{},"drop":[],"override":{}}}' + "]}" * 70)), "configs.support-bot.tree.targets[0]"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "path"), [(c, p) for _, c, p in BREAKAGES], ids=[n for n, _, _ in BREAKAGES]
)
def test_each_semantic_breakage_is_refused_at_load_with_its_path(
    change: Callable[[Body], None], path: str
) -> None:
    root = body()
    change(root)
    with pytest.raises(BundleContentError) as info:
        Bundle.load(seal(root))
    assert info.value.path.startswith(path), (info.value.path, str(info.value))
    assert f"`{info.value.path}`" in str(info.value) or not info.value.path
    assert "unchecked" not in str(info.value)


def test_reload_keeps_the_old_bundle_for_every_breakage() -> None:
    router = Router.load(seal(body()))
    good = router.bundle.digest
    for name, change, _ in BREAKAGES:
        root = body()
        change(root)
        with pytest.raises(BundleError):
            router.reload(seal(root))
        assert router.bundle.digest == good, name
    assert router.resolve("support", "@openai-prod/gpt-4o").attempts[0].model == "gpt-4o"


def test_a_blank_credential_header_the_compiler_accepts_loads(tmp_path: Any) -> None:
    """The load gate refuses a literal credential header; a blank one the compiler accepts
    (`Cookie: ""`), so refusing it made `catalogc compile` an internal error (a re-check)."""
    from tests.runtime.conftest import compile_files

    data = compile_files(tmp_path / "c", {
        "catalog.yaml": "kind: Organization\nversion: 1\nname: H\n",
        "i.yaml": "kind: Integration\nslug: i\nservice: openai\ncredentials: {api_key: {env: K}}\n"
                  "---\nkind: Provider\nslug: p\nintegration: i\n"
                  'headers: {Cookie: "", X-Api-Key: " "}\n',
    })  # fmt: skip
    assert Bundle.load(data).providers["p"] is not None
