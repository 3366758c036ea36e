"""The store on a real Redis Cluster (3 primaries, each with a replica): every namespace works
whichever primary holds its slot, sync and asyncio, from a URL or from clients passed in; a
reshard that moves the store's slot key by key under load keeps exact books (callers see
admissions, refusals or StoreUnavailable, nothing else); strict mode waits for the replica."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import redis.asyncio.cluster as aiocluster
import redis.cluster

from runtime import BudgetExceeded, Estimate, Router, StoreUnavailable, Usage
from runtime.limits.redis_store import RedisStore
from tests.redis_ha.load import ESTIMATE, USAGE, audit, books, namespace, new_store, run_threads
from tests.redis_ha.topologies import Cluster, slot_of


def team(router: Router):  # type: ignore[no-untyped-def]
    return router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]


def test_every_primary_serves_its_namespaces(cluster: Cluster, tmp_path: Path) -> None:
    """Namespaces hash to different primaries: each one's script runs where its slot is."""
    data = books(tmp_path, budget=3)
    for server in cluster.servers:
        ns = cluster.namespace_on(server)
        assert cluster.owner(slot_of(ns)) is server
        store = new_store(cluster.url, ns)
        router = Router.load(data, store)
        router.admit(team(router), ESTIMATE).settle(USAGE)

        async def run(router: Router = router) -> None:
            ticket = await router.aadmit(team(router), ESTIMATE)
            await ticket.asettle(USAGE)

        asyncio.run(run())
        router.admit(team(router), ESTIMATE).settle(USAGE)
        with pytest.raises(BudgetExceeded):
            router.admit(team(router), ESTIMATE)
        with server.client() as client:  # the counters live on that primary
            assert client.exists(f"{{{ns}}}:g")
        store.close()


def test_clients_passed_in(cluster: Cluster, tmp_path: Path) -> None:
    host, port = "127.0.0.1", cluster.servers[1].port
    sync = redis.cluster.RedisCluster(host=host, port=port)
    store = RedisStore(client=sync, async_client=aiocluster.RedisCluster(host=host, port=port),
                       namespace=namespace())  # fmt: skip
    assert store.url.startswith("redis+cluster://127.0.0.1:")
    router = Router.load(books(tmp_path, budget=10), store)
    router.admit(team(router), ESTIMATE).settle(USAGE)

    async def run() -> None:
        ticket = await router.aadmit(team(router), ESTIMATE)
        await ticket.asettle(USAGE)

    asyncio.run(run())
    assert store.spent("workspace/team|budget|requests/monthly", _month()) == 2
    sync.close()


def test_a_reshard_under_load_keeps_exact_books(cluster: Cluster, tmp_path: Path) -> None:
    """The store's slot moves to another primary, 5 keys per MIGRATE, while 4 threads admit
    and settle. Clients meet TRYAGAIN and ASK during the move and MOVED after it."""
    source = cluster.servers[0]
    target = cluster.servers[1]
    ns = cluster.namespace_on(source, "reshard")
    budget = 300
    store = new_store(cluster.url, ns)
    router = Router.load(books(tmp_path, budget), store)
    for _ in range(40):  # state keys to move
        router.admit(team(router), ESTIMATE).settle(USAGE)
    stop = threading.Event()
    out, workers = run_threads(router, stop)
    time.sleep(0.3)
    moved = cluster.migrate(slot_of(ns), target, batch=5, pause=0.01)
    done = time.monotonic()
    time.sleep(0.5)  # admissions after the move: MOVED, then the new owner
    stop.set()
    for worker in workers:
        worker.join()
    assert not out.failures, out.failures[:3]
    assert cluster.owner(slot_of(ns)) is target and moved >= 40
    assert any(r.admitted_at > done for r in out.admitted) or out.refused  # served after
    store.flush()
    assert store.pending == 0
    with redis.cluster.RedisCluster(host="127.0.0.1", port=target.port) as client:
        books_now = audit(store, client, out)
    admitted = 40 + len(out.counted())
    assert not books_now.lost_admissions and not books_now.lost_settlements
    assert admitted <= budget
    assert books_now.requests == admitted  # each admission charged exactly once
    assert books_now.tokens == 13 * admitted  # each settlement applied exactly once
    assert store.inflight("provider/openai-prod|inflight") == 0
    print(f"\nreshard: {moved} keys moved, {len(out.counted())} admitted during it, "
          f"{len(out.unavailable)} StoreUnavailable (TRYAGAIN while the slot was open)")  # fmt: skip


def test_strict_mode_waits_for_the_replica(cluster: Cluster, tmp_path: Path) -> None:
    ns = cluster.namespace_on(cluster.servers[2], "strict")
    data = books(tmp_path, budget=5)
    router = Router.load(data, new_store(cluster.url, ns, replicas=1))
    router.admit(team(router), ESTIMATE).settle(USAGE)  # one replica acknowledged

    async def run() -> None:
        ticket = await router.aadmit(team(router), ESTIMATE)
        await ticket.asettle(USAGE)

    asyncio.run(run())
    # asking for two replicas where there is one: refused, and the admission undone
    store = new_store(cluster.url, ns, replicas=2)
    strict = Router.load(data, store)
    with pytest.raises(StoreUnavailable, match="1 of 2 replica"):
        strict.admit(team(strict), Estimate(10, 10))
    assert store.pending == 0
    assert store.spent("workspace/team|budget|requests/monthly", _month()) == 2
    assert store.inflight("provider/openai-prod|inflight") == 0
    open_store = new_store(cluster.url, ns, replicas=2, fail_open=True)
    lenient = Router.load(data, open_store)
    lenient.admit(team(lenient), ESTIMATE).settle(Usage(10, 3))  # kept, counted
    assert open_store.unreplicated == 1
    assert store.spent("workspace/team|budget|requests/monthly", _month()) == 3


def _month() -> str:
    from runtime.bundle.periods import window_at

    return window_at("monthly", time.time_ns(), None)[0]


def test_leased_budgets_on_a_cluster(cluster: Cluster, tmp_path: Path) -> None:
    """Budget leasing's keys ({ns}:l:…, {ns}:lr) share the store's hash tag: its scripts run
    on the primary holding the slot, sync and asyncio, and the books close exactly."""
    ns = cluster.namespace_on(cluster.servers[2], "leased")
    store = new_store(cluster.url, ns, lease_budgets=True, lease_block=0.3)
    router = Router.load(books(tmp_path, budget=10), store)
    for _ in range(8):
        router.admit(team(router), ESTIMATE).settle(USAGE)

    async def run() -> None:
        for _ in range(2):
            ticket = await router.aadmit(team(router), ESTIMATE)
            await ticket.asettle(USAGE)

    asyncio.run(run())
    with pytest.raises(BudgetExceeded):
        router.admit(team(router), ESTIMATE)
    store.close()
    with cluster.servers[2].client() as client:
        assert client.exists(f"{{{ns}}}:lr") or client.keys(f"{{{ns}}}:l:*")
    assert new_store(cluster.url, ns).spent("workspace/team|budget|requests/monthly",
                                            _month()) == 10  # fmt: skip


def test_a_plain_url_at_a_cluster_node_is_refused_at_start(cluster: Cluster) -> None:
    """It served while the namespace's slot was that node's, then failed with a bare MOVED
    reply (a review): now start (sync and async) names the URL form to use."""
    node = cluster.servers[0]
    store = RedisStore(node.url, namespace=cluster.namespace_on(node))
    with pytest.raises(StoreUnavailable, match=r"redis\+cluster://"):
        store.start()
    with pytest.raises(StoreUnavailable, match=r"redis\+cluster://"):
        asyncio.run(store.astart())
    store.close()
