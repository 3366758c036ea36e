"""Admission: GCRA buckets, calendar budgets, leases, settlement, exact money."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import (
    BudgetExceeded,
    ConcurrencyExceeded,
    Estimate,
    RateLimited,
    Reservation,
    Router,
    Usage,
)
from runtime.bundle.money import UNITS_PER_USD
from runtime.bundle.periods import window_at
from runtime.limits.memory import MemoryStore
from runtime.limits.spec import Bucket, ChainSpec
from tests.runtime.conftest import OPENAI_PROVIDER, FakeClock

ORG = 'kind: Organization\nversion: 1\nname: Limits Inc\nepoch: "2026-01-07"\n'


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()) * 10**9


def one_level(make_router: Callable[..., Router], limits: str) -> Router:
    return make_router({"catalog.yaml": ORG, "i.yaml": OPENAI_PROVIDER,
                        "w.yaml": "kind: Workspace\nslug: team\n" + limits})  # fmt: skip


def admit(router: Router, model: str = "@openai-prod/gpt-4o-mini", **estimate: int):  # type: ignore[no-untyped-def]
    attempt = router.resolve("team", model).attempts[0]
    return router.admit(attempt, Estimate(**estimate) if estimate else Estimate(0, 0))


def test_request_bucket_burst_then_refill(
    make_router: Callable[..., Router], clock: FakeClock
) -> None:
    router = one_level(
        make_router, "rate_limits: [{limit: 10, unit: requests, per: second, burst: 20}]\n"
    )
    for _ in range(20):
        admit(router).settle(Usage())
    with pytest.raises(RateLimited) as caught:
        admit(router)
    assert caught.value.status == 429 and caught.value.counter == "workspace/team"
    assert caught.value.retry_after == pytest.approx(0.1)
    clock.advance(0.1)
    admit(router).settle(Usage())
    with pytest.raises(RateLimited):
        admit(router)


def test_token_bucket_is_charged_by_the_estimate_and_corrected(
    make_router: Callable[..., Router], clock: FakeClock
) -> None:
    router = one_level(make_router, "rate_limits: [{limit: 1000, unit: tokens, per: minute}]\n")
    ticket = admit(router, input_tokens=600, max_tokens=400)  # reserves the whole bucket
    with pytest.raises(RateLimited):
        admit(router, input_tokens=1, max_tokens=0)
    ticket.settle(Usage(input_tokens=600, output_tokens=100))  # 300 tokens come back
    admit(router, input_tokens=200, max_tokens=100).settle(Usage(200, 100))
    with pytest.raises(RateLimited):
        admit(router, input_tokens=1, max_tokens=0)


def test_a_request_larger_than_the_bucket_can_never_pass(
    make_router: Callable[..., Router],
) -> None:
    router = one_level(make_router, "rate_limits: [{limit: 100, unit: tokens, per: minute}]\n")
    with pytest.raises(RateLimited) as caught:
        admit(router, input_tokens=101, max_tokens=0)
    assert caught.value.retry_after is None


def test_a_limit_of_zero_blocks(make_router: Callable[..., Router]) -> None:
    router = one_level(make_router, "rate_limits: [{limit: 0, unit: requests, per: day}]\n")
    with pytest.raises(RateLimited, match="waiting cannot help"):
        admit(router)
    router = one_level(make_router, "budgets: [{limit: 0, unit: usd, period: monthly}]\n")
    with pytest.raises(BudgetExceeded):
        admit(router, input_tokens=1, max_tokens=0)


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(1, 50),
    burst=st.integers(1, 80),
    per=st.sampled_from(["second", "minute"]),
    events=st.lists(
        st.tuples(st.integers(0, 3 * 10**9), st.integers(1, 30)), min_size=1, max_size=60
    ),
)
def test_gcra_never_admits_more_than_burst_plus_rate(
    limit: int, burst: int, per: str, events: list[tuple[int, int]]
) -> None:
    """Over any interval [t_i, t_j], admitted units <= burst + limit * (t_j - t_i) / per."""
    per_ns = {"second": 10**9, "minute": 60 * 10**9}[per]
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    spec = ChainSpec(
        ("c",), (Bucket("c|rate", "c", "tokens", per, limit, burst, per_ns),), (), (), None
    )
    admitted: list[tuple[int, int]] = []
    for n, (gap, units) in enumerate(events):
        clock.now += gap
        try:
            store.admit(f"r{n}", spec, units, 0)  # ids are single-use
        except RateLimited:
            continue
        admitted.append((clock.now, units))
    for i in range(len(admitted)):
        total = 0
        for j in range(i, len(admitted)):
            total += admitted[j][1]
            elapsed = admitted[j][0] - admitted[i][0]
            assert total * per_ns <= burst * per_ns + limit * elapsed


def test_periods_are_utc_calendar_windows() -> None:
    assert window_at("daily", at(2026, 11, 26, 23, 59), None)[0] == "2026-11-26"
    assert window_at("weekly", at(2026, 11, 29, 23, 59), None)[0] == "2026-W48"  # Sunday
    assert window_at("weekly", at(2026, 11, 30), None)[0] == "2026-W49"  # Monday 00:00
    assert window_at("weekly", at(2026, 11, 30), None)[1] == at(2026, 12, 7)
    assert window_at("monthly", at(2026, 12, 31, 23, 59), None) == ("2026-12", at(2027, 1, 1))
    assert window_at("weekly", at(2027, 1, 1), None)[0] == "2026-W53"  # ISO year
    assert window_at("none", at(2026, 1, 1), None) == ("all", None)
    first = window_at("30d", at(2026, 1, 7), "2026-01-07")
    assert first == window_at("30d", at(2026, 2, 5, 23), "2026-01-07")
    assert first != window_at("30d", at(2026, 2, 6), "2026-01-07")


def test_budget_exhausts_and_the_next_week_starts_fresh(
    make_router: Callable[..., Router], clock: FakeClock
) -> None:
    router = one_level(make_router, "budgets: [{limit: 3, unit: requests, period: weekly}]\n")
    clock.now = at(2026, 11, 29, 23, 0)  # Sunday
    for _ in range(3):
        admit(router).settle(Usage())
    with pytest.raises(BudgetExceeded) as caught:
        admit(router)
    err = caught.value
    assert (err.status, err.counter, err.unit, err.period, err.remaining) == (
        412, "workspace/team", "requests", "weekly", 0
    )  # fmt: skip
    clock.now = at(2026, 11, 30)  # Monday 00:00 UTC
    admit(router).settle(Usage())


def test_usd_budget_is_exact_and_names_what_remains(make_router: Callable[..., Router]) -> None:
    # gpt-4o-mini: 0.15 in / 0.6 out per 1M tokens
    router = one_level(make_router, "budgets: [{limit: 0.000021, unit: usd, period: daily}]\n")
    t = admit(router, input_tokens=100, max_tokens=10)  # 0.000015 + 0.000006 = 0.000021 exactly
    assert t.reserved == Decimal("0.000021")
    with pytest.raises(BudgetExceeded) as caught:
        admit(router, input_tokens=1, max_tokens=0)
    assert caught.value.remaining == Decimal(0)
    assert t.settle(Usage(input_tokens=100, output_tokens=0)) == Decimal("0.000015")
    admit(router, input_tokens=40, max_tokens=0).settle(Usage(input_tokens=40))  # 0.000006 fits
    with pytest.raises(BudgetExceeded):
        admit(router, input_tokens=1, max_tokens=0)


def test_all_or_nothing_across_the_chain(make_router: Callable[..., Router]) -> None:
    org = ORG + "budgets: [{limit: 100, unit: requests, period: daily}]\n"
    router = make_router({"catalog.yaml": org, "i.yaml": OPENAI_PROVIDER,
                          "w.yaml": "kind: Workspace\nslug: team\nbudgets: [{limit: 1, unit: requests, period: daily}]\n"
                          "---\nkind: Workspace\nslug: other\n"})  # fmt: skip
    store = router.store
    assert isinstance(store, MemoryStore)
    admit(router).settle(Usage())
    day = window_at("daily", store.clock(), None)[0]
    assert store.spent("organization|budget|requests/daily", day) == 1
    for _ in range(5):  # refused by the workspace: the organization is never charged
        with pytest.raises(BudgetExceeded):
            admit(router)
    assert store.spent("organization|budget|requests/daily", day) == 1
    other = router.resolve("other", "@openai-prod/gpt-4o-mini").attempts[0]
    router.admit(other).settle(Usage())
    assert store.spent("organization|budget|requests/daily", day) == 2


def test_concurrency_leases_are_released_by_settle_cancel_and_errors(
    make_router: Callable[..., Router],
) -> None:
    router = one_level(make_router, "concurrency: 2\n")
    a, b = admit(router), admit(router)
    with pytest.raises(ConcurrencyExceeded) as caught:
        admit(router)
    assert caught.value.status == 429 and caught.value.limit == 2
    a.settle(Usage())
    c = admit(router)
    b.cancel()
    with pytest.raises(ValueError), admit(router):
        raise ValueError("upstream failed")  # leaving the block releases the lease
    c.settle(Usage())
    admit(router).settle(Usage())


def test_settlement_is_idempotent_and_cancel_pays_the_input(
    make_router: Callable[..., Router],
) -> None:
    router = one_level(make_router, "budgets: [{limit: 1000, unit: tokens, period: daily}]\n")
    store = router.store
    assert isinstance(store, MemoryStore)
    day = window_at("daily", store.clock(), None)[0]
    key = "workspace/team|budget|tokens/daily"
    ticket = admit(router, input_tokens=100, max_tokens=300)
    assert store.spent(key, day) == 400  # reserved
    first = ticket.settle(Usage(input_tokens=100, output_tokens=20))
    assert ticket.settle(Usage(input_tokens=999, output_tokens=999)) == first
    assert store.spent(key, day) == 120
    assert store.settle(ticket.reservation, 999, 0) is False  # a retried settlement is harmless
    assert store.spent(key, day) == 120
    with admit(router, input_tokens=50, max_tokens=500):
        pass  # cancelled: only the input is charged
    assert store.spent(key, day) == 170


class SlowSettlingStore(MemoryStore):
    """A store whose settlement awaits, as a networked one does (not inline)."""

    settles_inline = False

    async def asettle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        await asyncio.sleep(0.05)
        return self.settle(reservation, tokens, cost)


@pytest.mark.parametrize("inline", [True, False])
@pytest.mark.parametrize("usage", [Usage(input_tokens=100, output_tokens=20), None])
def test_settlement_survives_the_callers_cancellation(
    make_router: Callable[..., Router], clock: FakeClock, inline: bool, usage: Usage | None
) -> None:
    """A client going away cancels the request's task while it settles: the settlement (or,
    with no usage, the input-only cancel) still lands, whichever way the store settles."""
    router = one_level(make_router, "budgets: [{limit: 1000, unit: tokens, period: daily}]\n")
    if not inline:
        router.store = SlowSettlingStore(clock=clock)
    store = router.store
    assert isinstance(store, MemoryStore) and store.settles_inline is inline
    day = window_at("daily", store.clock(), None)[0]
    ticket = admit(router, input_tokens=100, max_tokens=300)

    async def settle_then_be_cancelled() -> None:
        task = asyncio.ensure_future(ticket.asettle_through_cancel(usage))
        await asyncio.sleep(0)  # the settlement has started
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)  # a shielded settlement finishes on its own

    asyncio.run(settle_then_be_cancelled())
    assert ticket.settled
    spent = store.spent("workspace/team|budget|tokens/daily", day)
    assert spent == (120 if usage is not None else 100)


def test_alert_threshold_calls_the_hook_once(
    make_router: Callable[..., Router], clock: FakeClock
) -> None:
    seen = []
    router = one_level(
        make_router, "budgets: [{limit: 10, unit: requests, period: daily, alert_threshold: 0.8}]\n"
    )
    router.on_alert = lambda budget, ticket: seen.append((budget.counter, budget.unit))
    for _ in range(10):
        admit(router).settle(Usage())
    assert seen == [("workspace/team", "requests")]


def test_a_million_small_requests_cost_exactly_the_product(
    make_router: Callable[..., Router],
) -> None:
    router = one_level(make_router, "budgets: [{limit: 1000, unit: usd, period: monthly}]\n")
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]
    usage = Usage(input_tokens=7, output_tokens=3, cache_read_tokens=1)
    total = Decimal(0)
    n = 1_000_000
    for _ in range(n):
        total += router.admit(attempt, Estimate(7, 3)).settle(usage)
    per_request = (Decimal("0.15") * 7 + Decimal("0.6") * 3 + Decimal("0.075") * 1) / 10**6
    assert total == per_request * n == Decimal("2.925")
    store = router.store
    assert isinstance(store, MemoryStore)
    month = window_at("monthly", store.clock(), None)[0]
    assert store.spent("workspace/team|budget|usd/monthly", month) == 2925 * UNITS_PER_USD // 1000
