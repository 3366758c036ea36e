"""Settlements queued while Redis is unreachable are replayed in the background once it
answers, with no more traffic, and get a last try at close: before, they waited for this
process's next call (a budget held the reservations, concurrency stayed taken) and were
lost at shutdown without a word. Against a real redis-server, stopped and started again."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

import pytest

from runtime.bundle.periods import window_at
from runtime.limits.redis_store import RedisStore
from runtime.limits.spec import BudgetSpec, ChainSpec, LeaseSpec
from tests.redis_server import PERSISTENT, RedisServer

COUNTER = "workspace/team"
BUDGET = f"{COUNTER}|budget|tokens/daily"
LEASE = f"{COUNTER}|inflight"
SPEC = ChainSpec(
    (COUNTER,),
    (),
    (BudgetSpec(BUDGET, COUNTER, "tokens", "daily", 10_000, None),),
    (LeaseSpec(LEASE, COUNTER, 1),),
    None,
)
_n = itertools.count()


def books(url: str, namespace: str) -> tuple[int, int]:
    """(tokens spent today, leases held), read by another store: as a fresh gateway would."""
    reader = RedisStore(url, namespace=namespace)
    today = window_at("daily", time.time_ns(), None)[0]
    try:
        return reader.spent(BUDGET, today), reader.inflight(LEASE)
    finally:
        reader.close()


async def queued_while_away(server: RedisServer, store: RedisStore) -> None:
    """100 tokens reserved, the lease taken; Redis stops; 30 tokens used: queued."""
    reservation = await store.aadmit(f"r{next(_n)}", SPEC, 100, 0)
    server.kill()
    assert await store.asettle(reservation, 30, 0)  # queued, not raised
    assert store.pending == 1


def test_queued_settlements_replay_without_more_traffic(
    make_redis: Callable[..., RedisServer],
) -> None:
    server = make_redis(*PERSISTENT)  # comes back with its counters
    ns = f"replay-{next(_n)}"
    store = RedisStore(server.url, namespace=ns, timeout=0.2)
    replays = 0
    flush = store._aflush

    async def counted() -> int:
        nonlocal replays
        replays += 1
        return await flush()

    store._aflush = counted  # type: ignore[method-assign]

    async def main() -> None:
        await queued_while_away(server, store)
        await asyncio.sleep(1.5)  # Redis away: retries back off, no busy loop
        assert 1 <= replays <= 6
        server.start()
        deadline = time.monotonic() + 8  # the longest backoff is 5 s
        while store.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert store.pending == 0
        assert books(server.url, ns) == (30, 0)  # corrected once, the lease released
        await store.aclose()

    asyncio.run(main())


def test_close_replays_what_is_queued(make_redis: Callable[..., RedisServer]) -> None:
    server = make_redis(*PERSISTENT)
    ns = f"replay-{next(_n)}"
    store = RedisStore(server.url, namespace=ns, timeout=0.2)

    async def main() -> None:
        await queued_while_away(server, store)
        server.start()  # no await since: the background retry has not run
        await store.aclose()  # the gateway's shutdown
        assert store.pending == 0

    asyncio.run(main())
    assert books(server.url, ns) == (30, 0)


def test_close_reports_what_redis_never_took(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    ns = f"replay-{next(_n)}"
    store = RedisStore(own_redis.url, namespace=ns, timeout=0.2)

    async def main() -> float:
        await queued_while_away(own_redis, store)
        start = time.monotonic()
        with caplog.at_level(logging.ERROR, "runtime.limits.redis"):
            await store.aclose()
        return time.monotonic() - start

    assert asyncio.run(main()) < 3  # a short last try, not a hang
    assert store.pending == 0
    dropped = [r.getMessage() for r in caplog.records if "queued settlement" in r.getMessage()]
    assert len(dropped) == 1 and "1 queued settlement(s)" in dropped[0]
    assert ns in dropped[0] and "redis://" not in dropped[0]


def test_sync_close_replays_what_is_queued(make_redis: Callable[..., RedisServer]) -> None:
    server = make_redis(*PERSISTENT)
    ns = f"replay-{next(_n)}"
    store = RedisStore(server.url, namespace=ns, timeout=0.2)
    reservation = store.admit(f"r{next(_n)}", SPEC, 100, 0)
    server.kill()
    assert store.settle(reservation, 30, 0)
    server.start()
    store.close()
    assert store.pending == 0
    assert books(server.url, ns) == (30, 0)
