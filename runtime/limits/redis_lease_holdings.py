"""The state of one store's budget leases and its upkeep: what the replica holds of each
budget window (Holding), and the maintenance that returns idle holdings and those of ended
windows, replays excess charges, renews leases (a thread, or the async admissions), and
returns everything at close. Apart from redis_lease.py, which takes from and adds to the
holdings as requests are admitted and settled (see its docstring for the scheme).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from runtime.limits.lua import LOW
from runtime.limits.redis_codec import UNREACHABLE, _maybe_ran, pack_numbers
from runtime.limits.redis_lease_lua import LEASE_RENEW, UNLEASE

if TYPE_CHECKING:
    from runtime.limits.redis_lease import _Chain
    from runtime.limits.redis_store import RedisStore

log = logging.getLogger("runtime.limits.redis")


class Holding:
    """What this replica holds of one budget window."""

    __slots__ = ("budget", "dead", "end_ns", "held", "hkey", "inflight", "key", "last",
                 "owed", "payback", "window")  # fmt: skip

    def __init__(self, budget: str, key: str, hkey: str, window: str, end_ns: int | None) -> None:
        self.budget = budget  # the budget's key, without its window
        self.key, self.hkey, self.window, self.end_ns = key, hkey, window, end_ns
        self.held = 0  # may still be admitted from
        self.inflight = 0  # admitted from it, not settled
        self.owed = 0  # excesses charged to Redis, not yet paid back by refunds
        self.payback = 0  # refunds paying an excess back: returned to Redis, never spent
        self.last = time.monotonic()
        self.dead = False  # its generation was lost


def _split(amount: int, usd: bool) -> tuple[int, int]:
    return divmod(amount, LOW) if usd else (amount, 0)


def _join(h: int, low: int, usd: bool) -> int:
    return h * LOW + low if usd else h


class LeaseHoldings:
    """The leasing state of one store: holdings per budget, guarded by one lock (the sync
    and async paths share it), and a maintenance thread for returns and renewals."""

    def __init__(self, store: RedisStore, block: float, ttl: float, idle: float,
                 refusal_ttl: float, replicas: int | None) -> None:  # fmt: skip
        if not 0 < block <= 1:
            raise ValueError("lease_block is a fraction of each budget's limit, in (0, 1]")
        if ttl <= 0 or idle <= 0 or refusal_ttl < 0:
            raise ValueError("lease_budget_ttl and lease_idle are positive")
        if replicas is not None and (type(replicas) is not int or replicas < 1):
            raise ValueError("lease_replicas is a number of replicas, 1 or more")
        self.store = store
        self.block, self.ttl, self.idle = block, ttl, idle
        self.refusal_ttl, self.replicas = refusal_ttl, replicas or 0
        self.rid = f"{socket.gethostname()[:40]}-{os.getpid()}-{os.urandom(4).hex()}"
        self.lock = threading.Lock()
        self.holdings: dict[str, Holding] = {}  # by budget key (without window)
        self.retired: list[Holding] = []  # windows that ended, or were replaced
        self.refused: dict[str, tuple[float, int]] = {}  # budget -> (until, room last seen)
        self.acquiring: dict[str, int] = {}  # budget -> acquisitions under way
        self.live: dict[str, None] = {}
        self.settled: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.excess: collections.deque[tuple[Holding, int, bool, int]] = collections.deque()
        self.chains: dict[int, _Chain] = {}
        self.calls = 0  # LEASE, UNLEASE and LEASE_RENEW calls made
        self.acquired = 0  # 1e-16 USD / tokens / requests granted, all budgets
        self.returned = 0
        self.charged = 0  # excesses charged beyond holdings
        self.forfeited = 0  # returns refused (the lease had expired) or lost in transit
        self.period = min(ttl / 3, idle / 2)
        self._next_renew = 0.0
        self._next_atick = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._tag_len = len(store.tag)

    def _retire(self, budget: str, h: Holding) -> None:
        if self.holdings.get(budget) is h:
            del self.holdings[budget]
        if not h.dead:
            self.retired.append(h)

    def unlease_call(
        self, items: list[tuple[Holding, int, bool, int]], leaving: bool = False
    ) -> tuple[list[str], list[Any]]:
        """UNLEASE for (holding, amount, usd, kind) items: kind 0 returns, 1 charges."""
        store = self.store
        numbers = [len(items), int(leaving)]
        keys = [store._marker, f"{store.tag}:lr"]
        for h, amount, usd, what in items:
            numbers += [what, *_split(amount, usd)]
            keys += [h.key, h.hkey]
        return keys, [pack_numbers(numbers), self.rid, store.generation]

    # -- maintenance: returns, renewals, excesses to replay -----------------------------
    def due_work(self, everything: bool = False) -> tuple[list[Any], list[Any], bool]:
        """Holdings to return (idle, of ended windows, or all when closing), excesses to
        replay, and whether renewal is due. Takes what is returned out of the holdings."""
        now = time.monotonic()
        now_ns = self.store.clock() + self.store._skew_ns
        returns: list[tuple[Holding, int, bool, int]] = []
        with self.lock:
            for budget, h in list(self.holdings.items()):
                if h.dead:
                    del self.holdings[budget]
                elif h.end_ns is not None and now_ns >= h.end_ns:
                    self._retire(budget, h)
            idle = [h for h in self.holdings.values() if now - h.last >= self.idle]
            for h in idle:  # idle and empty since the last round: forgotten, no renewals
                if h.held == h.payback == h.inflight == 0 and not everything:
                    del self.holdings[h.budget]
            for h in [*self.retired, *idle] if not everything else self._all():
                if h.held > 0 and (h.inflight == 0 or everything) and not h.dead:
                    returns.append((h, h.held, "|usd/" in h.key, 0))
                    h.held = 0
            for h in self._all():
                if h.payback > 0 and not h.dead:
                    returns.append((h, h.payback, "|usd/" in h.key, 2))
                    h.payback = 0
            self.retired = [h for h in self.retired if h.inflight > 0 and not h.dead]
            excess = list(self.excess)
            self.excess.clear()
            renew = now >= self._next_renew and bool(self.holdings or self.retired)
            if renew:
                self._next_renew = now + self.ttl / 3
        return returns, excess, renew

    def _all(self) -> list[Holding]:
        return [*self.holdings.values(), *self.retired]

    def returned_reply(self, items: list[Any], result: Any) -> None:
        if result == -1:
            self.drop()
            return
        with self.lock:
            for (_h, amount, _, what), done in zip(items, result, strict=True):
                if what == 1:
                    self.charged += amount
                elif int(done):
                    self.returned += amount
                else:
                    self.forfeited += amount

    def unreturned(self, items: list[Any], maybe_ran: bool) -> None:
        """A return or a charge that may not have reached Redis."""
        with self.lock:
            for h, amount, usd, what in items:
                if what == 1:
                    self.excess.append((h, amount, usd, what))  # charged later: never lost
                elif maybe_ran:
                    self.forfeited += amount  # may have been returned: never spend it twice
                elif what == 2:
                    h.payback += amount
                else:
                    h.held += amount

    def renew_call(self) -> tuple[list[str], list[Any], list[Holding]]:
        with self.lock:
            held = [h for h in self._all() if not h.dead]
        store = self.store
        keys = [store._marker, f"{store.tag}:lr", *(h.hkey for h in held)]
        return keys, [self.rid, store.generation, int(self.ttl * 1000)], held

    def renewed_reply(self, result: Any) -> None:
        if result == -1:
            self.drop()

    def drop(self) -> None:
        """The generation was lost: every holding belonged to lost counters."""
        with self.lock:
            for h in self._all():
                h.dead = True
                h.held = 0
            self.holdings.clear()
            self.retired.clear()
            self.refused.clear()
            self.excess.clear()

    def tick(self, everything: bool = False) -> None:
        """One round of maintenance over the sync client. Dropped tickets are settled first:
        a chain with budgets only makes no other call that would, and their holding would
        never be idle (a re-check: a dropped ticket kept a 1 USD block granted)."""
        if self.store._dropped:
            self.store._settle_dropped()
        returns, excess, renew = self.due_work(everything)
        for items in (returns, excess):
            if not items:
                continue
            try:
                self.calls += 1
                self.returned_reply(
                    items, self.store._eval(UNLEASE, *self.unlease_call(items, everything))
                )
            except UNREACHABLE as exc:
                self.unreturned(items, _maybe_ran(exc))
        if renew:
            keys, args, _ = self.renew_call()
            try:
                self.calls += 1
                self.renewed_reply(self.store._eval(LEASE_RENEW, keys, args))
            except UNREACHABLE:
                self._next_renew = 0.0  # try again next round

    async def atick(self, everything: bool = False) -> None:
        if self.store._dropped:
            await self.store._asettle_dropped()
        returns, excess, renew = self.due_work(everything)
        for items in (returns, excess):
            if not items:
                continue
            try:
                self.calls += 1
                call = self.unlease_call(items, everything)
                self.returned_reply(items, await self.store._aeval(UNLEASE, *call))
            except UNREACHABLE as exc:
                self.unreturned(items, _maybe_ran(exc))
        if renew:
            keys, args, _ = self.renew_call()
            try:
                self.calls += 1
                self.renewed_reply(await self.store._aeval(LEASE_RENEW, keys, args))
            except UNREACHABLE:
                self._next_renew = 0.0

    def _ensure_thread(self) -> None:
        """The maintenance thread, started at the first leased admission (stores built from
        a URL, or given a sync client; a store given only an async client maintains its
        leases from its async admissions instead)."""
        if self._thread is not None or not self.store._can_sync():
            return
        with self._thread_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="budget-leases",
                                                daemon=True)  # fmt: skip
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.tick()
            except Exception:  # never let the thread die: the next round tries again
                log.exception("budget leases: maintenance failed")

    def _adue(self) -> bool:
        """Stores without the thread (given only an async client) maintain their leases
        from their async admissions, at most every `period` seconds."""
        if self._thread is not None or time.monotonic() < self._next_atick:
            return False
        self._next_atick = time.monotonic() + self.period
        return True

    def close(self) -> None:
        """Return everything held and leave the registry of replicas."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.store._can_sync():
            try:
                self.tick(everything=True)
            except Exception:  # closing: what was not returned is forfeited at its ttl
                log.exception("budget leases: returning holdings at close failed")
        with self.lock:
            self.holdings.clear()
            self.retired.clear()

    async def aclose(self) -> None:
        """close() for an event loop: returns through the loop's async client."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        try:
            await self.atick(everything=True)
        except Exception:
            log.exception("budget leases: returning holdings at close failed")
        with self.lock:
            self.holdings.clear()
            self.retired.clear()

    def stats(self) -> dict[str, int]:
        with self.lock:
            held = sum(h.held for h in self._all())
            inflight = sum(h.inflight for h in self._all())
        return {"calls": self.calls, "acquired": self.acquired, "charged": self.charged,
                "returned": self.returned, "forfeited": self.forfeited, "held": held,
                "inflight": inflight}  # fmt: skip
