"""One conformance suite, run against both stores: same semantics in memory and on Redis.
Real time only (Redis keeps its own clock): buckets here refill per day, so nothing refills
while a test runs."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from runtime import (
    BudgetExceeded,
    ConcurrencyExceeded,
    Estimate,
    RateLimited,
    Router,
    Store,
    Usage,
)
from runtime.limits.memory import MemoryStore
from runtime.limits.redis_store import RedisStore
from tests.redis_server import RedisServer
from tests.runtime.conftest import OPENAI_PROVIDER, compile_files

ORG = "kind: Organization\nversion: 1\nname: Conformance\n"
_n = itertools.count()


@pytest.fixture(params=["memory", "redis", "redis-leased"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Router]]:
    stores: list[Store] = []

    def build(workspace_limits: str, org_limits: str = "") -> Router:
        data = compile_files(tmp_path / f"c{next(_n)}", {
            "catalog.yaml": ORG + org_limits, "i.yaml": OPENAI_PROVIDER,
            "w.yaml": "kind: Workspace\nslug: team\n" + workspace_limits
            + "---\nkind: Workspace\nslug: other\n",
        })  # fmt: skip
        if store_kind == "memory":
            store: Store = MemoryStore()
        else:
            server: RedisServer = request.getfixturevalue("redis_server")
            # budget leasing on (redis_lease.py), blocks of 10%: these budgets are tiny, and
            # blocks of 0.1% would be one request each (an acquisition per admission)
            leased = store_kind == "redis-leased"
            # timeout: semantics are checked here, not latency; bursts of 80 connections on
            # a loaded 2-core CI machine once took longer than the 0.5 s default to connect
            store = RedisStore(server.url, namespace=f"t-{uuid.uuid4().hex[:8]}",
                               lease_budgets=leased, lease_block=0.1, timeout=3.0)  # fmt: skip
        stores.append(store)
        return Router.load(data, store)

    yield build
    for store in stores:
        store.close()


def admit(router: Router, workspace: str = "team", **estimate: int):  # type: ignore[no-untyped-def]
    attempt = router.resolve(workspace, "@openai-prod/gpt-4o-mini").attempts[0]
    return router.admit(attempt, Estimate(**estimate) if estimate else Estimate(0, 0))


def test_request_bucket_admits_its_burst_then_refuses(make: Callable[..., Router]) -> None:
    router = make("rate_limits: [{limit: 24, unit: requests, per: day, burst: 5}]\n")
    for _ in range(5):
        admit(router).settle(Usage())
    with pytest.raises(RateLimited) as caught:
        admit(router)
    assert caught.value.counter == "workspace/team"
    assert caught.value.retry_after == pytest.approx(3600, rel=0.01)  # one slot per hour


def test_token_bucket_reservation_and_refund(make: Callable[..., Router]) -> None:
    router = make("rate_limits: [{limit: 1000, unit: tokens, per: day}]\n")
    ticket = admit(router, input_tokens=600, max_tokens=400)
    with pytest.raises(RateLimited):
        admit(router, input_tokens=1, max_tokens=0)
    ticket.settle(Usage(input_tokens=600, output_tokens=100))
    admit(router, input_tokens=300, max_tokens=0).settle(Usage(300))
    with pytest.raises(RateLimited):
        admit(router, input_tokens=1, max_tokens=0)


def test_usd_budget_exact_with_remaining(make: Callable[..., Router]) -> None:
    router = make("budgets: [{limit: 0.000021, unit: usd, period: daily}]\n")
    ticket = admit(router, input_tokens=100, max_tokens=10)
    with pytest.raises(BudgetExceeded) as caught:
        admit(router, input_tokens=1, max_tokens=0)
    assert caught.value.status == 412 and caught.value.remaining == Decimal(0)
    assert ticket.settle(Usage(100, 0)) == Decimal("0.000015")
    admit(router, input_tokens=40, max_tokens=0).settle(Usage(40))
    with pytest.raises(BudgetExceeded) as caught:
        admit(router, input_tokens=1, max_tokens=0)
    assert caught.value.remaining == Decimal(0)


def test_all_or_nothing(make: Callable[..., Router]) -> None:
    """The organization's bucket holds 3; `team`'s budget allows 2. Refusals by `team`'s
    budget must not take from the organization's bucket: `other` still gets the third."""
    router = make(
        "budgets: [{limit: 2, unit: requests, period: daily}]\n",
        "rate_limits: [{limit: 24, unit: requests, per: day, burst: 3}]\n",
    )
    admit(router).settle(Usage())
    admit(router).settle(Usage())
    for _ in range(4):
        with pytest.raises(BudgetExceeded):
            admit(router)
    admit(router, "other").settle(Usage())
    with pytest.raises(RateLimited):
        admit(router, "other")


def test_leases(make: Callable[..., Router]) -> None:
    router = make("concurrency: 2\n")
    a, b = admit(router), admit(router)
    with pytest.raises(ConcurrencyExceeded):
        admit(router)
    a.settle(Usage())
    c = admit(router)
    b.cancel()
    with pytest.raises(KeyError), admit(router):
        raise KeyError("upstream failed")
    c.settle(Usage())
    admit(router).settle(Usage())


def test_settlement_is_idempotent(make: Callable[..., Router]) -> None:
    router = make("budgets: [{limit: 1000, unit: tokens, period: daily}]\n")
    ticket = admit(router, input_tokens=400, max_tokens=400)
    ticket.settle(Usage(400, 100))
    assert router.store.settle(ticket.reservation, 400, 0) is False  # retried: no double charge
    admit(router, input_tokens=500, max_tokens=0).settle(Usage(500))  # 500 + 500 = 1000 fits
    with pytest.raises(BudgetExceeded):
        admit(router, input_tokens=1, max_tokens=0)


def test_many_small_requests_cost_exactly_the_product(make: Callable[..., Router]) -> None:
    router = make("budgets: [{limit: 1000, unit: usd, period: daily}]\n")
    usage = Usage(input_tokens=7, output_tokens=3)
    n = 2000
    total = sum(admit(router, input_tokens=7, max_tokens=3).settle(usage) for _ in range(n))
    per_request = (Decimal("0.15") * 7 + Decimal("0.6") * 3) / 10**6
    assert total == per_request * n
    # 1000 USD - n * 2.85e-6 left: a request for the rest fits exactly, one unit (1e-16 USD) more does not
    left = Decimal(1000) - per_request * n
    assert left == Decimal("999.9943")


def test_alert_threshold(make: Callable[..., Router]) -> None:
    router = make("budgets: [{limit: 10, unit: requests, period: daily, alert_threshold: 0.5}]\n")
    seen = []
    router.on_alert = lambda budget, ticket: seen.append(budget.unit)
    for _ in range(6):
        admit(router).settle(Usage())
    assert seen == ["requests"]


def test_async_admission(make: Callable[..., Router]) -> None:
    router = make("budgets: [{limit: 50, unit: requests, period: daily}]\nconcurrency: 64\n")
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]

    async def one() -> bool:
        try:
            ticket = await router.aadmit(attempt, Estimate(1, 1))
        except BudgetExceeded:
            return False
        async with ticket:
            await ticket.asettle(Usage(1, 1))
        return True

    async def many() -> list[bool]:
        return await asyncio.gather(*(one() for _ in range(80)))

    assert sum(asyncio.run(many())) == 50
