"""Budget leasing (runtime/limits/redis_lease.py) against a real redis-server: the bound
(never billed past a budget when estimates bound usage), the accounting (granted = spent +
returned + forfeited), a killed replica's forfeited block, idle returns, windows, adaptive
grants, lost generations, outages, and how few Redis calls a budget-only chain makes."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import struct
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runtime import BudgetExceeded, Estimate, Router, StoreUnavailable, Usage
from runtime.bundle.periods import window_at
from runtime.limits.redis_lease import Leases
from runtime.limits.redis_store import RedisStore
from tests.redis_server import RedisServer
from tests.runtime.conftest import OPENAI_PROVIDER, compile_files
from tests.runtime.hammer import hammer, hold_and_hang
from tests.runtime.test_redis import CATALOG

ORG = "kind: Organization\nversion: 1\nname: Leased\n"
TOKENS = "workspace/team|budget|tokens/daily"
REQUESTS = "workspace/team|budget|requests/daily"


def bundle_of(tmp_path: Path, workspace: str, org: str = "") -> bytes:
    return compile_files(tmp_path / f"c{uuid.uuid4().hex[:6]}", {
        "catalog.yaml": ORG + org, "i.yaml": OPENAI_PROVIDER,
        "w.yaml": "kind: Workspace\nslug: team\n" + workspace,
    })  # fmt: skip


def namespace() -> str:
    return f"l-{uuid.uuid4().hex[:8]}"


def today() -> str:
    return window_at("daily", time.time_ns(), None)[0]


def team(router: Router):  # type: ignore[no-untyped-def]
    return router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]


def leases(store: RedisStore) -> Leases:
    assert store.budget_leases is not None
    return store.budget_leases


def evalsha_calls(server: RedisServer) -> int:
    stats = server.client().info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def forfeited(server: RedisServer, ns: str, budget: str) -> int:
    value = server.client().hget(f"{{{ns}}}:l:{budget}|{today()}", "~forfeited")
    return 0 if value is None else int(struct.unpack("<dd", value)[0])


def test_leasing_off_writes_no_lease_keys(tmp_path: Path, redis_server: RedisServer) -> None:
    bundle = bundle_of(tmp_path, "budgets: [{limit: 100, unit: requests, period: daily}]\n")
    ns = namespace()
    router = Router.load(bundle, RedisStore(redis_server.url, namespace=ns))
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))  # joins, loads scripts
    before = evalsha_calls(redis_server)
    for _ in range(5):
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    assert evalsha_calls(redis_server) - before == 10  # exact: admit + settle per request
    keys = {k.decode() for k in redis_server.client().keys(f"{{{ns}}}*")}
    assert not any(":l:" in k or ":lu:" in k or k.endswith(":lr") for k in keys)
    assert router.store.budget_leases is None  # type: ignore[attr-defined]


def test_budget_only_chain_makes_no_redis_call_while_its_block_lasts(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Four levels of budgets (organization, integration, provider, workspace): a few
    acquisitions for 5,000 requests, against 2 scripts per request exact."""
    budget = "budgets: [{limit: 10, unit: usd, period: daily}]\n"
    provider = OPENAI_PROVIDER.replace("service: openai\n", "service: openai\n" + budget)
    provider += budget
    bundle = compile_files(tmp_path / "c", {
        "catalog.yaml": ORG + budget, "i.yaml": provider,
        "w.yaml": "kind: Workspace\nslug: team\n" + budget,
    })  # fmt: skip
    ns = namespace()
    store = RedisStore(redis_server.url, namespace=ns, lease_budgets=True)
    router = Router.load(bundle, store)
    router.admit(team(router), Estimate(10, 10)).settle(Usage(10, 5))  # joins, first blocks
    assert len(redis_server.client().keys(f"{{{ns}}}:lu:*")) == 4  # four usd budgets leased
    before = evalsha_calls(redis_server)
    n = 5000
    for _ in range(n):
        router.admit(team(router), Estimate(10, 10)).settle(Usage(10, 5))
    calls = evalsha_calls(redis_server) - before
    print(f"\nleased, 4 budgets: {calls} Redis scripts for {n} requests ({calls / n:.4f} per "
          f"request; exact: 2)")  # fmt: skip
    assert 1 <= calls <= 6  # a block of $0.01 (0.1%) holds ~2,200 of these requests
    store.close()


def test_many_stores_never_bill_past_the_budget_and_account_for_every_grant(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """4 stores x 4 threads, estimates >= usage: billed <= limit, and once every store has
    closed (returned its holdings) Redis's granted total is exactly what was spent."""
    bundle = bundle_of(tmp_path, "budgets: [{limit: 20000, unit: tokens, period: daily}]\n")
    ns = namespace()
    stores = [RedisStore(redis_server.url, namespace=ns, lease_budgets=True, lease_block=0.02,
                         lease_idle=0.2) for _ in range(4)]  # fmt: skip
    routers = [Router.load(bundle, s) for s in stores]
    lock = threading.Lock()
    billed, peak = [0], [0]
    reader = RedisStore(redis_server.url, namespace=ns)

    def run(k: int) -> None:
        rng = random.Random(k)
        router = routers[k % 4]
        for _ in range(150):
            estimate = Estimate(rng.randint(1, 40), rng.randint(0, 60))
            try:
                ticket = router.admit(team(router), estimate)
            except BudgetExceeded:
                time.sleep(0.001)
                continue
            usage = Usage(estimate.input_tokens, rng.randint(0, estimate.max_tokens or 0))
            ticket.settle(usage)
            with lock:
                billed[0] += usage.tokens
            granted = reader.spent(TOKENS, today())
            with lock:
                peak[0] = max(peak[0], granted)

    workers = [threading.Thread(target=run, args=(k,)) for k in range(16)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert billed[0] <= 20_000 and peak[0] <= 20_000
    assert billed[0] > 15_000  # most of it was spent: 16 x 150 requests want ~120,000
    stats = [leases(s).stats() for s in stores]
    for s in stores:
        s.close()
    after = [leases(s).stats() for s in stores]
    acquired = sum(x["acquired"] for x in after)
    returned = sum(x["returned"] for x in after)
    assert sum(x["forfeited"] for x in after) == 0
    assert all(x["held"] == 0 and x["inflight"] == 0 for x in after)
    assert acquired == billed[0] + returned  # granted = spent + returned (+ forfeited: 0)
    assert reader.spent(TOKENS, today()) == billed[0]
    assert sum(x["calls"] for x in stats) < 16 * 150  # fewer scripts than requests


def test_many_processes_leased_share_one_truth(bundle: bytes, redis_server: RedisServer) -> None:
    """The multi-process hammer of test_redis.py with leasing, 4 processes x 2 stores x 4
    threads: rate limits and concurrency stay exact (the organization's bucket of 300, the
    provider's 12), the token budget is never overshot, and after every process closed,
    granted == spent."""
    ns = namespace()
    start = time.time()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=ctx) as pool:
        futures = [
            pool.submit(
                hammer,
                bundle,
                redis_server.url,
                ns,
                seed,
                8,
                60,
                stores=2,
                lease_budgets=True,
                lease_block=0.05,
            )
            for seed in range(4)
        ]
        results = [f.result() for f in futures]
    elapsed = time.time() - start
    admitted = sum(r["admitted"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    assert admitted + sum(r["refused"] for r in results) == 4 * 8 * 60
    assert 0 < admitted <= 300 + int(300 * elapsed / 86_400)
    assert tokens <= 9000
    store = RedisStore(redis_server.url, namespace=ns)
    assert store.spent(TOKENS, today()) == tokens  # every holding returned at close
    assert store.inflight("provider/openai-prod|inflight") == 0


@pytest.fixture
def bundle(tmp_path: Path) -> bytes:
    return compile_files(tmp_path / "shared", CATALOG)


def test_underestimates_one_replica_overshoot_exactly_as_exact(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Sequential requests costing up to 3x their estimate: leased and exact admit the same
    requests and bill the same total (one replica: the bounds are identical)."""
    bundle = bundle_of(tmp_path, "budgets: [{limit: 2000, unit: tokens, period: daily}]\n")

    def run(store: RedisStore) -> tuple[int, int]:
        router = Router.load(bundle, store)
        rng = random.Random(7)
        admitted = billed = 0
        for _ in range(400):
            e = rng.randint(1, 20)
            try:
                ticket = router.admit(team(router), Estimate(e, 0))
            except BudgetExceeded:
                continue
            used = rng.randint(1, 3 * e)
            ticket.settle(Usage(used, 0))
            admitted, billed = admitted + 1, billed + used
        store.close()
        return admitted, billed

    exact = run(RedisStore(redis_server.url, namespace=namespace()))
    leased = run(RedisStore(redis_server.url, namespace=namespace(), lease_budgets=True,
                            lease_block=0.05))  # fmt: skip
    assert leased == exact
    assert exact[1] > 2000  # it did overshoot (by the last request's excess)


def test_a_refund_after_an_excess_pays_it_back_instead_of_being_spent(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Two requests of 50 fill a budget of 100; one costs 60 (10 charged beyond the block),
    the other 40. The 10 refunded pay the excess back: the books hold 100, and a third
    request is refused, as the exact store refuses it (60 + 40 + 10 > 100)."""
    bundle = bundle_of(tmp_path, "budgets: [{limit: 100, unit: tokens, period: daily}]\n")
    ns = namespace()
    store = RedisStore(redis_server.url, namespace=ns, lease_budgets=True, lease_block=1.0)
    router = Router.load(bundle, store)
    a = router.admit(team(router), Estimate(50, 0))
    c = router.admit(team(router), Estimate(50, 0))
    reader = RedisStore(redis_server.url, namespace=ns)
    assert reader.spent(TOKENS, today()) == 100
    a.settle(Usage(60, 0))
    assert reader.spent(TOKENS, today()) == 110  # the excess, charged at once
    c.settle(Usage(40, 0))
    assert reader.spent(TOKENS, today()) == 100  # paid back, not kept to spend
    with pytest.raises(BudgetExceeded):
        router.admit(team(router), Estimate(10, 0))
    assert leases(store).stats() | {"calls": 0} == {
        "calls": 0, "acquired": 100, "charged": 10, "returned": 10, "forfeited": 0, "held": 0,
        "inflight": 0,
    }  # fmt: skip
    store.close()


def test_underestimates_many_stores_overshoot_within_the_bound(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """4 stores x 3 threads, every request up to 2x its estimate of 10: overshoot at most the
    excess of requests in flight (12) or admitted from blocks held elsewhere (N b / e)."""
    bundle = bundle_of(tmp_path, "budgets: [{limit: 5000, unit: tokens, period: daily}]\n")
    ns = namespace()
    stores = [RedisStore(redis_server.url, namespace=ns, lease_budgets=True, lease_block=0.02)
              for _ in range(4)]  # fmt: skip
    routers = [Router.load(bundle, s) for s in stores]
    lock = threading.Lock()
    billed = [0]

    def run(k: int) -> None:
        rng = random.Random(k)
        router = routers[k % 4]
        for _ in range(120):
            try:
                ticket = router.admit(team(router), Estimate(10, 0))
            except BudgetExceeded:
                continue
            used = rng.randint(5, 20)
            ticket.settle(Usage(used, 0))
            with lock:
                billed[0] += used

    workers = [threading.Thread(target=run, args=(k,)) for k in range(12)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for s in stores:
        s.close()
    block = int(5000 * 0.02)
    bound = 12 * 10 + (4 * block // 10) * 10
    assert 4500 < billed[0] <= 5000 + bound  # (refused threads may stop short of it)
    reader = RedisStore(redis_server.url, namespace=ns)
    assert reader.spent(TOKENS, today()) == billed[0]  # every excess was charged


def test_killed_replica_block_is_forfeited_and_survivors_spend_the_rest(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    bundle = bundle_of(tmp_path, "budgets: [{limit: 1000, unit: requests, period: daily}]\n")
    ns = namespace()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    worker = ctx.Process(target=hold_and_hang, args=(bundle, redis_server.url, ns, 5, ready))
    worker.start()
    try:
        stats = ready.get(timeout=30)
    finally:
        worker.kill()  # SIGKILL: nothing returned, nothing renewed
        worker.join()
    assert stats["acquired"] == 200 and stats["held"] == 195  # a block of 20%, 5 spent
    store = RedisStore(redis_server.url, namespace=ns, lease_budgets=True, lease_block=0.05)
    router = Router.load(bundle, store)
    admitted = 0
    while True:
        try:
            router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
        except BudgetExceeded:
            break
        admitted += 1
    assert admitted == 800  # the dead replica's 200 stay granted
    assert forfeited(redis_server, ns, REQUESTS) in (0, 200)  # forfeited once 1 s passed
    time.sleep(1.1)
    with pytest.raises(BudgetExceeded):
        router.admit(team(router), Estimate(1, 1))  # its lease expired: forfeited, not returned
    assert forfeited(redis_server, ns, REQUESTS) == 200
    store.close()
    assert RedisStore(redis_server.url, namespace=ns).spent(REQUESTS, today()) == 1000
    assert leases(store).stats()["forfeited"] == 0


def test_idle_holdings_are_returned(tmp_path: Path, redis_server: RedisServer) -> None:
    bundle = bundle_of(tmp_path, "budgets: [{limit: 1000, unit: requests, period: daily}]\n")
    ns = namespace()
    store = RedisStore(redis_server.url, namespace=ns, lease_budgets=True, lease_block=0.1,
                       lease_idle=0.2)  # fmt: skip
    router = Router.load(bundle, store)
    for _ in range(3):
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    reader = RedisStore(redis_server.url, namespace=ns)
    assert reader.spent(REQUESTS, today()) == 100  # one block granted
    ticket = router.admit(team(router), Estimate(1, 1))  # in flight: not idle
    time.sleep(0.5)
    assert reader.spent(REQUESTS, today()) == 100
    ticket.settle(Usage(1, 1))
    deadline = time.monotonic() + 3
    while reader.spent(REQUESTS, today()) != 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.spent(REQUESTS, today()) == 4  # the rest went back
    assert leases(store).stats() | {"calls": 0} == {
        "calls": 0, "acquired": 100, "charged": 0, "returned": 96, "forfeited": 0, "held": 0,
        "inflight": 0,
    }  # fmt: skip
    deadline = time.monotonic() + 3
    while leases(store).holdings and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leases(store).holdings  # idle and empty: forgotten, nothing left to renew
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))  # acquires afresh
    store.close()
    assert reader.spent(REQUESTS, today()) == 5


def test_client_clock_past_the_window_uses_the_servers_window(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A replica whose clock jumps two days ahead: its holding's window looks ended, so it is
    retired (and returned); the server's clock keeps the budget in today's window."""
    bundle = bundle_of(tmp_path, "budgets: [{limit: 1000, unit: requests, period: daily}]\n")
    ns = namespace()
    store = RedisStore(redis_server.url, namespace=ns, lease_budgets=True, lease_block=0.1,
                       lease_idle=0.2)  # fmt: skip
    router = Router.load(bundle, store)
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    store.clock = lambda: time.time_ns() + 2 * 86_400 * 10**9
    ticket = router.admit(team(router), Estimate(1, 1))
    assert ticket.reservation.windows == (today(),)
    ticket.settle(Usage(1, 1))
    for _ in range(5):
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))  # learned the skew
    store.close()
    assert RedisStore(redis_server.url, namespace=ns).spent(REQUESTS, today()) == 7


def test_adaptive_grants_shrink_near_the_limit(tmp_path: Path, redis_server: RedisServer) -> None:
    """Blocks of 10% while room allows, then room / 2N, down to the request's own need."""
    bundle = bundle_of(tmp_path, "budgets: [{limit: 1000, unit: requests, period: daily}]\n")
    store = RedisStore(redis_server.url, namespace=namespace(), lease_budgets=True,
                       lease_block=0.1, lease_replicas=2)  # fmt: skip
    router = Router.load(bundle, store)
    grants: list[int] = []
    admitted = 0
    while True:
        before = leases(store).acquired
        try:
            router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
        except BudgetExceeded:
            break
        admitted += 1
        if leases(store).acquired != before:
            grants.append(leases(store).acquired - before)
    assert grants[:7] == [100] * 7  # room >= 400: full blocks
    assert grants[7:10] == [75, 56, 42]  # then a quarter of the room (N = 2)
    assert grants[-1] == 1 and admitted == 1000
    store.close()


def test_two_replicas_leave_nothing_stranded(tmp_path: Path, redis_server: RedisServer) -> None:
    """Alternating replicas, each admitting until refused: all of the budget is spent."""
    bundle = bundle_of(tmp_path, "budgets: [{limit: 1000, unit: requests, period: daily}]\n")
    ns = namespace()
    a, b = (RedisStore(redis_server.url, namespace=ns, lease_budgets=True, lease_block=0.1)
            for _ in range(2))  # fmt: skip
    routers = [Router.load(bundle, a), Router.load(bundle, b)]
    admitted, done = 0, [False, False]
    while not all(done):
        for k, router in enumerate(routers):
            if done[k]:
                continue
            try:
                router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
                admitted += 1
            except BudgetExceeded:
                done[k] = True
    assert admitted == 1000
    for s in (a, b):
        s.close()


def test_lost_generation_drops_holdings(tmp_path: Path, own_redis: RedisServer) -> None:
    bundle = bundle_of(tmp_path, "budgets: [{limit: 1000, unit: requests, period: daily}]\n")
    losses: list[StoreUnavailable] = []
    store = RedisStore(own_redis.url, namespace=namespace(), lease_budgets=True,
                       lease_block=0.01, on_loss=losses.append)  # fmt: skip
    router = Router.load(bundle, store)
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    own_redis.client().flushall()
    for _ in range(9):  # the held block is still admitted from (paid for before the loss)
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    with pytest.raises(StoreUnavailable):
        router.admit(team(router), Estimate(1, 1))  # acquiring finds the generation gone
    assert store.losses == 1 and len(losses) == 1
    assert leases(store).stats()["held"] == 0
    store.recover()
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    store.close()


def test_lost_generation_fail_open_counts_afresh(tmp_path: Path, own_redis: RedisServer) -> None:
    bundle = bundle_of(tmp_path, "budgets: [{limit: 1000, unit: requests, period: daily}]\n")
    ns = namespace()
    store = RedisStore(own_redis.url, namespace=ns, lease_budgets=True, lease_block=0.01,
                       fail_open=True)  # fmt: skip
    router = Router.load(bundle, store)
    for _ in range(3):
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    own_redis.client().flushall()
    leases(store).tick(everything=True)  # a renewal or return finds the generation gone
    assert leases(store).stats()["held"] == 0
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))  # a new generation
    assert store.losses == 1 and store.bypassed == 0
    store.close()
    assert RedisStore(own_redis.url, namespace=ns).spent(REQUESTS, today()) == 1


@pytest.mark.parametrize("fail_open", [False, True])
def test_redis_down_admits_within_holdings(
    tmp_path: Path, own_redis: RedisServer, fail_open: bool
) -> None:
    bundle = bundle_of(tmp_path, "budgets: [{limit: 1000, unit: requests, period: daily}]\n")
    store = RedisStore(own_redis.url, namespace=namespace(), lease_budgets=True,
                       lease_block=0.01, fail_open=fail_open, timeout=0.2)  # fmt: skip
    router = Router.load(bundle, store)
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))  # holds 10, spent 1
    own_redis.kill()
    for _ in range(9):
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))  # no call needed
    if fail_open:
        ticket = router.admit(team(router), Estimate(1, 1))  # acquisition: bypassed
        assert store.bypassed == 1
        ticket.settle(Usage(1, 1))
    else:
        with pytest.raises(StoreUnavailable):
            router.admit(team(router), Estimate(1, 1))
    store.close()


def test_async_leased_admissions(tmp_path: Path, redis_server: RedisServer) -> None:
    bundle = bundle_of(
        tmp_path, "budgets: [{limit: 300, unit: requests, period: daily}]\nconcurrency: 16\n"
    )
    ns = namespace()
    store = RedisStore(redis_server.url, namespace=ns, lease_budgets=True, lease_block=0.05)
    router = Router.load(bundle, store)

    async def one() -> bool:
        try:
            ticket = await router.aadmit(team(router), Estimate(1, 1))
        except (BudgetExceeded, Exception) as exc:
            return not isinstance(exc, BudgetExceeded) and _raise(exc)
        await asyncio.sleep(0)
        await ticket.asettle(Usage(1, 1))
        return True

    async def many() -> list[bool]:
        out: list[bool] = []
        for _ in range(4):
            out += await asyncio.gather(*(one() for _ in range(16)))
        for _ in range(300):
            out.append(await one())
        return out

    assert sum(asyncio.run(many())) == 300
    store.close()
    assert RedisStore(redis_server.url, namespace=ns).spent(REQUESTS, today()) == 300


def test_a_refusal_while_this_replica_holds_enough_is_not_a_refusal(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Requests admitted together each find the holding short and ask Redis; the first
    grants (blocks of 5) top the holding up while the last asks are refused by the budget.
    Those requests are admitted from the holding, not refused beside unused units."""
    bundle = bundle_of(
        tmp_path, "budgets: [{limit: 20, unit: requests, period: daily}]\nconcurrency: 64\n"
    )
    store = RedisStore(redis_server.url, namespace=namespace(), lease_budgets=True,
                       lease_block=0.25)  # fmt: skip
    router = Router.load(bundle, store)

    async def one() -> bool:
        try:
            ticket = await router.aadmit(team(router), Estimate(1, 1))
        except BudgetExceeded:
            return False
        await ticket.asettle(Usage(1, 1))
        return True

    async def many() -> list[bool]:
        return await asyncio.gather(*(one() for _ in range(40)))

    assert sum(asyncio.run(many())) == 20
    assert sum(h.held for h in leases(store).holdings.values()) == 0  # nothing stranded
    store.close()


def _raise(exc: BaseException) -> Any:
    raise exc


def test_async_only_store_maintains_from_its_admissions_and_returns_at_aclose(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A store given only an async client has no maintenance thread: its async admissions
    return idle holdings, and aclose() returns the rest (what the gateway calls at exit)."""
    import redis.asyncio as aioredis

    bundle = bundle_of(tmp_path, "budgets: [{limit: 1000, unit: requests, period: daily}]\n")
    ns = namespace()
    reader = RedisStore(redis_server.url, namespace=ns)

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        store = RedisStore(async_client=client, namespace=ns, lease_budgets=True,
                           lease_block=0.1, lease_idle=0.1)  # fmt: skip
        router = Router.load(bundle, store)
        for _ in range(3):
            ticket = await router.aadmit(team(router), Estimate(1, 1))
            await ticket.asettle(Usage(1, 1))
        assert reader.spent(REQUESTS, today()) == 100
        await asyncio.sleep(0.2)
        ticket = await router.aadmit(team(router), Estimate(1, 1))  # maintains first
        assert reader.spent(REQUESTS, today()) == 3 + 100  # 97 idle went back; a new block
        await ticket.asettle(Usage(1, 1))
        await store.aclose()
        assert leases(store).stats()["held"] == 0
        await client.aclose()

    asyncio.run(run())
    assert reader.spent(REQUESTS, today()) == 4


def test_a_rate_limit_refusal_gives_the_budget_back(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Budgets are taken locally first; when the chain's exact part (here the organization's
    bucket of 3) refuses, the take goes back to the holding: nothing is charged."""
    from runtime import RateLimited

    bundle = bundle_of(
        tmp_path,
        "budgets: [{limit: 1000, unit: requests, period: daily}]\n",
        "rate_limits: [{limit: 24, unit: requests, per: day, burst: 3}]\n",
    )
    ns = namespace()
    store = RedisStore(redis_server.url, namespace=ns, lease_budgets=True, lease_block=0.1)
    router = Router.load(bundle, store)
    for _ in range(3):
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    for _ in range(3):
        with pytest.raises(RateLimited):
            router.admit(team(router), Estimate(1, 1))
    stats = leases(store).stats()
    assert (stats["acquired"], stats["held"], stats["inflight"]) == (100, 97, 0)
    store.close()
    assert RedisStore(redis_server.url, namespace=ns).spent(REQUESTS, today()) == 3
