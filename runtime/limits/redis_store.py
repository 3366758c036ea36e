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
- Concurrency is a sorted set of leases with a TTL; long (streaming) requests `renew` theirs.
- Request ids are single-use (see base.py): admitting a live id, or one settled less than
  `settled_ttl` seconds ago, raises InvalidRequest (409) and charges nothing. Settlement is
  idempotent per request id. A settlement that cannot reach Redis is queued and replayed
  once Redis answers again; nothing is lost.
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
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.asyncio.sentinel as aiosentinel
import redis.cluster
import redis.sentinel

from runtime.errors import StoreUnavailable
from runtime.limits import redis_lease
from runtime.limits.base import (
    Reservation,
    Snapshot,
    Store,
    budget_refusal,
    lease_refusal,
    reused_id,
)
from runtime.limits.lua import ADMIT, LOW, RECOVER, RENEW, SETTLE, START
from runtime.limits.redis_acked import aacked, acked, sha1
from runtime.limits.redis_codec import (
    BYPASS,
    EPOCH_S,
    GENERATION_LOST,
    MICRO,
    PAIR,
    UNREACHABLE,
    _bucket_free,
    _budget_held,
    _Keys,
    _maybe_ran,
    _Plan,
    _rate_refusal,
    _text,
    budget_key,
    pack_numbers,
    split_money,
    split_units,
)
from runtime.limits.redis_topology import AsyncClient, Client, Topology, parse, safe_url
from runtime.limits.redis_topology import async_client as build_async
from runtime.limits.redis_topology import sync_client as build_sync
from runtime.limits.spec import Bucket, BudgetSpec, ChainSpec, LeaseSpec
from runtime.periods import NS_PER_DAY

DEFAULT_URL = "redis://127.0.0.1:6379/0"
PRIMARY_CHECK_S = 0.25  # Sentinel: how often the store asks which server is the primary
MAX_VOIDS = 100_000  # queued voids beyond this are dropped (their leases expire by TTL)
EVICTION_POLICIES = ("refuse", "warn")
log = logging.getLogger("runtime.limits.redis")


class RedisStore(Store):
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
        self._aclients: dict[int, AsyncClient] = {}  # one per event loop
        self._anodes: dict[int, dict[str, aioredis.Redis]] = {}  # strict mode, cluster nodes
        # settlements to replay, and voids (the nonce of an admission whose reply was lost)
        self._pending: collections.deque[_Pending] = collections.deque()
        self._pending_lock = threading.Lock()
        self._plans: dict[int, _Plan] = {}
        self._next_primary_check = 0.0
        self.budget_leases: redis_lease.Leases | None = None
        if lease_budgets:  # budget leasing (redis_lease.py); off: nothing below changes
            self.budget_leases = redis_lease.Leases(self, lease_block, lease_budget_ttl, lease_idle,
                                        lease_refusal_ttl, lease_replicas)  # fmt: skip

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        return cls(url, **options)

    @property
    def client(self) -> Client:
        """The sync client, built at first use (a cluster client connects when built)."""
        found = self._client
        if found is None:
            if self.topology is None:
                raise TypeError("this store was given only an async_client: use its async "
                                "methods (aadmit, asettle, astart)")  # fmt: skip
            with self._client_lock:
                if self._client is None:
                    self._client = build_sync(self.topology, self._timeout, self._max_connections)
                found = self._client
        return found

    def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA, loading the script after a SCRIPT FLUSH or on a node that lacks it."""
        client: Any = self.client
        try:
            return client.evalsha(sha1(script), len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            client.script_load(script)
            return client.evalsha(sha1(script), len(keys), *keys, *args)

    async def _aeval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        client: Any = self.async_client()
        try:
            return await client.evalsha(sha1(script), len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await client.script_load(script)
            return await client.evalsha(sha1(script), len(keys), *keys, *args)

    # -- start: the server's eviction policy, the namespace's generation ------------------
    def start(self) -> str:
        """Check the server and join the generation of counters; runs at first use.
        StoreUnavailable if Redis cannot be reached or may evict counters."""
        try:
            return self._start()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    async def astart(self) -> str:
        try:
            return await self._astart()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    def _start(self) -> str:
        self._judge_policy(_read_policy(self.client, self._marker))
        return self._joined(self._eval(START, [self._marker], [_new_generation()]))

    async def _astart(self) -> str:
        self._judge_policy(await _aread_policy(self.async_client(), self._marker))
        return self._joined(await self._aeval(START, [self._marker], [_new_generation()]))

    def _unavailable(self, exc: BaseException, what: str = "is unavailable") -> StoreUnavailable:
        return StoreUnavailable(f"the limits store at {safe_url(self.url)} {what}: {exc}")

    def _judge_policy(self, policy: str | None) -> None:
        if policy == "noeviction":
            return
        if policy is None:
            problem = ("cannot tell whether it may evict counters: CONFIG GET and INFO are "
                       "refused; make sure its maxmemory-policy is noeviction")  # fmt: skip
        else:
            problem = (f"may evict counters: its maxmemory-policy is {policy} (budget keys "
                       "carry TTLs, so volatile-* policies evict them too); set it to "
                       "noeviction")  # fmt: skip
        message = f"the limits store at {safe_url(self.url)} {problem}"
        if self.eviction_policy == "refuse":
            raise StoreUnavailable(f"{message}, or pass eviction_policy='warn'")
        log.warning("%s (eviction_policy='warn')", message)

    def _joined(self, reply: list[Any]) -> str:
        created, generation = int(reply[0]), _text(reply[1])
        if created:
            log.warning("limits store namespace %r: started a new generation of counters "
                        "(a new namespace, or its counters were lost)", self.namespace)  # fmt: skip
        self.generation = generation
        return generation

    def recover(self) -> str:
        """Accept lost counters: adopt the namespace's current generation (or start one)
        and let vanished keys count afresh. Fail-closed stores refuse admissions until then."""
        try:
            return self._recover()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    async def arecover(self) -> str:
        try:
            return await self._arecover()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    def _recover(self) -> str:
        reply = self._eval(RECOVER, [self._marker, self._registry], [_new_generation()])
        return self._recovered(reply)

    async def _arecover(self) -> str:
        reply = await self._aeval(RECOVER, [self._marker, self._registry], [_new_generation()])
        return self._recovered(reply)

    def _recovered(self, reply: list[Any]) -> str:
        self.generation = _text(reply[0])
        self._reported.clear()
        log.warning("limits store namespace %r: lost counters accepted; %d vanished keys "
                    "count afresh", self.namespace, int(reply[1]))  # fmt: skip
        return self.generation

    def _lost(self, what: str) -> StoreUnavailable:
        """Report a loss once (on_loss, log, `losses`) and return the error that says it."""
        policy = ("admitting and counting afresh (fail-open)" if self.fail_open else
                  "refusing admissions that need them until store.recover() accepts the "
                  "loss")  # fmt: skip
        error = StoreUnavailable(
            f"the limits store at {safe_url(self.url)} lost counters of namespace "
            f"{self.namespace!r}: {what}; {policy}"
        )
        if what not in self._reported:
            if len(self._reported) < 10_000:
                self._reported.add(what)
            self.losses += 1
            log.error("%s", error)
            if self.on_loss is not None:
                self.on_loss(error)
        return error

    # -- keys and arguments ---------------------------------------------------------------
    def plan(self, spec: ChainSpec, day: int) -> _Plan:
        """Keys and the constant part of the arguments, per chain and UTC day (cached)."""
        found = self._plans.get(id(spec))
        if found is None or found.spec is not spec or found.day != day:
            found = _Plan(spec, day, self.tag, self.lease_ttl_us, self.fail_open)
            self._plans[id(spec)] = found
        return found

    def _day(self) -> int:
        return (self.clock() + self._skew_ns) // NS_PER_DAY

    def keys(self, spec: ChainSpec, windows: tuple[str, ...]) -> _Keys:
        """Keys for a reservation's own windows (settlement may cross midnight)."""
        tag = self.tag
        return _Keys(
            tuple(f"{tag}:r:{b.key}" for b in spec.buckets),
            tuple(budget_key(tag, g, w) for g, w in zip(spec.budgets, windows, strict=True)),
            tuple(f"{tag}:c:{lease.key}" for lease in spec.leases),
            tuple(i for i, b in enumerate(spec.buckets) if b.unit == "tokens"),
        )

    def _call(
        self, plan: _Plan, request_id: str, tokens: int, cost: int, nonce: str
    ) -> tuple[list[str], list[Any]]:
        tag = self.tag
        keys = [*plan.key_list, f"{tag}:s:{request_id}", self._marker, self._registry]
        args = [plan.pack(tokens, cost), request_id, self.generation, self.settled_ttl, nonce]
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

    # -- admission ------------------------------------------------------------------------
    def admit(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation:
        if spec.empty:
            return Reservation(request_id, spec, tokens, cost, (), ())
        if self.budget_leases is not None and spec.budgets:
            return redis_lease.admit(self.budget_leases, request_id, spec, tokens, cost)
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
                    return self._replicated(reservation, count, nonce)
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
        if spec.empty:
            return Reservation(request_id, spec, tokens, cost, (), ())
        if self.budget_leases is not None and spec.budgets:
            return await redis_lease.aadmit(self.budget_leases, request_id, spec, tokens, cost)
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
                    loop = id(asyncio.get_running_loop())
                    result, count = await aacked(
                        self.async_client(), ADMIT, keys, args, self.replicas,
                        self._wait_ms, self._anodes.setdefault(loop, {}),
                    )  # fmt: skip
                else:
                    result, count = await self._aeval(ADMIT, keys, args), 0
                reservation = self._outcome(plan, request_id, tokens, cost, result)
                if reservation is not None:
                    return await self._areplicated(reservation, count, nonce)
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

    def _void(self, reservation: Reservation, nonce: str) -> None:
        """Queue the undoing of an admission that may have run (its reply was lost, or no
        replica acknowledged it): refunded and its leases released only if it ran."""
        with self._pending_lock:
            if len(self._pending) < MAX_VOIDS:
                self._pending.append(_Pending(reservation, 0, 0, nonce))

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

    # -- settlement -----------------------------------------------------------------------
    def _settle_call(
        self, reservation: Reservation, tokens: int, cost: int, nonce: str = ""
    ) -> tuple[list[str], list[Any]]:
        """The settlement's keys and arguments; with a nonce, the void of that admission
        (everything it charged refunded, requests included)."""
        spec = reservation.spec
        keys = self.keys(spec, reservation.windows)
        extra = tokens - reservation.tokens
        bucket_keys, bucket_args = [], []
        if extra:
            for i in keys.token_buckets:
                b = spec.buckets[i]
                per_us = b.per_ns // 1000
                # a charge past one more full bucket is capped in the script: keep it exact
                units = min(abs(extra), 2 * b.burst + 1)
                dq, dr = split_units(units, per_us, b.limit)
                bucket_keys.append(keys.buckets[i])
                bucket_args += [1 if extra > 0 else -1, dq, dr, b.limit,
                                2 * split_units(b.burst, per_us, b.limit)[0]]  # fmt: skip
        budget_args: list[Any] = []
        for g in spec.budgets:
            used = 0 if nonce else g.amount(tokens, cost)
            delta = used - g.amount(reservation.tokens, reservation.cost)
            budget_args += list(split_money(delta, g.unit == "usd"))
            reserved = g.amount(reservation.tokens, reservation.cost)
            budget_args += list(split_money(reserved, g.unit == "usd"))  # no longer held
        state = f"{self.tag}:s:{reservation.request_id}"
        numbers = [len(bucket_keys), len(keys.budgets), len(keys.leases), 0, 0,
                   *bucket_args, *budget_args]  # fmt: skip
        generation = reservation.prepared if isinstance(reservation.prepared, str) else ""
        args = [pack_numbers(numbers), reservation.request_id, generation, self.settled_ttl]
        if nonce:
            args.append(nonce)
        keys_list = [state, self._marker, self._registry, *bucket_keys, *keys.budgets,
                     *keys.leases]  # fmt: skip
        return keys_list, args

    def _settled(self, result: Any) -> bool:
        code = result if isinstance(result, int) else int(result[0])
        if code == 2:
            self._lost("a settlement found the generation it was admitted in gone (its "
                       "counters were lost; nothing corrected)")  # fmt: skip
        elif not isinstance(result, int):
            for key in result[1]:
                self._lost(f"settlement found the counter `{_text(key)}` missing")
        return code != 0

    def settle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        if self.budget_leases is not None and redis_lease.owns(reservation):
            return redis_lease.settle(self.budget_leases, reservation, tokens, cost)
        if reservation.prepared == BYPASS or reservation.spec.empty:
            return False
        keys, args = self._settle_call(reservation, tokens, cost)
        try:
            self._check_primary()
            if self._pending:
                self._flush()
            return self._settled(self._eval(SETTLE, keys, args))
        except UNREACHABLE:
            with self._pending_lock:
                self._pending.append(_Pending(reservation, tokens, cost, ""))
            return True  # queued: replayed, once, when Redis answers again

    async def asettle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        if self.budget_leases is not None and redis_lease.owns(reservation):
            return await redis_lease.asettle(self.budget_leases, reservation, tokens, cost)
        if reservation.prepared == BYPASS or reservation.spec.empty:
            return False
        keys, args = self._settle_call(reservation, tokens, cost)
        try:
            await self._acheck_primary()
            if self._pending:
                await self._aflush()
            return self._settled(await self._aeval(SETTLE, keys, args))
        except UNREACHABLE:
            with self._pending_lock:
                self._pending.append(_Pending(reservation, tokens, cost, ""))
            return True

    def flush(self) -> int:
        """Replay queued settlements and voids (each is idempotent); returns how many went
        through. StoreUnavailable while Redis is away (they stay queued)."""
        try:
            return self._flush()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    async def aflush(self) -> int:
        try:
            return await self._aflush()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    def _flush(self) -> int:
        done = 0
        while (item := self._next_pending()) is not None:
            self._settled(self._eval(SETTLE, *self._settle_call(*item)))  # raises while away
            done += self._done(item)
        return done

    async def _aflush(self) -> int:
        done = 0
        while (item := self._next_pending()) is not None:
            self._settled(await self._aeval(SETTLE, *self._settle_call(*item)))
            done += self._done(item)
        return done

    def _next_pending(self) -> _Pending | None:
        with self._pending_lock:
            return self._pending[0] if self._pending else None

    def _done(self, item: _Pending) -> int:
        with self._pending_lock:
            if self._pending and self._pending[0] is item:
                self._pending.popleft()
        return 1

    def spent(self, budget_key: str, window_key: str) -> int:
        """What a budget window holds (units of 1e-16 USD for usd), like MemoryStore.spent."""
        usd = "|budget|usd/" in budget_key  # keys read "<counter>|budget|<unit>/<period>"
        try:
            value = self.client.get(f"{self.tag}:{'bu' if usd else 'b'}:{budget_key}|{window_key}")
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        if value is None:
            return 0
        assert isinstance(value, bytes), "the store's client must not decode responses"
        high, low = PAIR.unpack_from(value)  # see lua.py: little-endian doubles, exact
        return int(high) * (LOW if usd else 1) + int(low)

    def claim(self, key: str, ttl_s: int) -> bool:
        try:
            return bool(self.client.set(f"{self.tag}:o:{key}", b"1", nx=True, ex=ttl_s))
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    async def aclaim(self, key: str, ttl_s: int) -> bool:
        try:
            found = await self.async_client().set(f"{self.tag}:o:{key}", b"1", nx=True, ex=ttl_s)
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        return bool(found)

    def snapshot(
        self,
        budgets: Sequence[tuple[BudgetSpec, str]],
        buckets: Sequence[Bucket],
        leases: Sequence[LeaseSpec],
    ) -> Snapshot:
        """Read in one round trip: each budget window's charged total and what admitted,
        unsettled requests hold of it (None for a leased window: it holds grants)."""
        tag = self.tag
        now_us = time.time_ns() // 1000 - EPOCH_S * MICRO
        try:
            pipe = self.client.pipeline(transaction=False)
            for g, w in budgets:
                pipe.get(budget_key(tag, g, w))
            for b in buckets:
                pipe.get(f"{tag}:r:{b.key}")
            for lease in leases:
                pipe.zcount(f"{tag}:c:{lease.key}", now_us, "+inf")
            replies = pipe.execute()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        got = iter(replies)
        held = tuple(_budget_held(next(got), g.unit == "usd") for g, _ in budgets)
        free = tuple(_bucket_free(b, next(got), now_us) for b in buckets)
        inflight = tuple(int(next(got)) for _ in leases)
        return Snapshot(held, free, inflight)

    def inflight(self, lease_key: str) -> int:
        """Leases held now: an expired one (its release lost, e.g. in a failover) no longer
        counts, as in `snapshot` and in the admission script, though it stays in the set
        until the next admission prunes it."""
        now_us = time.time_ns() // 1000 - EPOCH_S * MICRO
        try:
            return int(self.client.zcount(f"{self.tag}:c:{lease_key}", now_us, "+inf"))
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    @property
    def pending(self) -> int:
        with self._pending_lock:
            return len(self._pending)

    def renew(self, reservation: Reservation, seconds: float | None = None) -> bool:
        """Extend a long (streaming) request's concurrency leases."""
        keys = self.keys(reservation.spec, reservation.windows).leases
        if not keys:
            return False
        ttl = int((seconds if seconds is not None else self.lease_ttl_us / MICRO) * MICRO)
        try:
            return bool(self._eval(RENEW, list(keys), [reservation.request_id, ttl]))
        except UNREACHABLE as exc:
            raise self._unavailable(exc, "cannot renew leases") from None

    # -- topology -------------------------------------------------------------------------
    def _check_primary(self) -> None:
        """Sentinel: at most every PRIMARY_CHECK_S, ask which server is the primary; when it
        changed, the pool drops connections to the old one (which may still accept writes
        until Sentinel demotes it, and those writes would be lost)."""
        pool: Any = getattr(self._client, "connection_pool", None)
        if not isinstance(pool, redis.sentinel.SentinelConnectionPool) or not self._due():
            return
        before = pool.proxy.master_address  # the sync pool keeps it on its proxy
        with contextlib.suppress(*UNREACHABLE):  # the next command tells if it is reachable
            if pool.get_master_address() != before and before is not None:  # type: ignore[no-untyped-call]
                # redis-py drops only idle connections: one in use now would go back to the
                # pool still talking to the old primary, whose writes Sentinel will discard
                pool.disconnect(inuse_connections=True)

    async def _acheck_primary(self) -> None:
        client = self._aclients.get(id(asyncio.get_running_loop()), self._given_async)
        pool: Any = getattr(client, "connection_pool", None)
        if not isinstance(pool, aiosentinel.SentinelConnectionPool) or not self._due():
            return
        before = pool.master_address
        with contextlib.suppress(*UNREACHABLE):
            if await pool.get_master_address() != before and before is not None:  # type: ignore[no-untyped-call]
                await pool.disconnect(inuse_connections=True)  # as in _check_primary

    def _drop_demoted(self, exc: BaseException) -> None:
        """READONLY from one server: it was demoted (a managed service failed over behind
        its DNS name). Its connections stay open and would keep hitting the replica, so drop
        them all: the next ones resolve the name again and reach the new primary."""
        pool: Any = getattr(self._client, "connection_pool", None)
        if isinstance(exc, redis.exceptions.ReadOnlyError) and pool is not None:
            pool.disconnect(inuse_connections=True)

    async def _adrop_demoted(self, exc: BaseException) -> None:
        client = self._aclients.get(id(asyncio.get_running_loop()), self._given_async)
        pool: Any = getattr(client, "connection_pool", None)
        if isinstance(exc, redis.exceptions.ReadOnlyError) and pool is not None:
            await pool.disconnect(inuse_connections=True)

    def _due(self) -> bool:
        now = time.monotonic()
        if now < self._next_primary_check:
            return False
        self._next_primary_check = now + PRIMARY_CHECK_S
        return True

    # -- async plumbing -------------------------------------------------------------------
    def async_client(self) -> AsyncClient:
        """The client of the running event loop (an asyncio pool cannot cross loops)."""
        if self._given_async is not None:
            return self._given_async
        loop = id(asyncio.get_running_loop())
        found = self._aclients.get(loop)
        if found is None:
            if self.topology is None:  # given only a sync client: no asyncio pool to build
                raise TypeError("this store was given only a sync client: pass async_client= "
                                "for the async methods")  # fmt: skip
            found = build_async(self.topology, self._timeout, self._max_connections)
            self._aclients[loop] = found
        return found

    def ping(self) -> float:
        """One round trip, in seconds (for benchmarks and health checks)."""
        start = time.perf_counter()
        try:
            self.client.ping()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        return time.perf_counter() - start

    async def aclose(self) -> None:
        """At shutdown in an event loop (the gateway): return leased budgets' holdings."""
        if self.budget_leases is not None:
            await self.budget_leases.aclose()

    def _can_sync(self) -> bool:
        return self._client is not None or self.topology is not None

    def close(self) -> None:
        if self.budget_leases is not None:
            self.budget_leases.close()  # returns what it holds
        if self._client is not None:
            self._client.close()


class _Pending(NamedTuple):
    """A settlement to replay, or (with the admission's nonce) a void."""

    reservation: Reservation
    tokens: int
    cost: int
    nonce: str


def _describe(client: Any) -> str:
    """A passwordless description of a client passed in, for messages."""
    if isinstance(client, redis.cluster.RedisCluster) or type(client).__name__ == "RedisCluster":
        nodes = ",".join(n.name for n in client.get_nodes()[:3]) if client.get_nodes() else ""
        return f"redis+cluster://{nodes}"
    pool = getattr(client, "connection_pool", None)
    service = getattr(pool, "service_name", None)
    if service is not None:
        return f"redis+sentinel://{service}"
    kwargs = getattr(pool, "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def _read_policy(client: Any, key: str) -> str | None:
    """The server's maxmemory-policy: CONFIG GET, else INFO memory (managed services often
    disable CONFIG), else None. On a cluster: the primary holding the store's slot."""
    target: dict[str, Any] = {}
    if isinstance(client, redis.cluster.RedisCluster):  # (its methods are untyped)
        target["target_nodes"] = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
    try:
        return _policy_of(client.config_get("maxmemory-policy", **target), "maxmemory-policy")
    except redis.ResponseError:
        pass
    try:
        return _policy_of(client.info("memory", **target), "maxmemory_policy")
    except redis.ResponseError:
        return None


async def _aread_policy(client: Any, key: str) -> str | None:
    target: dict[str, Any] = {}
    if isinstance(client, aiocluster.RedisCluster):
        await client.initialize()
        target["target_nodes"] = client.get_node_from_key(key)
    try:
        reply = await client.config_get("maxmemory-policy", **target)
        return _policy_of(reply, "maxmemory-policy")
    except redis.ResponseError:
        pass
    try:
        return _policy_of(await client.info("memory", **target), "maxmemory_policy")
    except redis.ResponseError:
        return None


def _policy_of(reply: Any, name: str) -> str | None:
    if not isinstance(reply, dict):
        return None
    value = reply.get(name, reply.get(name.encode()))
    return _text(value) if isinstance(value, str | bytes) else None


def _new_generation() -> str:
    return f"{int(time.time())}-{secrets.token_hex(8)}"
