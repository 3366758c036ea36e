"""The Redis store's work between requests, on the running event loop (one task of each
kind per store, started when first needed, ended when nothing is left to do or at close):

- replaying settlements and voids queued while Redis was unreachable. Without it they waited
  for this process's next call: with no more traffic, budgets kept the reservations (a
  monthly budget all month) and concurrency stayed taken. Retries back off from
  `replay_first` to `replay_max` seconds; each replay is idempotent, so racing a request's
  own flush is harmless.
- renewing the concurrency leases of every request admitted and not yet settled, every
  third of their TTL, in one script call per RENEW_BATCH leases: a lease outlived by its
  request let a second one in past the limit. A process that dies stops renewing, so its
  leases still expire.

At close both stop; queued settlements get one last try of at most CLOSE_FLUSH_S seconds,
and the number dropped is logged. Without a running loop (sync callers), nothing runs in the
background: queued settlements wait for the next call, `flush()` or `close()`, and long
requests renew their leases with `renew()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from runtime.limits.lua import RENEW
from runtime.limits.redis_codec import MICRO, UNREACHABLE

if TYPE_CHECKING:
    from runtime.limits.redis_settle import RedisSettlement

log = logging.getLogger("runtime.limits.redis")

REPLAY_FIRST_S = 0.1  # the first retry of queued settlements; doubled after each failure
REPLAY_MAX_S = 5.0  # ... up to this
CLOSE_FLUSH_S = 2.0  # at close, the last try to replay what is queued
RENEW_BATCH = 1000  # leases renewed per script call (one short script, many in one trip)

Task = asyncio.Task[None]


class Upkeep:
    def __init__(self, store: RedisSettlement, lease_ttl_us: int) -> None:
        self.store = store
        self.lease_ttl_us = lease_ttl_us
        self.renew_every = lease_ttl_us / MICRO / 3
        self.replay_first = REPLAY_FIRST_S
        self.replay_max = REPLAY_MAX_S
        self.live: dict[str, tuple[str, ...]] = {}  # request id -> its lease keys
        self._lock = threading.Lock()  # sync callers may admit and settle from threads
        self._replay: Task | None = None
        self._renew: Task | None = None
        self.closed = False

    # -- what the store tells it ------------------------------------------------------------
    def admitted(self, request_id: str, lease_keys: tuple[str, ...]) -> None:
        if not lease_keys:
            return
        with self._lock:
            self.live[request_id] = lease_keys
        self._renew = self._started(self._renew, self._renewing)

    def settled(self, request_id: str) -> None:
        if self.live:
            with self._lock:
                self.live.pop(request_id, None)

    def queued(self) -> None:
        """A settlement or void was queued: replay it as soon as Redis answers."""
        self._replay = self._started(self._replay, self._replaying)

    def _started(
        self, task: Task | None, run: Callable[[], Coroutine[Any, Any, None]]
    ) -> Task | None:
        """`task` if it still runs (on this loop or another live one), else a new one on the
        running loop; None without a running loop."""
        if self.closed or (
            task is not None and not task.done() and not task.get_loop().is_closed()
        ):
            return task
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return loop.create_task(run())

    # -- the tasks --------------------------------------------------------------------------
    async def _replaying(self) -> None:
        delay = self.replay_first
        while self.store.pending:
            await asyncio.sleep(delay)
            try:
                await self.store._acheck_primary()
                await self.store._aflush()
            except UNREACHABLE:
                delay = min(delay * 2, self.replay_max)
            except Exception:  # never a busy loop, whatever failed
                log.exception("limits store: replaying queued settlements failed")
                delay = self.replay_max

    async def _renewing(self) -> None:
        while self.live:
            await asyncio.sleep(self.renew_every)
            try:
                if self.store._dropped:  # never renewed again, even with no admission to come
                    await self.store._asettle_dropped()
                await self.renew_all()
            except Exception:  # keep renewing the others' leases next round
                log.exception("limits store: renewing concurrency leases failed")

    async def renew_all(self) -> int:
        """Renew every live lease now; returns how many were renewed (held in Redis)."""
        with self._lock:
            pairs = [(key, rid) for rid, keys in self.live.items() for key in keys]
        renewed = 0
        for start in range(0, len(pairs), RENEW_BATCH):
            batch = pairs[start : start + RENEW_BATCH]
            args = [self.lease_ttl_us, *(rid for _, rid in batch)]
            try:
                renewed += int(await self.store._aeval(RENEW, [k for k, _ in batch], args))
            except UNREACHABLE:  # the next round tries again, well within the TTL
                break
        return renewed

    # -- close ------------------------------------------------------------------------------
    def _stop(self) -> list[Task]:
        """Cancel both tasks; those of the running loop are returned, to be awaited."""
        self.closed = True
        with self._lock:
            self.live.clear()
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        ours = []
        for task in (self._replay, self._renew):
            if task is None or task.done() or task.get_loop().is_closed():
                continue
            if task.get_loop() is here:
                task.cancel()
                ours.append(task)
            else:
                task.get_loop().call_soon_threadsafe(task.cancel)
        return ours

    async def aclose(self) -> None:
        ours = self._stop()
        if ours:
            await asyncio.wait(ours)
        with contextlib.suppress(TimeoutError, *UNREACHABLE):
            await asyncio.wait_for(self.store._aflush(), CLOSE_FLUSH_S)
        self._dropped()

    def close(self) -> None:
        self._stop()
        if self.store.pending and self.store._can_sync():
            with contextlib.suppress(*UNREACHABLE):
                self.store._flush()
        self._dropped()

    def _dropped(self) -> None:
        with self.store._pending_lock:
            dropped = len(self.store._pending)
            self.store._pending.clear()
        if dropped:
            log.error("limits store namespace %r: closed with %d queued settlement(s) Redis "
                      "never took: their reservations stay charged, their leases expire "
                      "within %d s", self.store.namespace, dropped,
                      self.lease_ttl_us // MICRO)  # fmt: skip
