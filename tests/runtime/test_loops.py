"""Objects kept per event loop (runtime/bundle/loops.py): the deadlines' clock, the Redis
store's pipe, clients and cluster nodes. A process that runs loop after loop (`asyncio.run` per
call, as scripts and tests do) or loops in threads keeps only what its live loops use, and
a loop never gets what was made for another."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.bundle.loops import PerLoop
from runtime.gateway import deadline
from runtime.limits.redis_store import RedisStore
from runtime.limits.spec import BudgetSpec, ChainSpec
from tests.redis_server import RedisServer


def test_an_entry_counts_only_for_the_loop_it_was_made_for() -> None:
    """A freed loop's id is reused by a later one: its entry must not be served to it."""
    gone, new = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        per: PerLoop[str] = PerLoop()
        per._entries[id(new)] = (gone, "made for another loop")  # as after id reuse
        assert per.find(new) is None
        assert per.pop(new) is None
        assert per.get(new, str, "fresh") == "fresh"
        assert per.find(new) == "fresh"
    finally:
        gone.close()
        new.close()


# a program: open a loop, use one by its index, or close one
STEP = st.one_of(
    st.just(("open", 0)), st.tuples(st.sampled_from(["get", "close"]), st.integers(0, 30))
)


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, max_size=40), st.integers(1, 6))
def test_each_live_loop_keeps_its_own_and_closed_ones_are_dropped(
    steps: list[tuple[str, int]], limit: int
) -> None:
    per: PerLoop[object] = PerLoop(limit)
    loops: list[asyncio.AbstractEventLoop] = []
    made: dict[int, object] = {}  # index of a loop -> the object it got
    may_lose: set[int] = set()  # loops whose object the limit may have pushed out
    try:
        for op, at in steps:
            if op == "open":
                loops.append(asyncio.new_event_loop())
                continue
            if not loops:
                continue
            index = at % len(loops)
            loop = loops[index]
            if op == "close":
                loop.close()
                continue
            had = per.find(loop)
            live = sum(not other.is_closed() for other, _ in per._entries.values())
            value = per.get(loop, object)
            if had is not None:
                assert value is had
            elif index in made and not loop.is_closed():  # a live loop lost its object
                assert index in may_lose
            if had is None:  # an entry was added: closed loops' went, the limit holds
                if live >= limit:
                    may_lose.update(made)
                assert all(not other.is_closed() or other is loop
                           for other, _ in per._entries.values())  # fmt: skip
                assert len(per) <= limit
            assert all(kept is not value for other, kept in made.items() if other != index)
            made[index] = value
            may_lose.discard(index)
    finally:
        for loop in loops:
            loop.close()


def test_loop_after_loop_keeps_only_the_live_loops_clock() -> None:
    async def one() -> None:
        async with deadline.Deadline(5):
            await asyncio.sleep(0)

    before = len(deadline._clocks)  # other tests' loops may still run (a served gateway)
    for _ in range(100):
        asyncio.run(one())
    assert len(deadline._clocks) <= before + 1


def _fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def _store_loop_after_loop(url: str, runs: int) -> tuple[RedisStore, int]:
    """A store admitting and settling from `runs` event loops one after another: its count of
    open file descriptors after, less before (the first run's connections counted in)."""
    store = RedisStore(url, namespace=f"t-{uuid.uuid4().hex[:8]}")
    spec = ChainSpec(("team",), (), (BudgetSpec("b", "team", "requests", "daily", 10**6, None),),
                     (), None)  # fmt: skip

    async def one(n: int) -> None:
        reservation = await store.aadmit(f"r{n}", spec, 1, 0)
        await store.asettle(reservation, 1, 0)

    asyncio.run(one(-1))
    before = _fds()
    for n in range(runs):
        asyncio.run(one(n))
    return store, _fds() - before


def test_a_store_used_loop_after_loop_keeps_one_client_and_no_sockets_of_dead_loops(
    redis_server: RedisServer,
) -> None:
    """redis-py's asyncio client (a URL with options keeps it) and the pipe (a plain URL):
    each loop's connection is dropped once its loop is closed, so descriptors stay level."""
    for url in (redis_server.url + "?socket_timeout=5", redis_server.url):
        store, grown = _store_loop_after_loop(url, 60)
        try:
            registry: Any = store._aclients if "?" in url else store._apipes
            assert len(registry) == 1, url
            assert grown <= 2, (url, grown)  # not one per loop
        finally:
            store.close()


def test_loops_in_threads_each_get_their_own() -> None:
    per: PerLoop[object] = PerLoop(limit=4)
    seen: list[tuple[object, object]] = []
    failures: list[BaseException] = []

    async def use() -> None:
        loop = asyncio.get_running_loop()
        first = per.get(loop, object)
        await asyncio.sleep(0)
        seen.append((first, per.get(loop, object)))

    def worker() -> None:
        try:
            for _ in range(50):
                asyncio.run(use())
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(seen) == 400
    assert len({id(first) for first, _ in seen}) == 400  # each loop made its own
    assert len(per) <= 4
