"""Concurrency leases of admitted, unsettled requests are renewed by the store itself: a
request longer than `lease_ttl` keeps its slot (before, `concurrency: 1` let a second request
in after 5 minutes of a long one), a settled one is no longer renewed, and a store that stops
(a process that dies) stops renewing, so its slots still expire. Against a real redis-server,
with a TTL of 2 s."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from runtime import ConcurrencyExceeded
from runtime.limits.redis_store import RedisStore
from runtime.limits.spec import ChainSpec, LeaseSpec
from tests.redis_server import RedisServer

COUNTER = "workspace/team"
SPEC = ChainSpec((COUNTER,), (), (), (LeaseSpec(f"{COUNTER}|inflight", COUNTER, 1),), None)
_n = itertools.count()


def rid() -> str:
    return f"r{next(_n)}"


def store_at(server: RedisServer, namespace: str) -> RedisStore:
    return RedisStore(server.url, namespace=namespace, lease_ttl=2.0)


def test_a_long_request_keeps_its_slot(redis_server: RedisServer) -> None:
    store = store_at(redis_server, f"renew-{next(_n)}")

    async def main() -> None:
        first = await store.aadmit(rid(), SPEC, 0, 0)
        await asyncio.sleep(5)  # 2.5 TTLs
        with pytest.raises(ConcurrencyExceeded):
            await store.aadmit(rid(), SPEC, 0, 0)
        await store.asettle(first, 0, 0)
        assert store._upkeep.live == {}  # settled: no longer renewed
        second = await store.aadmit(rid(), SPEC, 0, 0)
        await store.asettle(second, 0, 0)
        await store.aclose()

    asyncio.run(main())


def test_a_stopped_store_stops_renewing(redis_server: RedisServer) -> None:
    ns = f"renew-{next(_n)}"
    dying, other = store_at(redis_server, ns), store_at(redis_server, ns)

    async def main() -> None:
        await dying.aadmit(rid(), SPEC, 0, 0)  # never settled
        await asyncio.sleep(3)
        with pytest.raises(ConcurrencyExceeded):
            await other.aadmit(rid(), SPEC, 0, 0)  # renewed past its first TTL
        await dying.aclose()
        await asyncio.sleep(2.5)  # one TTL after the last renewal at most
        await other.asettle(await other.aadmit(rid(), SPEC, 0, 0), 0, 0)
        await other.aclose()

    asyncio.run(main())


def test_a_renewed_lease_outlives_its_set(redis_server: RedisServer) -> None:
    """The set of leases expires a minute after its TTL: a renewal past that extends it, or
    the whole set, renewed lease included, would vanish under a long request."""
    ns = f"renew-{next(_n)}"
    store = store_at(redis_server, ns)
    reservation = store.admit(rid(), SPEC, 0, 0)
    key = f"{{{ns}}}:c:{COUNTER}|inflight"
    client = redis_server.client()
    assert client.pttl(key) <= 62_000
    assert store.renew(reservation, seconds=600)
    assert client.pttl(key) > 600_000
    store.settle(reservation, 0, 0)
    assert not store.renew(reservation)  # released: a renewal does not bring it back
    client.close()
    store.close()


def test_renewals_are_one_call_for_many_leases(redis_server: RedisServer) -> None:
    ns = f"renew-{next(_n)}"
    store = store_at(redis_server, ns)
    wide = ChainSpec((COUNTER,), (), (), (LeaseSpec(f"{COUNTER}|inflight", COUNTER, 3000),), None)

    async def main() -> None:
        held = [await store.aadmit(rid(), wide, 0, 0) for _ in range(2500)]
        start = time.monotonic()
        assert await store._upkeep.renew_all() == 2500  # three script calls
        assert time.monotonic() - start < 1
        for reservation in held:
            await store.asettle(reservation, 0, 0)
        assert await store._upkeep.renew_all() == 0
        await store.aclose()

    asyncio.run(main())
