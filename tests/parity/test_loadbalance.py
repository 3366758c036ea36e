"""Loadbalancing, statistically: each gateway's choices fit the configured weights.

Both gateways pick at random (Portkey with Math.random), so the call sequences of a
loadbalance cannot be compared request by request. Instead each gateway gets REQUESTS
requests per config and a chi-square goodness-of-fit test compares its counts per target with
the weights. The p-value is computed exactly (the chi-square survival function for an integer
number of degrees of freedom has a closed form; no scipy). A gateway fails when p < ALPHA:
with ALPHA = 1e-4 and four fits per run a correct gateway fails about once in 2,500 runs,
while a gateway that ignores the weights (uniform choice over 1/2/3: chi-square ≈ 220 for
1,000 requests) or swaps two of them fails with p far below 1e-20."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.gateway.harness import http
from tests.parity.compare import CHAT, Gateways
from tests.parity.corpus import Case

REQUESTS = 1000
THREADS = 4  # per gateway; both gateways run at once
ALPHA = 1e-4

# weights 1/2/3, and a weight 0 that must never be chosen
FLAT = {
    "strategy": {"mode": "loadbalance"},
    "targets": [
        {"provider": "@openai-a", "weight": 1},
        {"provider": "@openai-b", "weight": 2},
        {"provider": "@openai-c", "weight": 3},
        {"provider": "@openai-d", "weight": 0},
    ],
}
# a loadbalance nested under a fallback whose first target always fails
NESTED = {
    "strategy": {"mode": "fallback"},
    "targets": [
        {"provider": "@openai-down"},
        {
            "strategy": {"mode": "loadbalance"},
            "targets": [
                {"provider": "@openai-a", "weight": 1},
                {"provider": "@openai-b", "weight": 3},
            ],
        },
    ],
}


def chi_square(counts: Sequence[int], weights: Sequence[float]) -> tuple[float, float]:
    """(statistic, p-value) of the goodness of fit of `counts` to `weights`."""
    total, wsum = sum(counts), sum(weights)
    expected = [total * w / wsum for w in weights]
    stat = sum((o - e) ** 2 / e for o, e in zip(counts, expected, strict=True))
    return stat, chi2_sf(stat, len(counts) - 1)


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square with `df` (integer >= 1) degrees of freedom."""
    half = x / 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= half / i
            total += term
        return math.exp(-half) * total
    total = math.erfc(math.sqrt(half))
    for i in range(1, (df - 1) // 2 + 1):
        total += math.exp((i - 0.5) * math.log(half) - half - math.lgamma(i + 0.5)) if x else 0
    return total


def test_chi_square_is_right() -> None:
    # known values: the 0.05 and 0.001 critical values of 1, 2 and 3 degrees of freedom
    for df, crit05, crit001 in ((1, 3.841, 10.828), (2, 5.991, 13.816), (3, 7.815, 16.266)):
        assert abs(chi2_sf(crit05, df) - 0.05) < 1e-3, df
        assert abs(chi2_sf(crit001, df) - 0.001) < 1e-4, df
    assert chi2_sf(0.0, 2) == 1.0
    # and it rejects what a wrong gateway would produce
    assert chi_square([167, 333, 500], [1, 2, 3])[1] > 0.5
    assert chi_square([333, 333, 334], [1, 2, 3])[1] < 1e-20  # weights ignored
    assert chi_square([500, 333, 167], [1, 2, 3])[1] < 1e-20  # weights reversed
    assert chi_square([320, 680], [1, 3])[1] < ALPHA  # 32 % where 25 % is due


def _send(gateways: Gateways, lane: str, case: Case) -> int:
    headers, body = gateways.request(lane, case)
    origin = gateways.portkey_origin if lane == "portkey" else gateways.our_origin
    status, _, _ = http("POST", origin + CHAT, body, headers, timeout=30)
    return status


def _counts(gateways: Gateways, case: Case) -> dict[str, tuple[Counter[str], Counter[int]]]:
    """Per lane: calls per target, statuses of the answers."""
    gateways.recorder.load(case.script)

    def lane_run(lane: str) -> Counter[int]:
        with ThreadPoolExecutor(THREADS) as pool:
            return Counter(pool.map(lambda _: _send(gateways, lane, case), range(REQUESTS)))

    with ThreadPoolExecutor(2) as pool:
        statuses = dict(zip(("portkey", "ours"), pool.map(lane_run, ("portkey", "ours")),
                            strict=True))  # fmt: skip
    out = {}
    for lane, status in statuses.items():
        calls = gateways.recorder.wait_quiet(lane)
        out[lane] = (Counter(c.target for c in calls), status)
    return out


def _check(case: Case, observed: Mapping[str, tuple[Counter[str], Counter[int]]],
           expected: Mapping[str, float], others: Mapping[str, int]) -> None:  # fmt: skip
    """Every answer 200, the calls to targets outside the loadbalance as `others` says, and
    the loadbalanced targets' counts fit the weights, for each gateway."""
    problems = []
    for lane, (calls, statuses) in observed.items():
        if statuses != Counter({200: REQUESTS}):
            problems.append(f"{lane}: statuses {dict(statuses)}")
        for target, n in others.items():
            if calls[target] != n:
                problems.append(f"{lane}: {calls[target]} calls to {target}, expected {n}")
        counts = [calls[t] for t in expected]
        stat, p = chi_square(counts, list(expected.values()))
        if sum(counts) != REQUESTS or p < ALPHA:
            problems.append(f"{lane}: counts {dict(zip(expected, counts, strict=True))} for "
                            f"weights {dict(expected)}: chi-square {stat:.1f}, p = {p:.3g}")  # fmt: skip
    assert not problems, f"{case.name}: {problems}\nconfig: {json.dumps(case.config)}"


@pytest.mark.parametrize(
    ("case", "expected", "others"),
    [
        (Case("flat-1-2-3-0", FLAT), {"t0": 1, "t1": 2, "t2": 3}, {"t3": 0}),
        (Case("nested-under-fallback", NESTED, {"t0": ("500",) * REQUESTS}),
         {"t1": 1, "t2": 3}, {"t0": REQUESTS}),
    ],
    ids=["flat-1-2-3-0", "nested-under-fallback"],
)  # fmt: skip
def test_weights_fit(gateways: Gateways, case: Case, expected: dict[str, float],
                     others: dict[str, int]) -> None:  # fmt: skip
    _check(case, _counts(gateways, case), expected, others)
