"""`Router.usage()`: every counter's limit, spent, reserved and remaining in its current
window, exact, from the store's own state (issue 14, point 1)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import Estimate, MemoryStore, Router, UnknownWorkspace, Usage
from tests.runtime.conftest import FakeClock, compile_files

CATALOG = {
    "catalog.yaml": """\
        kind: Organization
        version: 1
        name: U
        budgets: [{limit: 100, unit: usd, period: monthly, alert_threshold: 0.8}]
        """,
    "i.yaml": """\
        kind: Integration
        slug: openai-main
        service: openai
        credentials: {api_key: {env: OPENAI_API_KEY}}
        ---
        kind: Provider
        slug: openai-prod
        integration: openai-main
        budgets: [{limit: 5000000, unit: tokens, period: daily}]
        """,
    "w.yaml": """\
        kind: Workspace
        slug: support
        rate_limits: [{limit: 10, unit: requests, per: minute}]
        concurrency: 3
        budgets: [{limit: 2, unit: usd, period: weekly}]
        ---
        kind: Workspace
        slug: research
        budgets: [{limit: 1, unit: usd, period: daily}]
        """,
}


@pytest.fixture
def router(tmp_path: Path) -> Router:
    clock = FakeClock()  # 2025-11-26, a Wednesday
    return Router.load(compile_files(tmp_path / "cat", CATALOG), MemoryStore(clock))


def by(rows: list, counter: str, kind: str):  # type: ignore[no-untyped-def]
    (row,) = [r for r in rows if r.counter == counter and r.kind == kind]
    return row


def test_spent_reserved_and_remaining_are_exact(router: Router) -> None:
    attempt = router.resolve("support", "@openai-prod/gpt-4o").attempts[0]
    settled = router.admit(attempt, Estimate(1000, 100))
    settled.settle(Usage(800, 50))
    held = router.admit(attempt, Estimate(2000, 200))  # admitted, not settled
    rows = router.usage()
    org = by(rows, "organization", "budget")
    cost = settled.cost
    assert cost is not None and cost > 0
    assert org.spent == cost and org.reserved == held.reserved
    assert org.remaining == Decimal(100) - cost - held.reserved
    assert (org.unit, org.period, org.alert_at) == ("usd", "monthly", Decimal(80))
    assert org.window_start == dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
    assert org.window_end == dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    week = by(rows, "workspace/support", "budget")
    assert week.window_start == dt.datetime(2025, 11, 24, tzinfo=dt.UTC)  # Monday
    tokens = by(rows, "provider/openai-prod", "budget")
    assert (tokens.spent, tokens.reserved) == (850, 2200)
    assert by(rows, "workspace/support", "concurrency").spent == 1
    assert by(rows, "workspace/support", "rate_limit").remaining == 8
    held.settle(Usage(10, 0))
    org = by(router.usage(), "organization", "budget")
    assert org.reserved == 0 and org.spent == cost + held.cost
    assert by(router.usage(), "workspace/support", "concurrency").spent == 0


def test_a_workspace_sees_its_own_chain(router: Router) -> None:
    mine = {r.counter for r in router.usage("support")}
    assert mine == {"organization", "provider/openai-prod", "workspace/support"}
    assert "workspace/research" in {r.counter for r in router.usage()}
    with pytest.raises(UnknownWorkspace):
        router.usage("nobody")


def test_the_json_form_is_exact_and_plain(router: Router) -> None:
    attempt = router.resolve("research", "@openai-prod/gpt-4o").attempts[0]
    router.admit(attempt, Estimate(3, 1)).settle(Usage(3, 1))
    row = by(router.usage("research"), "workspace/research", "budget").to_json()
    assert row["limit"] == "1" and row["unit"] == "usd" and row["level"] == "workspace"
    assert Decimal(row["spent"]) > 0 and "E" not in row["spent"]
    assert row["window_start"] == "2025-11-26T00:00:00Z"
    assert row["window_end"] == "2025-11-27T00:00:00Z"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 500), st.booleans()),
                max_size=12))  # fmt: skip
def test_spent_plus_reserved_is_what_was_charged(tmp_path_factory: pytest.TempPathFactory,
                                                 calls: list[tuple[int, int, bool]]) -> None:  # fmt: skip
    """Law: for any sequence, spent = the settled costs, reserved = the open estimates."""
    root = tmp_path_factory.mktemp("law")
    router = Router.load(compile_files(root, CATALOG), MemoryStore(FakeClock()))
    attempt = router.resolve("research", "@openai-prod/gpt-4o").attempts[0]
    settled, open_ = Decimal(0), Decimal(0)
    held = []  # open tickets are held: one dropped is settled at its reservation
    for tokens, out, settle in calls:
        try:
            ticket = router.admit(attempt, Estimate(tokens, out))
        except Exception:
            continue
        if settle:
            settled += ticket.settle(Usage(tokens // 2, out // 2))
        else:
            open_ += ticket.reserved
            held.append(ticket)
    row = by(router.usage("research"), "workspace/research", "budget")
    assert (row.spent, row.reserved) == (settled, open_)
    assert row.remaining == max(Decimal(1) - settled - open_, Decimal(0))


def test_the_redis_store_reports_the_same_books(tmp_path: Path, own_redis: Any) -> None:
    """Two routers (as two replicas) on one real redis-server: usage read from either is
    what both charged, the open reservation apart, exactly as the memory store reports."""
    from runtime.limits.redis_store import RedisStore

    data = compile_files(tmp_path / "cat", CATALOG)
    stores = [RedisStore(own_redis.url, namespace="usage-test") for _ in range(2)]
    routers = [Router.load(data, store) for store in stores]
    try:
        costs = Decimal(0)
        for i in range(6):
            r = routers[i % 2]
            attempt = r.resolve("support", "@openai-prod/gpt-4o").attempts[0]
            costs += r.admit(attempt, Estimate(100 + i, 10)).settle(Usage(90 + i, 5))
        held = routers[0].admit(attempt, Estimate(500, 50))
        for r in routers:
            rows = r.usage("support")
            org = by(rows, "organization", "budget")
            assert (org.spent, org.reserved) == (costs, held.reserved)
            assert org.remaining == Decimal(100) - costs - held.reserved
            tokens = by(rows, "provider/openai-prod", "budget")
            assert (tokens.spent, tokens.reserved) == (sum(90 + i + 5 for i in range(6)), 550)
            assert by(rows, "workspace/support", "concurrency").spent == 1
            assert by(rows, "workspace/support", "rate_limit").remaining == 3
            assert org.to_json()["reserved"] == str(held.reserved.normalize())
        last = held.settle(Usage(1, 1))
        org = by(routers[1].usage(), "organization", "budget")
        assert (org.spent, org.reserved) == (costs + last, 0)
        assert by(routers[1].usage(), "workspace/support", "concurrency").spent == 0
    finally:
        for store in stores:
            store.close()
