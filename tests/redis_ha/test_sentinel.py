"""The store behind Sentinel (a primary, a replica, three sentinels) while the primary
changes under load: a forced failover (SENTINEL FAILOVER: the old primary lives on and is
demoted) and a killed primary. Callers see admissions, refusals or StoreUnavailable, never a
raw redis error; settlements queued during the switch are replayed once; what the primary
holds never exceeds the budget. With asynchronous replication a failover may lose the last
writes: the test measures that loss and its window (docs/redis.md quotes them) and asserts
that only writes acknowledged inside it are lost; strict mode (replicas=1) loses none."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runtime import Router, StoreUnavailable
from runtime.limits.redis_store import PRIMARY_CHECK_S
from tests.redis_ha.load import ESTIMATE, USAGE, Load, audit, books, namespace, new_store
from tests.redis_ha.topologies import SentinelGroup
from tests.redis_server import RedisServer, free_port

BUDGET = 700  # requests: reached during the run on a quiet machine, not needed otherwise
SLACK = 2.0  # seconds: scheduling on a 2-core CI box running the whole suite


def team(router: Router):  # type: ignore[no-untyped-def]
    return router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]


@pytest.mark.parametrize(
    ("mode", "strict"), [("sync", False), ("async", False), ("sync", True)],
    ids=["sync", "async", "strict"],
)  # fmt: skip
def test_a_forced_failover_under_load(
    sentinels: SentinelGroup, tmp_path: Path, mode: str, strict: bool
) -> None:
    store = new_store(sentinels.url, namespace(), replicas=int(strict), lease_ttl=1.0)
    router = Router.load(books(tmp_path, BUDGET), store)
    router.admit(team(router), ESTIMATE).settle(USAGE)
    with Load(router, mode) as load:
        time.sleep(0.5)
        started = time.monotonic()
        # Replication is asynchronous: on a loaded machine the replica may lag behind writes
        # acknowledged before the failover began. WAIT makes "before `started`" replicated, so
        # every loss the test counts is one the failover itself caused.
        with sentinels.primary.client() as primary:
            assert primary.wait(1, 10_000) >= 1
        new = sentinels.failover()
        switched = time.monotonic()
        if strict:  # no replica acknowledges until the demoted primary has synced again
            sentinels.await_replica()
        time.sleep(1.0)  # on the new primary (the old one is demoted meanwhile)
    out = load.out
    assert not out.failures, out.failures[:3]
    assert any(r.admitted_at > switched for r in out.admitted) or out.refused
    store.flush()
    assert store.pending == 0
    with new.client() as primary:
        books_now = audit(store, primary, out)
    admitted = 1 + len(out.counted())
    lost = admitted - books_now.requests  # admissions the new primary never saw
    assert books_now.requests <= BUDGET  # the script never admits past the budget
    end = switched + PRIMARY_CHECK_S + SLACK
    inside = [r for r in out.counted() if started <= r.admitted_at <= end]
    assert lost <= len(inside)  # only admissions acknowledged inside the window are lost
    assert all(started <= r.admitted_at <= end for r in books_now.lost_admissions)
    assert all(started <= (r.settled_at or 0) <= end for r in books_now.lost_settlements)
    if strict:  # every acknowledged admission survived; a refused one may stay charged when
        # the store could not tell it ran (an over-count, never a loss: docs/redis.md)
        assert lost <= 0 and not books_now.lost_admissions
    time.sleep(1.1)  # leases of lost settlements expire by their TTL
    assert store.inflight("provider/openai-prod|inflight") == 0
    print(f"\nforced failover ({mode}, strict={strict}): switch {switched - started:.2f} s, "
          f"{admitted} admitted, {len(out.unavailable)} StoreUnavailable, {lost} admissions "
          f"and {len(books_now.lost_settlements)} settlements lost, last lost write "
          f"{books_now.window(started):.2f} s after the failover began")  # fmt: skip


@pytest.mark.parametrize("fail_open", [False, True], ids=["fail-closed", "fail-open"])
def test_a_killed_primary(sentinels: SentinelGroup, tmp_path: Path, fail_open: bool) -> None:
    store = new_store(sentinels.url, namespace(), fail_open=fail_open, lease_ttl=1.0)
    router = Router.load(books(tmp_path, BUDGET), store)
    router.admit(team(router), ESTIMATE).settle(USAGE)
    with Load(router, "sync") as load:
        time.sleep(0.5)
        killed = time.monotonic()
        sentinels.primary.kill()
        new = sentinels.await_switch()
        switched = time.monotonic()
        time.sleep(1.0)
    out = load.out
    assert not out.failures, out.failures[:3]
    if fail_open:
        assert not out.unavailable and any(r.bypassed for r in out.admitted)
    else:
        assert out.unavailable and all(killed <= t <= switched + SLACK for t in out.unavailable)
    assert any(r.admitted_at > switched and not r.bypassed for r in out.admitted) or out.refused
    store.flush()
    assert store.pending == 0  # settlements queued while no primary answered: replayed
    with new.client() as primary:
        books_now = audit(store, primary, out)
    admitted = 1 + len(out.counted())
    lost = admitted - books_now.requests
    assert books_now.requests <= BUDGET
    # only the tail the replica had not received when the primary died
    assert all(r.admitted_at <= killed for r in books_now.lost_admissions)
    assert lost <= len([r for r in out.counted() if killed - SLACK <= r.admitted_at <= killed])
    time.sleep(1.1)
    assert store.inflight("provider/openai-prod|inflight") == 0
    print(f"\nkilled primary (fail_open={fail_open}): switch {switched - killed:.2f} s, "
          f"{len(out.unavailable)} StoreUnavailable, "
          f"{sum(r.bypassed for r in out.admitted)} bypassed, {lost} admissions lost")  # fmt: skip


def test_a_demoted_single_server_is_left_for_the_new_primary(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    """A managed service's single endpoint fails over behind its DNS name: the old primary,
    now a replica, answers READONLY on the store's open connections. The store drops them
    (new ones would reach the new primary), so it serves again as soon as one answers."""
    store = new_store(own_redis.url, namespace())
    router = Router.load(books(tmp_path, BUDGET), store)
    router.admit(team(router), ESTIMATE).settle(USAGE)
    with own_redis.client() as admin:
        before = {c["id"] for c in admin.client_list() if c["name"] != "admin"}
        admin.client_setname("admin")
        admin.replicaof("127.0.0.1", str(free_port()))
        with pytest.raises(StoreUnavailable, match=r"READONLY|read only"):
            router.admit(team(router), ESTIMATE)
        admin.replicaof("NO", "ONE")
        router.admit(team(router), ESTIMATE).settle(USAGE)
        after = {c["id"] for c in admin.client_list() if c["name"] != "admin"}
    assert after and not after & before  # every connection of the demoted server was dropped
