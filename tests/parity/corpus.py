"""The corpus of the differential tests: Portkey-docs configs, each rewritten into the two
forms that mean "the same routing" to each gateway, and the cases (config, request, upstream
script) run through both.

A config's leaves (targets without `targets`) are numbered t0, t1, … in depth-first order;
leaf tN goes to the recording upstream's path /tN/v1 on both sides:

- Portkey's raw form: `provider: "openai"`, an obviously fake `api_key`, and
  `custom_host: http://127.0.0.1:<portkey lane>/tN/v1` (loopback hosts are trusted by default);
- our form: `provider: "@tN"`, a catalog provider whose `openai-compatible` integration has
  `base_url: http://127.0.0.1:<our lane>/tN/v1` (the catalog below).

`override_params.model` loses its `@slug/` part on both sides (the slug only named the
provider, which the rewrite replaced). Every other field is kept as it is, on both sides.

The configs come from $CATALOG_SHARED_DATA/portkey-configs/*.json (never copied here); the
generated ones from hypothesis strategies, drawn once (derandomized) at collection time."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED_DATA
from tests.gateway.harness import sha256

# -- the two forms ------------------------------------------------------------------------
N_TARGETS = 8  # providers t0..t7 in our catalog; no case has more leaves
PORTKEY_UPSTREAM_KEY = "sk-test-FAKE-parity"
UPSTREAM_ENV = {"PARITY_FAKE_UPSTREAM_KEY": "sk-test-FAKE-parity-upstream-0001"}
WORKSPACE_KEY = "sk-test-FAKE-parity-workspace-0000"
REQUEST_MODEL = "gpt-4o-mini"
# Every model name a case can send upstream (the request's, and the bare names of the
# corpus's override_params.model); each of our providers offers all of them.
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-sonnet-4-20250514", "claude-3-5-sonnet-20241022")
PROVIDER_KEYS = ("provider", "virtual_key")


def target_id(index: int) -> str:
    return f"t{index}"


def bare_model(model: Any) -> Any:
    """`@openai-prod/gpt-4o` -> `gpt-4o`; other values unchanged."""
    if isinstance(model, str) and model.startswith("@") and "/" in model:
        return model.split("/", 1)[1]
    return model


def leaves(config: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The leaves of a config tree, depth first (the order of target ids)."""
    children = config.get("targets")
    if isinstance(children, list) and children:
        for child in children:
            yield from leaves(child)
    else:
        yield config


def _rewrite(config: Mapping[str, Any], leaf: Any) -> dict[str, Any]:
    counter = iter(range(10_000))

    def walk(node: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(node))
        children = out.get("targets")
        if isinstance(children, list) and children:
            out["targets"] = [walk(child) for child in children]
            return out
        for key in PROVIDER_KEYS:
            out.pop(key, None)
        params = out.get("override_params")
        if isinstance(params, dict) and "model" in params:
            out["override_params"] = {**params, "model": bare_model(params["model"])}
        result: dict[str, Any] = leaf(out, target_id(next(counter)))
        return result

    return walk(config)


def portkey_form(config: Mapping[str, Any], base_url: Any) -> dict[str, Any]:
    """Portkey's raw form; `base_url(target_id)` is the upstream's …/tN/v1 for its lane."""

    def leaf(node: dict[str, Any], tid: str) -> dict[str, Any]:
        return {"provider": "openai", "api_key": PORTKEY_UPSTREAM_KEY,
                "custom_host": base_url(tid), **node}  # fmt: skip

    return _rewrite(config, leaf)


def our_form(config: Mapping[str, Any]) -> dict[str, Any]:
    """Our inline form: catalog providers only (docs/inline-configs.md)."""

    def leaf(node: dict[str, Any], tid: str) -> dict[str, Any]:
        return {"provider": f"@{tid}", **node}

    return _rewrite(config, leaf)


# -- our catalog ---------------------------------------------------------------------------
def catalog(base_url: Any) -> dict[str, str]:
    """Providers t0..t7 (one openai-compatible integration each at the recorder's our-lane
    /tN/v1, priced custom models), one workspace with a key and no limits."""
    models = "".join(
        f"      - {{name: {m}, context_window: 128000, max_output_tokens: 4096, "
        f'pricing: {{input: "1", output: "2"}}}}\n'
        for m in MODELS
    )
    docs = []
    for i in range(N_TARGETS):
        tid = target_id(i)
        docs.append(
            f"kind: Integration\nslug: up-{tid}\nservice: openai-compatible\n"
            f"base_url: {base_url(tid)}\n"
            f"credentials: {{api_key: {{env: PARITY_FAKE_UPSTREAM_KEY}}}}\n"
            f"models:\n  custom:\n{models}"
            f"---\nkind: Provider\nslug: {tid}\nintegration: up-{tid}\n"
        )
    providers = ", ".join(f'"@{target_id(i)}"' for i in range(N_TARGETS))
    workspace = (
        f"kind: Workspace\nslug: parity\nproviders: [{providers}]\n"
        f'api_keys:\n  - {{name: parity, sha256: "{sha256(WORKSPACE_KEY)}"}}\n'
    )
    return {
        "catalog.yaml": "kind: Organization\nversion: 1\nname: Parity tests\n",
        "upstreams.yaml": "---\n".join(docs),
        "workspace.yaml": workspace,
    }


# -- cases ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One request through one config, with the upstream's script.

    `runs` > 1: a loadbalance makes the outcome random; both gateways get the request `runs`
    times and the *sets* of outcomes are compared (exact per-target statistics are the
    chi-square test's job)."""

    name: str
    config: dict[str, Any]
    script: dict[str, tuple[str, ...]] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    body: dict[str, Any] = field(default_factory=dict)  # added to the request body
    runs: int = 1
    slow: bool = False

    def describe(self) -> str:
        return json.dumps({"config": self.config, "script": self.script,
                           "metadata": self.metadata, "body": self.body},
                          separators=(",", ":"))  # fmt: skip


def data_dir() -> Path:
    return SHARED_DATA / "portkey-configs"


def data_configs() -> dict[str, dict[str, Any]]:
    """Every config of the shared data set, by file stem (read at test time, never copied)."""
    directory = data_dir()
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return out


# Scripts exercising each data config's fallbacks and retries. The config files are read at
# test time; a config the table does not know gets the default cases (all 200, t0 500).
DATA_CASES: dict[str, list[tuple[str, dict[str, tuple[str, ...]], dict[str, Any]]]] = {
    # loadbalance [t0, fallback(429, 500)[t1, t2]]: random first choice (runs > 1)
    "01": [
        ("all-ok", {}, {"runs": 16}),
        ("backup-429-then-anthropic", {"t1": ("429",) * 16}, {"runs": 16}),
        ("backup-503-no-fallback", {"t1": ("503",) * 16}, {"runs": 16}),
        ("backup-246", {"t1": ("246",) * 16}, {"runs": 16}),
    ],
    # one provider, semantic cache, retry 5 on 429 (Portkey waits 1 s, 2 s, 4 s, ...)
    "02": [
        ("ok", {}, {}),
        ("429-then-ok", {"t0": ("429/ra=0", "200")}, {}),
        ("500-not-retried", {"t0": ("500",)}, {}),
        ("429-six-times", {"t0": ("429/ra=0",) * 6}, {"slow": True}),
    ],
    # fallback [t0 gpt-4o, conditional(EU -> t1, default t2)]
    "05": [
        ("ok", {}, {}),
        ("t0-500-eu", {"t0": ("500",)}, {"metadata": {"user_region": "EU"}}),
        ("t0-500-us", {"t0": ("500",)}, {"metadata": {"user_region": "US"}}),
        ("t0-429-eu-500", {"t0": ("429",), "t1": ("500",)}, {"metadata": {"user_region": "EU"}}),
        ("t0-246", {"t0": ("246",)}, {}),
    ],
    # conditional $and / $or / $regex, default
    "06": [
        ("pro-tier1", {}, {"metadata": {"user_type": "pro", "user_tier": "tier-1"}}),
        ("client-ui", {}, {"metadata": {"client": "UI"}}),
        ("app-regex", {}, {"metadata": {"app_name": "the_my_app_v2"}}),
        ("pro-only-default", {}, {"metadata": {"user_type": "pro"}}),
        ("no-metadata", {}, {}),
        ("chosen-500", {"t1": ("500",)}, {"metadata": {"client": "UI"}}),
    ],
    # fallback with default_params / override_params / drop_params, then another model
    "09": [
        ("ok", {}, {}),
        ("t0-500", {"t0": ("500",)}, {}),
        ("t0-400", {"t0": ("400",)}, {}),
        (
            "params",
            {},
            {
                "body": {
                    "logprobs": True,
                    "temperature": 0.2,
                    "tools": [
                        {
                            "type": "function",
                            "function": {
                                "name": "f",
                                "strict": True,
                                "parameters": {"type": "object"},
                            },
                        }
                    ],
                }
            },
        ),
        ("both-503", {"t0": ("503",), "t1": ("503",)}, {}),
    ],
    # fallback, a cache per target
    "12": [
        ("ok", {}, {}),
        ("t0-503", {"t0": ("503",)}, {}),
        ("both-502", {"t0": ("502",), "t1": ("502",)}, {}),
        ("t0-246", {"t0": ("246",)}, {}),
    ],
    # request_timeout 1000, retry 3 on 408
    "13": [
        ("ok", {}, {}),
        ("hang-then-ok", {"t0": ("hang",)}, {}),
        ("408-then-ok", {"t0": ("408",)}, {}),
        ("500-not-retried", {"t0": ("500",)}, {}),
        ("hang-always", {"t0": ("hang",) * 4}, {"slow": True}),
    ],
    # single, legacy virtual_key
    "14": [
        ("ok", {}, {}),
        ("503", {"t0": ("503",)}, {}),
        ("429", {"t0": ("429/ra=0",)}, {}),
    ],
}
DEFAULT_DATA_CASES: list[tuple[str, dict[str, tuple[str, ...]], dict[str, Any]]] = [
    ("ok", {}, {}),
    ("t0-500", {"t0": ("500",)}, {}),
]


# Hand-written cases for semantics the data configs do not reach cheaply: a retry that
# runs out, Retry-After with use_retry_after_header, a target's own on_status_codes, a
# conditional without `default`, a weight of 0.
HANDMADE: list[Case] = [
    Case("hand-retry-exhausted", {"provider": "@a", "retry": {"attempts": 1}},
         {"t0": ("500", "502")}),
    Case("hand-retry-exhausted-then-fallback",
         {"strategy": {"mode": "fallback"},
          "targets": [{"provider": "@a", "retry": {"attempts": 1, "on_status_codes": [429]}},
                      {"provider": "@b"}]},
         {"t0": ("429", "429")}),
    Case("hand-retry-then-other-status", {"provider": "@a", "retry": {"attempts": 1}},
         {"t0": ("500", "400")}),
    Case("hand-retry-after-header",
         {"provider": "@a", "retry": {"attempts": 1, "use_retry_after_header": True}},
         {"t0": ("429/ra=1",)}),
    Case("hand-target-on-status-codes",
         {"strategy": {"mode": "fallback"},
          "targets": [{"provider": "@a", "on_status_codes": [429]}, {"provider": "@b"}]},
         {"t0": ("500",)}),
    Case("hand-strategy-on-status-codes-246",
         {"strategy": {"mode": "fallback", "on_status_codes": [246, 500]},
          "targets": [{"provider": "@a"}, {"provider": "@b"}]},
         {"t0": ("246",)}),
    Case("hand-conditional-no-default-match",
         {"strategy": {"mode": "conditional",
                       "conditions": [{"query": {"metadata.tier": {"$eq": "pro"}}, "then": "a"}]},
          "targets": [{"name": "a", "provider": "@a"}, {"name": "b", "provider": "@b"}]},
         {}, {"tier": "pro"}),
    Case("hand-timeout-retried",
         {"provider": "@a", "request_timeout": 300, "retry": {"attempts": 1, "on_status_codes": [408]}},
         {"t0": ("hang",)}),
    Case("hand-loadbalance-weight-0",
         {"strategy": {"mode": "loadbalance"},
          "targets": [{"provider": "@a", "weight": 0}, {"provider": "@b", "weight": 1}]}),
]  # fmt: skip


def data_cases() -> list[Case]:
    cases = []
    for stem, config in data_configs().items():
        for name, script, extra in DATA_CASES.get(stem, DEFAULT_DATA_CASES):
            cases.append(Case(f"data-{stem}-{name}", config, dict(script), **extra))
    return cases


# -- generated trees -----------------------------------------------------------------------
STEPS = ("200", "246", "400", "408", "429", "429/ra=0", "500", "502", "503", "504")
CODES = (246, 400, 408, 429, 500, 502, 503, 504)
TIMEOUT_MS = 500
MAX_LEAVES = 6
# Portkey waits 1 s before the first retry of a call, 2 s before the second (async-retry,
# factor 2, no jitter; measured): a generated case may cost at most this many seconds of it.
MAX_BACKOFF_SECONDS = 3
GENERATED_EXAMPLES = 40
CANDIDATES_PER_CASE = 3

codes = st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True).map(sorted)
retries = st.fixed_dictionaries(
    {"attempts": st.integers(0, 2)}, optional={"on_status_codes": codes}
)


def _leaf(draw: st.DrawFn) -> dict[str, Any]:
    node: dict[str, Any] = {"provider": "@generated"}
    if draw(st.booleans()):
        node["override_params"] = {"model": draw(st.sampled_from(["gpt-4o", "@openai/gpt-4o"]))}
    if draw(st.booleans()):
        node["retry"] = draw(retries)
    if draw(st.integers(0, 3)) == 0:
        node["on_status_codes"] = draw(codes)
    return node


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """A fallback / conditional / single / one-target loadbalance tree (or a leaf)."""
    if depth >= 2 or draw(st.integers(0, 3)) == 0:
        return _leaf(draw)
    mode = draw(st.sampled_from(["fallback", "fallback", "conditional", "single", "loadbalance"]))
    width = 1 if mode in ("single", "loadbalance") else draw(st.integers(2, 3))
    children = [draw(trees(depth + 1)) for _ in range(width)]
    strategy: dict[str, Any] = {"mode": mode}
    if mode == "fallback" and draw(st.booleans()):
        strategy["on_status_codes"] = draw(codes)
    if mode == "conditional":
        for i, child in enumerate(children):
            child["name"] = f"n{depth}{i}"
        strategy["conditions"] = [
            {"query": {"metadata.tier": {"$eq": "pro"}}, "then": children[0]["name"]},
            {"query": {"metadata.region": {"$in": ["eu", "uk"]}}, "then": children[1]["name"]},
        ]
        strategy["default"] = children[-1]["name"]
    if mode == "loadbalance" and draw(st.booleans()):
        children[0]["weight"] = draw(st.sampled_from([1, 2, 0.5]))
    node: dict[str, Any] = {"strategy": strategy, "targets": children}
    if draw(st.integers(0, 3)) == 0:
        node["retry"] = draw(retries)
    if mode != "fallback" and draw(st.integers(0, 4)) == 0:
        node["on_status_codes"] = draw(codes)
    return node


def _backoff_bound(config: Mapping[str, Any], script: Mapping[str, Sequence[str]]) -> int:
    """An upper bound of Portkey's retry waits (seconds) for this case: each leaf's effective
    retry (its own, else the nearest ancestor's) against the failures scripted for it."""
    total = 0
    counter = iter(range(10_000))

    def walk(node: Mapping[str, Any], retry: Mapping[str, Any] | None) -> None:
        nonlocal total
        retry = node.get("retry", retry)
        children = node.get("targets")
        if isinstance(children, list) and children:
            for child in children:
                walk(child, retry)
            return
        tid = target_id(next(counter))
        attempts = int(retry.get("attempts", 0)) if retry else 0
        failures = sum(1 for step in script.get(tid, ()) if step not in ("200",))
        total += sum(2**i for i in range(min(attempts, failures)))

    walk(config, None)
    return total


@st.composite
def generated_case(draw: st.DrawFn) -> Case:
    config = draw(trees())
    if draw(st.booleans()):
        config["request_timeout"] = TIMEOUT_MS
    n = len(list(leaves(config)))
    steps = [*STEPS, "hang"] if "request_timeout" in config else list(STEPS)
    script = {}
    for i in range(n):
        answers = draw(st.lists(st.sampled_from(steps), max_size=3))
        if answers:
            script[target_id(i)] = tuple(answers)
    metadata = draw(st.sampled_from([None, {"tier": "pro"}, {"region": "uk"}, {"tier": "free"}]))
    return Case("", config, script, metadata)


def generated_cases(count: int = GENERATED_EXAMPLES) -> list[Case]:
    """`count` distinct cases, the same on every run (hypothesis, derandomized), each with a
    script, within MAX_LEAVES leaves and MAX_BACKOFF_SECONDS of Portkey's retry waits, at most
    a quarter of them single leaves. Derandomized hypothesis explores by small mutations, so
    neighbouring examples are near copies: the cases are taken evenly spaced from a longer
    run of candidates."""
    drawn: list[Case] = []
    seen: set[str] = set()
    pool = count * CANDIDATES_PER_CASE

    @settings(max_examples=pool * 3, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(generated_case())
    def collect(case: Case) -> None:
        n = len(list(leaves(case.config)))
        if len(drawn) >= pool or n > MAX_LEAVES or not case.script:
            return
        if _backoff_bound(case.config, case.script) > MAX_BACKOFF_SECONDS:
            return
        key = case.describe()
        if key not in seen:
            seen.add(key)
            drawn.append(case)

    collect()
    chosen: list[Case] = []
    singles = 0
    step = max(1, len(drawn) // count)
    for offset in range(step):  # evenly spaced; further offsets only if short
        for case in drawn[offset::step]:
            single = len(list(leaves(case.config))) == 1
            if len(chosen) >= count or case in chosen or (single and singles >= count // 4):
                continue
            singles += single
            chosen.append(case)
    return [Case(f"gen-{i:02d}", c.config, c.script, c.metadata) for i, c in enumerate(chosen)]
