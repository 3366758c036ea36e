"""The Redis store: many router replicas, one truth. One Lua script per admission checks
and charges every counter of the chain atomically (see lua.py for the arithmetic).

- All keys of a store share one hash tag, `{<namespace>}`, so every chain's keys are in one
  slot and the scripts run on Redis Cluster. (Chains share counters, so one slot it is.)
- Time is the server's: GCRA buckets, lease expiry and budget windows come from `TIME`
  inside the scripts. The client's clock is only a guess at each budget's window (`…|2026-11`,
  `…|2026-W48`); the script corrects a wrong guess, and the store learns the offset, so a
  client whose clock is off by days or months neither writes keys of the wrong window (that
  would expire at once and reset the budget) nor admits past a budget. Budget keys expire a
  day after their window ends: no reset job. Settlement charges the windows admission used.
- Lost counters are never silently reset. At first use the store joins the namespace's
  generation (a marker key, created when there is none) and every admission checks it; a
  registry of counter keys tells a key that vanished from one never created. FLUSHALL or
  FLUSHDB, a failover to an empty replica, an eviction or a DEL is detected, reported to
  `on_loss` (and counted in `losses`, and logged), and then: fail-closed raises
  StoreUnavailable until `recover()` accepts the loss (or the process restarts); fail-open
  admits and counts afresh. A settlement whose counters were lost corrects nothing, never
  drives a budget below zero, and still releases its leases.
- At first use the store also reads the server's `maxmemory-policy` (CONFIG GET, or INFO
  where CONFIG is disabled, as on managed services) and refuses anything but `noeviction`,
  since budget keys carry TTLs and volatile-* policies evict them too. With
  `eviction_policy="warn"` it logs a warning instead; an unreadable policy counts as unsafe.
- Concurrency is a sorted set of leases with a TTL (`lease_ttl`); the store renews the
  leases of requests it admitted on an event loop until they are settled (redis_upkeep.py),
  so a lease outlives no request and a dead process's leases expire.
- Request ids are single-use (see base.py): admitting a live id, or one settled less than
  `settled_ttl` seconds ago, raises InvalidRequest (409) and charges nothing. Settlement is
  idempotent per request id. A settlement that cannot reach Redis is queued and replayed
  in the background once Redis answers again, with no more traffic needed (redis_upkeep.py);
  at close it gets a last try of 2 s, and what Redis still did not take is logged.
- When Redis is unreachable or refuses (out of memory under noeviction, a read-only replica
  after a failover): fail-closed (default) raises StoreUnavailable (503); fail-open admits,
  counts the bypass and reports it to `on_bypass`.
- Topologies (redis_topology.py): one server, Redis Cluster, Sentinel, or clients passed in.
  Redirects are followed by the client; every other topology change (a failover, READONLY
  from a demoted primary, a reset connection, a cluster still electing) is unavailability as
  above, and the next call reconnects through the topology. With Sentinel the store also
  asks the sentinels for the primary at most every PRIMARY_CHECK_S, so it stops writing to a
  replaced primary that has not been demoted yet. See docs/redis.md for what a failover loses.
- An admission whose reply was lost (a timeout or reset after the script was sent) may have
  run: the store queues a void for it, replayed like a settlement, which refunds and releases
  its leases only if that very admission ran (each admission carries a nonce). A client
  library that resends the script gets "admitted" from the nonce, never a 409.
- `replicas=N`: after each admission, WAIT until N replicas acknowledged it (redis_acked.py).
  Not acknowledged within `replica_timeout`: fail-closed voids it and raises
  StoreUnavailable; fail-open keeps it and counts it in `unreplicated`.

RedisStore is built in three layers: redis_connection.py (clients, scripts, the generation,
failovers, close) <- redis_settle.py (keys, settlement and its replay queue, reads) <- this
module (the constructor and admission). Budget leasing: redis_lease*.py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from runtime.bundle.errors import StoreUnavailable
from runtime.bundle.loops import PerLoop
from runtime.limits import redis_lease, redis_lease_admit
from runtime.limits.base import Reservation, budget_refusal, lease_refusal, reused_id
from runtime.limits.lua import ADMIT, LOW
from runtime.limits.redis_acked import aacked, acked
from runtime.limits.redis_codec import (
    BYPASS,
    GENERATION_LOST,
    MICRO,
    UNREACHABLE,
    _maybe_ran,
    _Plan,
    _rate_refusal,
    _text,
    split_money,
)
from runtime.limits.redis_connection import PRIMARY_CHECK_S, RedisConnection, _describe
from runtime.limits.redis_pipe import Pipe, pipe_address
from runtime.limits.redis_settle import MAX_VOIDS, RedisSettlement, _Pending
from runtime.limits.redis_topology import AsyncClient, Client, Topology, parse, safe_url
from runtime.limits.redis_upkeep import Upkeep
from runtime.limits.spec import ChainSpec

# what this module held before its split (redis_connection.py, redis_settle.py): importable here
__all__ = [
    "BYPASS",
    "DEFAULT_URL",
    "EVICTION_POLICIES",
    "MAX_VOIDS",
    "PRIMARY_CHECK_S",
    "RedisConnection",
    "RedisSettlement",
    "RedisStore",
    "split_money",
]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
ADMISSION_TTL = 7 * 86_400  # s: an admitted request's state, until it is settled
EVICTION_POLICIES = ("refuse", "warn")


class RedisStore(RedisSettlement):
    def __init__(
        self,
        url: str | None = None,
        *,
        client: Client | None = None,
        async_client: AsyncClient | None = None,
        namespace: str = "catalog",
        fail_open: bool = False,
        timeout: float = 0.5,
        lease_ttl: float = 300.0,
        settled_ttl: int = 2 * 86_400,
        max_connections: int = 64,
        on_bypass: Callable[[str, BaseException], None] | None = None,
        on_loss: Callable[[StoreUnavailable], None] | None = None,
        eviction_policy: str = "refuse",
        replicas: int = 0,
        replica_timeout: float = 0.1,
        lease_budgets: bool = False,
        lease_block: float = 0.001,
        lease_budget_ttl: float = 30.0,
        lease_idle: float = 5.0,
        lease_refusal_ttl: float = 1.0,
        lease_replicas: int | None = None,
    ) -> None:
        """`url`: see redis_topology.py (plain, TLS, unix socket, cluster, Sentinel); or pass
        ready clients (`client=` for the sync methods, `async_client=` for the async ones).
        `replicas`: WAIT for that many replicas to acknowledge each admission (strict).
        `lease_budgets`: admit budgets locally within blocks leased from Redis (see
        redis_lease.py and docs/scaling.md); the `lease_*` options tune it."""
        if eviction_policy not in EVICTION_POLICIES:
            raise ValueError(f"eviction_policy is one of {EVICTION_POLICIES}")
        if type(replicas) is not int or replicas < 0:
            raise ValueError("replicas is a number of replicas, 0 or more")
        if not 0 < replica_timeout < timeout:
            raise ValueError("replica_timeout is positive and below timeout")
        given = client is not None or async_client is not None
        if given and url is not None:
            raise ValueError("pass a URL or clients, not both")
        self.topology: Topology | None = None if given else parse(url or DEFAULT_URL)
        self.url = url or DEFAULT_URL if not given else _describe(client or async_client)
        self.replicas = replicas
        self._wait_ms = max(1, int(replica_timeout * 1000))
        self.unreplicated = 0  # fail-open admissions no replica acknowledged in time
        self.namespace = namespace
        self.tag = "{" + namespace + "}"
        self.fail_open = fail_open
        self.lease_ttl_us = int(lease_ttl * MICRO)
        self.settled_ttl = settled_ttl
        self.on_bypass = on_bypass
        self.on_loss = on_loss
        self.eviction_policy = eviction_policy
        self.bypassed = 0
        self.losses = 0  # distinct losses of counters detected (each reported once)
        self.generation: str | None = None  # joined at first use
        self.clock: Callable[[], int] = time.time_ns  # a hint for windows; Redis decides
        self._skew_ns = 0  # server clock minus ours, learned when a window guess was wrong
        self._reported: set[str] = set()
        self._marker = f"{self.tag}:g"
        self._registry = f"{self.tag}:w"
        self._timeout = timeout
        self._max_connections = max_connections
        self._client: Client | None = client
        self._client_lock = threading.Lock()
        self._given_async = async_client
        self._aclients: PerLoop[AsyncClient] = PerLoop()  # an asyncio pool cannot cross loops
        self._apipes: PerLoop[Pipe] = PerLoop()  # likewise (redis_pipe.py)
        single = self.topology if self.topology and self.topology.kind == "single" else None
        self._pipe_address = pipe_address(single.options) if single else None
        self._anodes: PerLoop[dict[str, aioredis.Redis]] = PerLoop()  # strict mode, cluster nodes
        # settlements to replay, and voids (the nonce of an admission whose reply was lost)
        self._pending: collections.deque[_Pending] = collections.deque()
        self._pending_lock = threading.Lock()
        self._dropped: collections.deque[Reservation] = collections.deque()  # base.py: dropped
        self._plans: dict[int, _Plan] = {}
        self._upkeep = Upkeep(self, self.lease_ttl_us)  # replays the queue, renews leases
        self._next_primary_check = 0.0
        self.budget_leases: redis_lease.Leases | None = None
        if lease_budgets:  # budget leasing (redis_lease.py); off: nothing below changes
            self.budget_leases = redis_lease.Leases(self, lease_block, lease_budget_ttl, lease_idle,
                                        lease_refusal_ttl, lease_replicas)  # fmt: skip

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        return cls(url, **options)

    # -- admission ------------------------------------------------------------------------
    def _call(
        self, plan: _Plan, request_id: str, tokens: int, cost: int, nonce: str
    ) -> tuple[list[str], list[Any]]:
        tag = self.tag
        keys = [*plan.key_list, f"{tag}:s:{request_id}", self._marker, self._registry]
        # an admission's state outlives any request (a settlement that finds none charges
        # the usage: a failover lost the admission), whatever `settled_ttl` remembers
        ttl = max(self.settled_ttl, ADMISSION_TTL)
        args = [plan.pack(tokens, cost), request_id, self.generation, ttl, nonce]
        return keys, args

    def _refusal(self, spec: ChainSpec, tokens: int, result: list[Any]) -> Exception:
        kind, index = int(result[0]), int(result[1]) - 1
        if kind == 1:
            return _rate_refusal(spec.buckets[index], tokens, result)
        if kind == 2:
            g = spec.budgets[index]
            spent = int(result[2]) * (LOW if g.unit == "usd" else 1) + int(result[3])
            return budget_refusal(g, spent)
        return lease_refusal(spec.leases[index])

    def admit(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation:
        if self._dropped:  # first: a leased chain's dropped tickets are settled here too
            self._settle_dropped()
        if spec.empty:
            return Reservation(request_id, spec, tokens, cost, (), ())
        if self.budget_leases is not None and spec.budgets:
            return redis_lease_admit.admit(self.budget_leases, request_id, spec, tokens, cost)
        plan = self.plan(spec, self._day())
        nonce = ""
        try:
            self._check_primary()
            if self.generation is None:
                self._start()
            if self._pending:
                self._flush()
            for attempt in range(2):
                nonce = secrets.token_hex(6)
                keys, args = self._call(plan, request_id, tokens, cost, nonce)
                if self.replicas:
                    result, count = acked(self.client, ADMIT, keys, args, self.replicas,
                                          self._wait_ms)  # fmt: skip
                else:
                    result, count = self._eval(ADMIT, keys, args), 0
                reservation = self._outcome(plan, request_id, tokens, cost, result)
                if reservation is not None:
                    return self._held(plan, self._replicated(reservation, count, nonce))
                nonce = ""
                if attempt == 0:
                    self._recover()  # fail-open after a loss: count afresh
        except UNREACHABLE as exc:
            self._drop_demoted(exc)
            unsent = Reservation(request_id, spec, tokens, cost, (), ())
            if nonce and _maybe_ran(exc):
                self._void(Reservation(request_id, spec, tokens, cost, plan.windows, plan.ends,
                                       (), self.generation), nonce)  # fmt: skip
            return self._unreachable(unsent, exc)
        return self._bypass(request_id, spec, tokens, cost)

    async def aadmit(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation:
        if self._dropped:
            await self._asettle_dropped()
        if spec.empty:
            return Reservation(request_id, spec, tokens, cost, (), ())
        if self.budget_leases is not None and spec.budgets:
            return await redis_lease_admit.aadmit(
                self.budget_leases, request_id, spec, tokens, cost
            )
        plan = self.plan(spec, self._day())
        nonce = ""
        try:
            await self._acheck_primary()
            if self.generation is None:
                await self._astart()
            if self._pending:
                await self._aflush()
            for attempt in range(2):
                nonce = secrets.token_hex(6)
                keys, args = self._call(plan, request_id, tokens, cost, nonce)
                if self.replicas:
                    nodes = self._anodes.get(asyncio.get_running_loop(), dict)
                    result, count = await aacked(self.async_client(), ADMIT, keys, args,
                                                 self.replicas, self._wait_ms, nodes)  # fmt: skip
                else:
                    result, count = await self._aeval(ADMIT, keys, args), 0
                reservation = self._outcome(plan, request_id, tokens, cost, result)
                if reservation is not None:
                    return self._held(plan, await self._areplicated(reservation, count, nonce))
                nonce = ""
                if attempt == 0:
                    await self._arecover()
        except UNREACHABLE as exc:
            await self._adrop_demoted(exc)
            if nonce and _maybe_ran(exc):
                self._void(Reservation(request_id, spec, tokens, cost, plan.windows, plan.ends,
                                       (), self.generation), nonce)  # fmt: skip
            return self._unreachable(Reservation(request_id, spec, tokens, cost, (), ()), exc)
        return self._bypass(request_id, spec, tokens, cost)

    def _outcome(
        self, plan: _Plan, request_id: str, tokens: int, cost: int, result: Any
    ) -> Reservation | None:
        """The reservation an admission's reply grants, or the refusal it raises; None when
        a fail-open store must join a new generation and try again."""
        if result == 0:  # admitted, nothing to report: the common reply
            return Reservation(request_id, plan.spec, tokens, cost, plan.windows, plan.ends,
                               (), self.generation)  # fmt: skip
        code = int(result[0])
        if code == 0:
            return self._granted(plan, request_id, tokens, cost, result)
        if code == 4:
            if result[1] == b"generation":
                error = self._lost(GENERATION_LOST)
                if self.fail_open:
                    return None
                raise error
            raise self._lost(f"the counter `{_text(result[2])}` vanished before its window ended")
        if code == 5:
            raise reused_id(request_id, result[1] == b"s")
        if code == 6:  # resent by the client library after a lost reply: admitted once
            return Reservation(request_id, plan.spec, tokens, cost, plan.windows, plan.ends,
                               (), self.generation)  # fmt: skip
        raise self._refusal(plan.spec, tokens, result)

    def _granted(
        self, plan: _Plan, request_id: str, tokens: int, cost: int, result: list[Any]
    ) -> Reservation:
        windows, ends = plan.windows, plan.ends
        corrected = result[2]
        if corrected:  # the server's clock put some budget in another window than ours
            fixed_windows, fixed_ends = list(windows), list(ends)
            for at in range(0, len(corrected), 3):
                j = int(corrected[at]) - 1
                fixed_windows[j] = _text(corrected[at + 1])
                fixed_ends[j] = int(corrected[at + 2]) * 10**9
            windows, ends = tuple(fixed_windows), tuple(fixed_ends)
            self._skew_ns = int(result[4]) * 10**9 - self.clock()
        for key in result[3]:  # fail-open: vanished keys were created afresh
            self._lost(f"the counter `{_text(key)}` vanished before its window ended")
        crossed = tuple(plan.spec.budgets[int(j) - 1] for j in result[1])
        return Reservation(request_id, plan.spec, tokens, cost, windows, ends, crossed,
                           self.generation)  # fmt: skip

    def _held(self, plan: _Plan, reservation: Reservation) -> Reservation:
        """An admission's leases, renewed until it is settled (redis_upkeep.py)."""
        if n := len(plan.spec.leases):
            self._upkeep.admitted(reservation.request_id, tuple(plan.key_list[-n:]))
        return reservation

    def _replicated(self, reservation: Reservation, count: int, nonce: str) -> Reservation:
        """Strict mode: an admission fewer than `replicas` acknowledged may be lost in a
        failover. Fail-closed voids it and refuses; fail-open keeps it, counted."""
        if count >= self.replicas:
            return reservation
        if self.fail_open:
            self.unreplicated += 1
            return reservation
        self._void(reservation, nonce)
        with contextlib.suppress(*UNREACHABLE):  # else replayed with the next call
            self._flush()
        raise self._not_acknowledged(count)

    async def _areplicated(self, reservation: Reservation, count: int, nonce: str) -> Reservation:
        if count >= self.replicas:
            return reservation
        if self.fail_open:
            self.unreplicated += 1
            return reservation
        self._void(reservation, nonce)
        with contextlib.suppress(*UNREACHABLE):
            await self._aflush()
        raise self._not_acknowledged(count)

    def _not_acknowledged(self, count: int) -> StoreUnavailable:
        return StoreUnavailable(
            f"the limits store at {safe_url(self.url)} is unavailable: {count} of "
            f"{self.replicas} replica(s) acknowledged the admission within {self._wait_ms} ms"
        )

    def _unreachable(self, reservation: Reservation, exc: BaseException) -> Reservation:
        if not self.fail_open:
            raise self._unavailable(exc) from None
        self.bypassed += 1
        if self.on_bypass is not None:
            self.on_bypass(reservation.request_id, exc)
        return reservation._replace(prepared=BYPASS)

    def _bypass(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation:
        """Fail-open, the generation changed twice in a row: admit uncounted, reported."""
        error = StoreUnavailable("the limits store's generation keeps changing")
        return self._unreachable(Reservation(request_id, spec, tokens, cost, (), ()), error)
