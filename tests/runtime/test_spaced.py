"""`Spaced` (runtime/gateway/spaced.py), the gate in front of `/metrics`: one computation at a
time, each after a pause of SHARE_GAP times the last one's cost (at most MAX_GAP), and every
caller gets the result of a computation that started after it asked. Cost is measured here
on the loop's clock, which the gate itself reads (in production: the process's CPU time):
the laws hold by construction, not by how fast this machine is."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.gateway.spaced import Spaced


@settings(max_examples=40, deadline=None)
@given(
    arrivals=st.lists(st.integers(0, 40), min_size=1, max_size=25),  # ms after the start
    duration=st.integers(1, 5),  # ms each computation takes
    gap=st.sampled_from([0.0, 1.0, 3.0]),
)
def test_one_at_a_time_spaced_and_never_stale(arrivals: list[int], duration: int,
                                              gap: float) -> None:  # fmt: skip
    async def main() -> tuple[list[tuple[float, float]], list[tuple[float, tuple[float, float]]]]:
        loop = asyncio.get_running_loop()
        runs: list[tuple[float, float]] = []  # (start, end) of each computation
        running = [0]

        async def compute() -> tuple[float, float]:
            running[0] += 1
            assert running[0] == 1  # never two at once
            start = loop.time()
            await asyncio.sleep(duration / 1000)
            running[0] -= 1
            runs.append((start, loop.time()))
            return runs[-1]

        spaced = Spaced(compute, gap, cost=loop.time)
        got: list[tuple[float, tuple[float, float]]] = []

        async def caller(at_ms: int) -> None:
            await asyncio.sleep(at_ms / 1000)
            asked = loop.time()
            got.append((asked, await spaced.get()))

        await asyncio.gather(*(caller(ms) for ms in arrivals))
        return runs, got

    runs, got = asyncio.run(main())
    assert len(got) == len(arrivals)  # everyone is answered
    for asked, (started, _) in got:
        assert started >= asked  # from a computation that started after it asked
    for (start, end), (then, _) in itertools.pairwise(runs):
        assert then >= end + gap * (end - start)  # paused after each, for gap x its length


def test_callers_that_ask_during_a_computation_share_the_next_one() -> None:
    async def main() -> tuple[int, list[int]]:
        count = [0]

        async def compute() -> int:
            count[0] += 1
            await asyncio.sleep(0.01)
            return count[0]

        spaced = Spaced(compute, 0.0)
        first = asyncio.ensure_future(spaced.get())
        await asyncio.sleep(0.002)  # the first computation is running
        rest = await asyncio.gather(*(spaced.get() for _ in range(20)))
        return await first, rest

    first, rest = asyncio.run(main())
    assert first == 1 and rest == [2] * 20  # twenty callers, one more computation


def test_the_pause_is_bounded_whatever_a_computation_cost() -> None:
    async def main() -> list[tuple[float, float]]:
        loop = asyncio.get_running_loop()
        runs: list[tuple[float, float]] = []

        async def compute() -> None:
            start = loop.time()
            await asyncio.sleep(0.05)  # "costs" 50 ms: an uncapped pause would be 450 ms
            runs.append((start, loop.time()))

        spaced: Spaced[None] = Spaced(compute, 9.0, max_gap=0.02, cost=loop.time)
        await spaced.get()
        await spaced.get()
        return runs

    (_, first_end), (second_start, _) = asyncio.run(main())
    assert 0.02 <= second_start - first_end + 1e-9 < 0.3  # the cap, not nine times the cost


def test_waiting_costs_nothing_by_default() -> None:
    async def main() -> float:  # a computation that only waits (a slow store, say)
        loop = asyncio.get_running_loop()

        async def compute() -> None:
            await asyncio.sleep(0.2)

        spaced: Spaced[None] = Spaced(compute)  # CPU time: ~0 spent
        await spaced.get()
        start = loop.time()
        await spaced.get()
        return loop.time() - start

    assert asyncio.run(main()) < 0.2 + 0.15  # the second waited for its own run, not 1.8 s
