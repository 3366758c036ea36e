"""A costly answer that anyone may ask for (`/metrics`, unauthenticated) must not let anyone
take the process: on a catalog of 5,000 documents one exposition costs ~100 ms of CPU
(every counter read from the store, two gauges per budget, ~600 KB of text), so one client
asking in a loop would leave nothing for the requests the gateway is for.

`Spaced` runs such a computation one at a time, each starting SHARE_GAP times the CPU time
the previous one took after it ended: it takes at most 1 / (1 + SHARE_GAP) of the process,
however many ask. CPU time, not wall time: a computation waiting on a slow store costs
nothing to wait for, and must not push the next one back; and the pause is at most
MAX_GAP, so a scraper's timeout (Prometheus: 10 s) is never reached by waiting alone. The
answer is never stale: a caller gets the result of a computation that started after it
asked; callers that ask meanwhile share the next one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
SHARE_GAP = 9.0  # pause after a computation, in multiples of its CPU time: <= 10% busy
MAX_GAP = 5.0  # seconds, at most


class Spaced(Generic[T]):
    """One per kind of computation and process."""

    def __init__(self, compute: Callable[[], Awaitable[T]], gap: float = SHARE_GAP,
                 max_gap: float = MAX_GAP,
                 cost: Callable[[], float] = time.process_time) -> None:  # fmt: skip
        self._compute = compute
        self._gap, self._max_gap, self._cost = gap, max_gap, cost
        self._lock = asyncio.Lock()  # FIFO: callers are served in the order they asked
        self._started = float("-inf")  # loop time the last result's computation started
        self._result: T | None = None
        self._next = float("-inf")  # loop time the next computation may start

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        asked = loop.time()
        async with self._lock:
            if self._result is not None and self._started >= asked:
                return self._result  # computed for someone who asked after us: fresh enough
            wait = self._next - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            started, spent = loop.time(), self._cost()
            result = await self._compute()
            pause = min(self._gap * (self._cost() - spent), self._max_gap)
            self._started, self._result = started, result
            self._next = loop.time() + pause
            return result
