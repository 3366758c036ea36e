"""The budget-leasing simulation (benchmarks/scaling/sim.py) keeps the bounds docs/scaling.md
states: a replica that admits only within blocks it holds never overshoots when estimates
bound usage, and with underestimates overshoots no more than they add up to."""

from __future__ import annotations

import pytest

from benchmarks.scaling.sim import Params, run, traffic, underestimated

BLOCK = 50_000  # 1% of the simulated budget


def test_traffic_is_deterministic_per_seed() -> None:
    assert traffic("bursty", 4, 3) == traffic("bursty", 4, 3)
    assert traffic("bursty", 4, 3) != traffic("bursty", 4, 4)


@pytest.mark.parametrize("shape", ["uniform", "hot", "bursty", "heavy", "death"])
@pytest.mark.parametrize("scheme", ["exact", "lease", "lease-adaptive"])
def test_no_overshoot_when_estimates_bound_usage(shape: str, scheme: str) -> None:
    for replicas in (1, 32):
        requests = traffic(shape, replicas, 0)
        dead = 0 if shape == "death" else None
        outcome = run(scheme, requests, replicas, Params(BLOCK), dead)
        assert outcome.overshoot == 0
        assert outcome.admitted > 0


def test_underestimates_bound_the_overshoot_and_one_replica_leases_like_exact() -> None:
    for replicas in (1, 4, 32):
        requests = traffic("underestimate", replicas, 1)
        exact = run("exact", requests, replicas, Params(BLOCK))
        for scheme in ("lease", "lease-adaptive"):
            lease = run(scheme, requests, replicas, Params(BLOCK))
            assert 0 < lease.overshoot <= underestimated(requests)
            if replicas == 1:
                assert lease.overshoot == exact.overshoot


def test_leases_cut_redis_scripts_and_spend_the_budget() -> None:
    requests = traffic("uniform", 8, 2)
    exact = run("exact", requests, 8, Params(BLOCK))
    lease = run("lease-adaptive", requests, 8, Params(BLOCK))
    assert exact.ops_per_admitted == pytest.approx(2.0)
    assert lease.ops_per_admitted < 0.05
    assert lease.underuse < BLOCK // 10


def test_spending_before_reporting_overshoots_with_replicas_times_block() -> None:
    requests = traffic("uniform", 32, 0)
    outcome = run("optimistic", requests, 32, Params(BLOCK))
    assert outcome.overshoot > 10 * BLOCK


def test_a_dead_replica_s_returned_lease_can_overshoot_a_forfeited_one_cannot() -> None:
    requests = traffic("death", 4, 0)
    forfeit = run("lease-adaptive", requests, 4, Params(5 * BLOCK), dead=0)
    returned = run("lease-adaptive", requests, 4, Params(5 * BLOCK, expiry="return"), dead=0)
    assert forfeit.overshoot == 0
    assert returned.overshoot > 0
