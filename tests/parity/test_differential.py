"""Differential tests: one Portkey routing config means the same in our gateway as in
Portkey's open-source gateway 1.15.2.

Each case (a config, a request, an upstream script) runs through both gateways against the
same recording upstream; the sequence of upstream calls (which target, which model, which
parameters; so how many retries and fallbacks), the final status, the body's shape and the
`x-portkey-*` headers must be equal — except the deliberate differences listed in
`compare.DELIBERATE_HEADERS` and `DELIBERATE_CASES` below, each with its reason.

The corpus: every config of $CATALOG_SHARED_DATA/portkey-configs with scripts that exercise
its fallbacks and retries (corpus.DATA_CASES), and hypothesis-generated nested trees
(corpus.generated_cases). Every difference found was either fixed on our side or is listed
here as deliberate, with its reason; docs/portkey-compat.md is the whole table."""

from __future__ import annotations

from typing import Any

import pytest

from tests.parity.compare import (
    Gateways,
    Observation,
    differences,
    explain,
    spec_params,
)
from tests.parity.corpus import (
    HANDMADE,
    Case,
    data_cases,
    data_configs,
    data_dir,
    generated_cases,
)
from tests.parity.recorder import Call

# Cases where ours differs from Portkey on purpose (a governance refusal of docs/inline-
# configs.md, say): case name -> reason. These are expected to fail (strict xfail).
DELIBERATE_CASES: dict[str, str] = {}

DATA = data_cases()
GENERATED = generated_cases()
MIN_CONFIGS = 40


def _param(case: Case) -> object:
    marks = []
    if case.slow:
        marks.append(pytest.mark.slow)
    if case.name in DELIBERATE_CASES:
        marks.append(pytest.mark.xfail(reason=DELIBERATE_CASES[case.name], strict=True))
    return pytest.param(case, id=case.name, marks=marks)


def test_the_corpus_is_whole() -> None:
    """Every shared config is in the corpus, and there are at least 40 configs in all."""
    configs = data_configs()
    assert configs, f"no Portkey configs under {data_dir()} (set CATALOG_SHARED_DATA)"
    covered = {case.config.__repr__() for case in DATA}
    assert all(repr(c) in covered for c in configs.values())
    assert len(configs) + len(GENERATED) >= MIN_CONFIGS, (len(configs), len(GENERATED))


def compare_case(gateways: Gateways, case: Case) -> None:
    portkey: list[Observation] = []
    ours: list[Observation] = []
    for _ in range(case.runs):
        pk, our = gateways.run(case)
        portkey.append(pk)
        ours.append(our)
    if case.runs == 1:
        found = differences(portkey[0], ours[0], case.config)
    else:
        found = outcome_differences(portkey, ours, case.config)
    assert not found, explain(case, portkey, ours, found)


def outcome_differences(portkey: list[Observation], ours: list[Observation],
                        config: dict[str, object]) -> list[str]:  # fmt: skip
    """A loadbalanced case: each gateway's set of distinct outcomes must be the other's.
    An outcome seen on one side only is compared with the other side's outcome that began
    at the same target (if any), to say what differs."""
    pk = {o.key(): o for o in portkey}
    our = {o.key(): o for o in ours}
    found = []
    for key in sorted(set(pk) ^ set(our)):
        side, other = ("Portkey", our) if key in pk else ("ours", pk)
        obs = pk.get(key) or our[key]
        first = obs.calls[0].target if obs.calls else None
        twin = next((o for o in other.values() if (o.calls[0].target if o.calls else None)
                     == first), None)  # fmt: skip
        if twin is None:
            found.append(f"only {side} had an outcome starting at {first}: {obs.report()}")
        else:
            pair = (obs, twin) if side == "Portkey" else (twin, obs)
            found.extend(f"[first call {first}] {d}" for d in differences(*pair, config))
    return found


@pytest.mark.parametrize("case", [_param(c) for c in DATA])
def test_data_config(gateways: Gateways, case: Case) -> None:
    compare_case(gateways, case)


@pytest.mark.parametrize("case", [_param(c) for c in HANDMADE])
def test_handmade(gateways: Gateways, case: Case) -> None:
    compare_case(gateways, case)


@pytest.mark.parametrize("case", [_param(c) for c in GENERATED])
def test_generated_tree(gateways: Gateways, case: Case) -> None:
    compare_case(gateways, case)


# -- the comparison can fail ----------------------------------------------------------------
def _call(target: str, step: str = "200", model: str = "gpt-4o-mini", **params: Any) -> Call:
    return Call("x", target, 0.0, model, {"model": model, "messages": [], **params}, {}, step)


def _obs(**kw: object) -> Observation:
    base: dict[str, object] = {
        "status": 200,
        "headers": {"x-portkey-last-used-option-index": "config.targets[1]",
                    "x-portkey-retry-attempt-count": "0", "x-portkey-provider": "openai",
                    "x-portkey-trace-id": ""},
        "body": {"id": "a", "choices": [{"index": 0}], "usage": {"total_tokens": 3}},
        "calls": [_call("t0", "500"), _call("t1")],
    }  # fmt: skip
    base.update(kw)
    return Observation(**base)  # type: ignore[arg-type]


def test_differences_catch_each_kind_of_wrong_expectation() -> None:
    same = _obs()
    assert differences(same, _obs()) == []
    # deliberate headers may differ
    relabelled = _obs(headers={**same.headers, "x-portkey-provider": "@t1",
                               "x-portkey-trace-id": "abc"})  # fmt: skip
    assert differences(same, relabelled) == []
    wrong = {
        "status": _obs(status=246),
        "calls": _obs(calls=[_call("t1")]),
        "retries": _obs(calls=[_call("t0", "500"), _call("t0", "500"), _call("t1")]),
        "model": _obs(calls=[_call("t0", "500"), _call("t1", model="gpt-4o")]),
        "params": _obs(calls=[_call("t0", "500"), _call("t1", temperature=0.7)]),
        "body": _obs(body={"id": "a", "choices": [], "usage": {"total_tokens": 3}}),
        "index": _obs(headers={**same.headers, "x-portkey-last-used-option-index": "config"}),
        "count": _obs(headers={**same.headers, "x-portkey-retry-attempt-count": "-1"}),
        "count missing": _obs(
            headers={k: v for k, v in same.headers.items() if k != "x-portkey-retry-attempt-count"}
        ),
        "other header": _obs(headers={**same.headers, "x-portkey-cache-status": "MISS"}),
    }
    for what, obs in wrong.items():
        if what == "other header":  # set by one side only: not compared...
            assert differences(same, obs) == [], what
            both = _obs(headers={**same.headers, "x-portkey-cache-status": "HIT"})
            assert differences(both, obs), what  # ...but set by both: must be equal
            continue
        assert differences(same, obs), what
        assert differences(obs, same), what


def test_deliberate_params_are_checked_not_skipped() -> None:
    """A leaf with default_params/drop_params: ours must send SPEC's transform of what
    Portkey forwarded, no more and no less."""
    leaf = {
        "provider": "@a",
        "default_params": {"temperature": 0.7, "max_tokens": 9},
        "drop_params": ["logprobs", "tools[0].function.strict", "tools[*].function.name"],
    }
    sent: dict[str, Any] = {
        "model": "m",
        "logprobs": True,
        "temperature": 0.2,
        "tools": [{"function": {"name": "f", "strict": True}}, {"function": {"name": "g"}}],
    }
    assert spec_params(sent, leaf) == {
        "model": "m",
        "temperature": 0.2,
        "max_tokens": 9,
        "tools": [{"function": {}}, {"function": {}}],
    }
    pk = _obs(calls=[_call("t0", **{k: v for k, v in sent.items() if k != "model"})])
    right = _obs(
        calls=[
            _call("t0", temperature=0.2, max_tokens=9, tools=[{"function": {}}, {"function": {}}])
        ]
    )
    assert differences(pk, right, leaf) == []
    assert differences(pk, pk, leaf), "ours forwarding the parameters untouched is caught"
    assert differences(pk, right), "without the config, the parameters must be equal"


def test_a_different_upstream_script_is_caught(gateways: Gateways) -> None:
    """The live comparison sees a different routing: ours gets a failing first target where
    Portkey's succeeds, so the calls, the option index (and so on) differ."""
    case = Case("wrong-on-purpose", {"strategy": {"mode": "fallback"},
                                     "targets": [{"provider": "@a"}, {"provider": "@b"}]})  # fmt: skip
    pk, ours = gateways.run(case, scripts={"portkey": {}, "ours": {"t0": ("503",)}})
    found = differences(pk, ours)
    assert any(f.startswith("upstream calls") for f in found), found
    assert any("last-used-option-index" in f for f in found), found
    # and the same script on both sides agrees on this simple fallback
    pk, ours = gateways.run(case, scripts={"portkey": {"t0": ("503",)}, "ours": {"t0": ("503",)}})
    assert [c.target for c in pk.calls] == ["t0", "t1"], pk.report()
