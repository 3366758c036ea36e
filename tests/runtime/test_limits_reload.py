"""A reload that changes a rate limit keeps the bucket's key (`<counter>|rate|<unit>/<per>`):
what was used carries over, in memory as on Redis. A GCRA bucket remembers when it is full
again (its arrival time), so a request used at 30/min is 2 s of a minute at any new limit:
after 1 request at 30/min, 10/min leaves 9 this minute; after 1 at 10/min, 30/min leaves 27.
The memory store once kept that time scaled by the limit of the last admission and read it
scaled by the new one: lowering a limit locked the bucket for a century, raising it reset it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import BudgetExceeded, ConcurrencyExceeded, RateLimited, Store
from runtime.limits.memory import MemoryStore
from runtime.limits.redis_store import RedisStore
from runtime.limits.spec import PER_NS, Bucket, BudgetSpec, ChainSpec, LeaseSpec
from tests.redis_server import RedisServer
from tests.runtime.conftest import FakeClock

# divisors of 60, per hour: any fraction of an hour a bucket's state can be is a multiple of
# 1 s, so the time a test takes on Redis (its clock runs) never changes a count
LIMITS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
_n = itertools.count()


def bucket(counter: str, limit: int, unit: str = "requests", per: str = "hour") -> ChainSpec:
    b = Bucket(f"{counter}|rate|{unit}/{per}", counter, unit, per, limit, limit, PER_NS[per])
    return ChainSpec((counter,), (b,), (), (), None)


def remaining(store: Store, spec: ChainSpec) -> int:
    return store.snapshot([], spec.buckets, []).buckets[0]


def admitted(store: Store, spec: ChainSpec, n: int, tokens: int = 0) -> int:
    done = 0
    for _ in range(n):
        try:
            store.admit(f"r{next(_n)}", spec, tokens, 0)
            done += 1
        except RateLimited:
            pass
    return done


@pytest.fixture
def redis_store(redis_server: RedisServer) -> Iterator[RedisStore]:
    store = RedisStore(redis_server.url, namespace=f"reload-{next(_n)}", timeout=3.0)
    yield store
    store.close()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryStore(clock=FakeClock())
    return request.getfixturevalue("redis_store")  # type: ignore[no-any-return]


def test_lowering_a_limit_keeps_what_was_used(store: Store) -> None:
    assert admitted(store, bucket("workspace/low", 30, per="minute"), 1) == 1
    lower = bucket("workspace/low", 10, per="minute")
    assert remaining(store, lower) == 9  # not 0, with a Retry-After of 114 years
    assert admitted(store, lower, 12) == 9


def test_raising_a_limit_keeps_what_was_used(store: Store) -> None:
    assert admitted(store, bucket("workspace/high", 10), 10) == 10  # the hour's bucket used up
    higher = bucket("workspace/high", 30)
    assert remaining(store, higher) == 0  # not a fresh bucket of 30
    assert admitted(store, higher, 1) == 0
    assert admitted(store, bucket("workspace/half", 10), 5) == 5
    assert remaining(store, bucket("workspace/half", 30)) == 15


def test_a_settlement_after_a_reload_charges_at_its_own_limit(store: Store) -> None:
    """100 tokens estimated at 1000/h, 300 used, settled after a reload to 500/h: 300
    tokens of 1000/h are 18 minutes of the hour, which at 500/h leave 350 tokens."""
    before = bucket("workspace/tokens", 1000, unit="tokens")
    reservation = store.admit(f"r{next(_n)}", before, 100, 0)
    after = bucket("workspace/tokens", 500, unit="tokens")
    assert remaining(store, after) == 450
    store.settle(reservation, 300, 0)
    assert remaining(store, after) == 350


def test_other_limits_carry_over_too(store: Store) -> None:
    """Budgets and concurrency keep amounts, not times: a lower limit counts them as is."""
    counter = f"workspace/other{next(_n)}"

    def chain(budget: int, leases: int) -> ChainSpec:
        g = BudgetSpec(f"{counter}|budget|requests/daily", counter, "requests", "daily",
                       budget, None)  # fmt: skip
        return ChainSpec((counter,), (), (g,), (LeaseSpec(f"{counter}|inflight", counter, leases),),
                         None)  # fmt: skip

    held = [store.admit(f"r{next(_n)}", chain(10, 3), 0, 0) for _ in range(2)]
    lower = chain(3, 2)
    with pytest.raises(ConcurrencyExceeded):
        store.admit(f"r{next(_n)}", lower, 0, 0)  # 2 in flight: the new limit of 2 is full
    store.settle(held[0], 0, 0)
    store.admit(f"r{next(_n)}", lower, 0, 0)  # the third request of 3
    store.settle(held[1], 0, 0)
    with pytest.raises(BudgetExceeded):
        store.admit(f"r{next(_n)}", lower, 0, 0)


steps = st.lists(st.tuples(st.sampled_from(LIMITS), st.integers(0, 70)), min_size=1, max_size=6)


def model(plan: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(admitted, remaining after) per step: the bucket is the fraction of an hour used."""
    used = Fraction(0)
    out = []
    for limit, n in plan:
        free = int(limit * (1 - used))
        took = min(n, free)
        used += Fraction(took, limit)
        out.append((took, int(limit * (1 - used))))
    return out


def run(store: Store, plan: list[tuple[int, int]]) -> list[tuple[int, int]]:
    counter = f"workspace/law{next(_n)}"
    out = []
    for limit, n in plan:
        spec = bucket(counter, limit)
        took = admitted(store, spec, n)
        out.append((took, remaining(store, spec)))
    return out


@settings(max_examples=150, deadline=None)
@given(plan=steps)
def test_any_limit_changes_carry_over_in_memory(plan: list[tuple[int, int]]) -> None:
    """For any admissions and limit changes: never more than the limit left nor less than
    none, and what was used stays used (a fraction of the period, at any limit)."""
    got = run(MemoryStore(clock=FakeClock()), plan)
    assert got == model(plan)
    assert all(0 <= left <= limit for (left, (limit, _)) in zip((r for _, r in got), plan,
                                                               strict=True))  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(plan=steps)
def test_memory_and_redis_agree_on_limit_changes(
    plan: list[tuple[int, int]], redis_server: RedisServer
) -> None:
    store = RedisStore(redis_server.url, namespace="reload-law", timeout=3.0)
    try:
        assert run(store, plan) == run(MemoryStore(clock=FakeClock()), plan) == model(plan)
    finally:
        store.close()
