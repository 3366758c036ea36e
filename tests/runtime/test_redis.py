"""Redis-only behaviour against a real redis-server: key layout, script flushes, lease TTLs,
outages under both failure policies, and many processes sharing one truth."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from runtime import (
    BudgetExceeded,
    ConcurrencyExceeded,
    Estimate,
    Router,
    StoreUnavailable,
    Usage,
)
from runtime.bundle.money import usd
from runtime.bundle.periods import window_at
from runtime.limits.redis_store import RedisStore
from tests.redis_server import PERSISTENT, RedisServer
from tests.runtime.conftest import compile_files
from tests.runtime.hammer import hammer

CATALOG = {
    "catalog.yaml": "kind: Organization\nversion: 1\nname: Shared\n"
    "rate_limits: [{limit: 300, unit: requests, per: day}]\n",
    "i.yaml": """\
        kind: Integration
        slug: openai-main
        service: openai
        credentials: {api_key: {env: OPENAI_API_KEY}}
        ---
        kind: Provider
        slug: openai-prod
        integration: openai-main
        concurrency: 12
        """,
    "w.yaml": """\
        kind: Workspace
        slug: team
        budgets:
          - {limit: 9000, unit: tokens, period: daily}
          - {limit: 5, unit: usd, period: monthly}
        """,
}


@pytest.fixture
def bundle(tmp_path: Path) -> bytes:
    return compile_files(tmp_path / "c", CATALOG)


def namespace() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def team(router: Router):  # type: ignore[no-untyped-def]
    return router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]


def test_keys_share_one_hash_tag_and_budgets_carry_their_period(
    bundle: bytes, redis_server: RedisServer
) -> None:
    ns = namespace()
    router = Router.load(bundle, RedisStore(redis_server.url, namespace=ns))
    ticket = router.admit(team(router), Estimate(10, 10))
    client = redis_server.client()
    keys = sorted(k.decode() for k in client.keys(f"{{{ns}}}*"))
    assert keys and all(k.startswith(f"{{{ns}}}:") for k in keys)
    month = window_at("monthly", time.time_ns(), None)[0]
    usd_key = f"{{{ns}}}:bu:workspace/team|budget|usd/monthly|{month}"  # 1e-16 USD pairs
    assert usd_key in keys
    # deleted a day after its month ends, by the admission opening a new window: no reset job
    end = window_at("monthly", time.time_ns(), None)[1]
    assert end is not None and client.zscore(f"{{{ns}}}:w", usd_key) == end // 10**9 + 86_400
    ticket.settle(Usage(10, 5))
    assert client.exists(f"{{{ns}}}:s:{ticket.request_id}")


def test_script_flush_mid_run_is_harmless(bundle: bytes, redis_server: RedisServer) -> None:
    router = Router.load(bundle, RedisStore(redis_server.url, namespace=namespace()))
    client = redis_server.client()
    for i in range(20):
        if i % 5 == 0:
            client.script_flush()
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))

    async def run() -> None:
        for i in range(10):
            if i % 3 == 0:
                client.script_flush()
            ticket = await router.aadmit(team(router), Estimate(1, 1))
            await ticket.asettle(Usage(1, 1))

    asyncio.run(run())


def test_leases_expire_and_renew(bundle: bytes, redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, namespace=namespace(), lease_ttl=0.3)
    router = Router.load(bundle, store)
    held = [router.admit(team(router), Estimate(1, 1)) for _ in range(12)]  # a crashed replica
    with pytest.raises(ConcurrencyExceeded):
        router.admit(team(router), Estimate(1, 1))
    assert store.renew(held[0].reservation, seconds=5)
    time.sleep(0.45)
    fresh = [router.admit(team(router), Estimate(1, 1)) for _ in range(11)]  # 11 leases expired
    with pytest.raises(ConcurrencyExceeded):
        router.admit(team(router), Estimate(1, 1))  # the renewed one is still held
    for ticket in (*held, *fresh):
        ticket.settle(Usage())


def test_outage_fail_closed_then_recovers_without_losing_settlements(
    tmp_path: Path, make_redis: Callable[..., RedisServer]
) -> None:
    server = make_redis(*PERSISTENT)  # comes back with its counters, as a real one would
    bundle = compile_files(tmp_path / "c", CATALOG)
    ns = namespace()
    store = RedisStore(server.url, namespace=ns, timeout=0.2)
    router = Router.load(bundle, store)
    ticket = router.admit(team(router), Estimate(100, 100))
    server.kill()
    ticket.settle(Usage(100, 20))  # Redis is away: queued, not lost, not raised
    assert store.pending == 1
    with pytest.raises(StoreUnavailable) as caught:
        router.admit(team(router), Estimate(1, 1))
    assert caught.value.status == 503
    server.start()
    time.sleep(0.05)
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    assert store.pending == 0
    assert store.flush() == 0
    day = window_at("daily", time.time_ns(), None)[0]
    assert store.spent("workspace/team|budget|tokens/daily", day) == 120 + 2  # replayed once
    assert store.losses == 0


def test_outage_fail_open_counts_bypasses(tmp_path: Path, own_redis: RedisServer) -> None:
    bundle = compile_files(tmp_path / "c", CATALOG)
    seen: list[str] = []
    store = RedisStore(own_redis.url, namespace=namespace(), fail_open=True, timeout=0.2,
                       on_bypass=lambda rid, exc: seen.append(rid))  # fmt: skip
    router = Router.load(bundle, store)
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    own_redis.kill()
    for _ in range(3):
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))  # admitted, bypassed
    assert store.bypassed == 3 and len(seen) == 3
    own_redis.start()  # empty (persistence off): the counters are gone, and it says so
    time.sleep(0.05)
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    assert store.bypassed == 3
    assert store.losses == 1


def test_replayed_settlement_is_charged_exactly_once(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    bundle = compile_files(tmp_path / "c", CATALOG)
    store = RedisStore(own_redis.url, namespace=namespace(), timeout=0.2)
    router = Router.load(bundle, store)
    day = window_at("daily", time.time_ns(), None)[0]
    budget = "workspace/team|budget|tokens/daily"
    ticket = router.admit(team(router), Estimate(1000, 1000))  # reserves 2000 tokens
    assert store.spent(budget, day) == 2000
    ticket.settle(Usage(1000, 500))  # the store answers: corrected to 1500
    store.settle(ticket.reservation, 1500, 0)  # retried: ignored
    assert store.spent(budget, day) == 1500
    month = window_at("monthly", time.time_ns(), None)[0]
    spent = usd(store.spent("workspace/team|budget|usd/monthly", month))
    assert spent == (1000 * Decimal("0.15") + 500 * Decimal("0.6")) / 10**6  # gpt-4o-mini


def test_many_processes_share_one_truth(bundle: bytes, redis_server: RedisServer) -> None:
    """4 processes x 8 threads against one chain: no bound is ever exceeded."""
    ns = namespace()
    start = time.time()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        futures = [
            pool.submit(hammer, bundle, redis_server.url, ns, seed, 8, 60) for seed in range(4)
        ]
        results = [f.result() for f in futures]
    elapsed = time.time() - start
    admitted = sum(r["admitted"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    assert admitted + sum(r["refused"] for r in results) == 4 * 8 * 60
    # the organization's bucket: burst 300 plus the refill over the run (300 per day)
    assert admitted <= 300 + int(300 * elapsed / 86_400)
    assert tokens <= 9000  # the token budget never overshoots: estimates bound the usage
    day = window_at("daily", time.time_ns(), None)[0]
    store = RedisStore(redis_server.url, namespace=ns)
    assert store.spent("workspace/team|budget|tokens/daily", day) == tokens  # each settled once
    assert store.inflight("provider/openai-prod|inflight") == 0
    assert admitted > 0


def test_budget_refusal_names_the_counter(bundle: bytes, redis_server: RedisServer) -> None:
    router = Router.load(bundle, RedisStore(redis_server.url, namespace=namespace()))
    with pytest.raises(BudgetExceeded) as caught:
        router.admit(team(router), Estimate(9001, 0))
    assert (caught.value.counter, caught.value.unit, caught.value.remaining) == (
        "workspace/team",
        "tokens",
        9000,
    )


def test_a_settlement_whose_admission_a_failover_lost_charges_its_usage(
    bundle: bytes, redis_server: RedisServer
) -> None:
    """A failover rolls an admission back (the new primary never saw it); its settlement
    then subtracted the reservation it had never added: the budget fell to 0 (a review: 353
    requests at 5 tokens read 3 tokens), spend from before the failover with it, and the
    clamp was reported as lost counters. Replayed on one server by restoring the keys."""
    import redis

    store = RedisStore(redis_server.url, namespace=namespace())
    router = Router.load(bundle, store)
    raw = redis.Redis.from_url(redis_server.url)
    for _ in range(3):
        router.admit(team(router), Estimate(2, 100)).settle(Usage(2, 3))
    before = {(u.counter, u.unit): u.spent for u in router.usage("team")}
    saved = {key: raw.dump(key) for key in raw.scan_iter(f"{{{store.namespace}}}*")}
    ticket = router.admit(team(router), Estimate(2, 4000))  # on the old primary...
    for key in raw.scan_iter(f"{{{store.namespace}}}*"):  # ...which the failover lost
        if key not in saved:
            raw.delete(key)
    for key, value in saved.items():
        raw.restore(key, 0, value, replace=True)
    cost = ticket.settle(Usage(2, 3))  # settled on the new primary
    after = {(u.counter, u.unit): (u.spent, u.reserved) for u in router.usage("team")}
    assert after[("workspace/team", "tokens")] == (before[("workspace/team", "tokens")] + 5, 0)
    assert after[("workspace/team", "usd")] == (before[("workspace/team", "usd")] + cost, 0)
    assert not store.counters_lost and store.unknown_admissions == 1
    router.admit(team(router), Estimate(2, 100)).settle(Usage(2, 3))  # still serving
    assert ticket.settle(Usage(2, 3)) == cost  # and once only
    store.close()


def test_a_request_outliving_settled_ttl_settles_as_any_other(
    bundle: bytes, redis_server: RedisServer
) -> None:
    """The admission's state carried `settled_ttl` too: a request that outlived it settled
    as one a failover had lost, its usage charged on top of its reservation, never
    released (a re-check). An admission's state now outlives any request."""
    store = RedisStore(redis_server.url, namespace=namespace(), settled_ttl=1)
    router = Router.load(bundle, store)
    ticket = router.admit(team(router), Estimate(2, 100))
    time.sleep(2.2)
    cost = ticket.settle(Usage(2, 3))
    (usd_row,) = [u for u in router.usage("team") if u.unit == "usd"]
    assert (usd_row.spent, usd_row.reserved) == (cost, 0)
    assert store.unknown_admissions == 0
    store.close()
