"""The Redis store: many router replicas, one truth. One Lua script per admission checks
and charges every counter of the chain atomically (see lua.py for the arithmetic).

- All keys of a store share one hash tag, `{<namespace>}`, so every chain's keys are in one
  slot and the scripts run on Redis Cluster. (Chains share counters, so one slot it is.)
- GCRA runs on the server's clock; budget windows are computed here from the client clock
  and their keys carry the window (`…|2026-11`, `…|2026-W48`) and expire after it.
- Concurrency is a sorted set of leases with a TTL; long (streaming) requests `renew` theirs.
- Settlement is idempotent per request id. A settlement that cannot reach Redis is queued
  and replayed once Redis answers again; nothing is lost.
- When Redis is unreachable: fail-closed (default) raises StoreUnavailable (503); fail-open
  admits, counts the bypass and reports it to `on_bypass`.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from runtime.errors import RateLimited, StoreUnavailable
from runtime.limits.base import Reservation, Store, budget_refusal, lease_refusal
from runtime.limits.lua import ADMIT, RENEW, SETTLE
from runtime.limits.spec import Bucket, ChainSpec
from runtime.periods import NS_PER_DAY, window

EPOCH_S = 1_577_836_800  # 2020-01-01: keeps microsecond times well below 2^53 in Lua
MICRO = 10**6
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)
BYPASS = "bypass"
PAIR = struct.Struct("<dd")  # how the scripts store a counter's state


def split_units(units: int, per_us: int, limit: int) -> tuple[int, int]:
    """units * per_us / limit as (whole microseconds, remainder in 1/limit microseconds)."""
    if limit == 0:
        return 0, 0
    return divmod(units * per_us, limit)


def split_money(amount: int, usd: bool) -> tuple[int, int]:
    """pico-USD as (micro-USD, pico remainder); other units as (amount, 0). Keeps sign."""
    if not usd:
        return amount, 0
    whole = abs(amount) // MICRO
    rest = abs(amount) % MICRO
    return (whole, rest) if amount >= 0 else (-whole, -rest)


@dataclass(frozen=True, slots=True)
class _Keys:
    buckets: tuple[str, ...]
    budgets: tuple[str, ...]
    leases: tuple[str, ...]
    token_buckets: tuple[int, ...]  # indexes of buckets charged by tokens


class RedisStore(Store):
    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        namespace: str = "catalog",
        fail_open: bool = False,
        timeout: float = 0.5,
        lease_ttl: float = 300.0,
        settled_ttl: int = 2 * 86_400,
        max_connections: int = 64,
        on_bypass: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.url = url
        self.tag = "{" + namespace + "}"
        self.fail_open = fail_open
        self.lease_ttl_us = int(lease_ttl * MICRO)
        self.settled_ttl = settled_ttl
        self.on_bypass = on_bypass
        self.bypassed = 0
        self._timeout = timeout
        self._max_connections = max_connections
        # A blocking pool: callers beyond `max_connections` wait (up to `timeout`) for a
        # connection instead of failing.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            max_connections=max_connections,
            timeout=timeout,
            health_check_interval=30,
        )
        self.client = redis.Redis(connection_pool=pool)
        self._admit = self.client.register_script(ADMIT)
        self._settle = self.client.register_script(SETTLE)
        self._renew = self.client.register_script(RENEW)
        self._aclients: dict[int, aioredis.Redis] = {}  # one per event loop
        self._pending: collections.deque[tuple[Reservation, int, int]] = collections.deque()
        self._pending_lock = threading.Lock()
        self._plans: dict[int, _Plan] = {}

    # -- keys and arguments ---------------------------------------------------------------
    def plan(self, spec: ChainSpec, day: int) -> _Plan:
        """Keys and the constant part of the arguments, per chain and UTC day (cached)."""
        found = self._plans.get(id(spec))
        if found is None or found.spec is not spec or found.day != day:
            found = _Plan(spec, day, self.tag, self.lease_ttl_us)
            self._plans[id(spec)] = found
        return found

    def keys(self, spec: ChainSpec, windows: tuple[str, ...]) -> _Keys:
        """Keys for a reservation's own windows (settlement may cross midnight)."""
        tag = self.tag
        return _Keys(
            tuple(f"{tag}:r:{b.key}" for b in spec.buckets),
            tuple(f"{tag}:b:{g.key}|{w}" for g, w in zip(spec.budgets, windows, strict=True)),
            tuple(f"{tag}:c:{lease.key}" for lease in spec.leases),
            tuple(i for i, b in enumerate(spec.buckets) if b.unit == "tokens"),
        )

    def _refusal(self, spec: ChainSpec, tokens: int, result: list[Any]) -> Exception:
        kind, index = int(result[0]), int(result[1]) - 1
        if kind == 1:
            return _rate_refusal(spec.buckets[index], tokens, result)
        if kind == 2:
            g = spec.budgets[index]
            spent = int(result[2]) * (MICRO if g.unit == "usd" else 1) + int(result[3])
            return budget_refusal(g, spent)
        return lease_refusal(spec.leases[index])

    # -- admission ------------------------------------------------------------------------
    def admit(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation:
        plan = self.plan(spec, time.time_ns() // NS_PER_DAY)
        reservation = Reservation(request_id, spec, tokens, cost, plan.windows, plan.ends)
        if spec.empty:
            return reservation
        try:
            if self._pending:
                self.flush()
            result = self._admit(keys=plan.key_list, args=plan.args(request_id, tokens, cost))
        except UNREACHABLE as exc:
            return self._unreachable(reservation, exc)
        if int(result[0]) != 0:
            raise self._refusal(spec, tokens, result)
        return _with_alerts(reservation, result)

    async def aadmit(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation:
        plan = self.plan(spec, time.time_ns() // NS_PER_DAY)
        reservation = Reservation(request_id, spec, tokens, cost, plan.windows, plan.ends)
        if spec.empty:
            return reservation
        client = self.async_client()
        try:
            if self._pending:
                await self.aflush()
            result = await client.evalsha_or_eval(  # type: ignore[attr-defined]
                ADMIT, plan.key_list, plan.args(request_id, tokens, cost)
            )
        except UNREACHABLE as exc:
            return self._unreachable(reservation, exc)
        if int(result[0]) != 0:
            raise self._refusal(spec, tokens, result)
        return _with_alerts(reservation, result)

    def _unreachable(self, reservation: Reservation, exc: BaseException) -> Reservation:
        if not self.fail_open:
            raise StoreUnavailable(
                f"the limits store at {safe_url(self.url)} is unreachable: {exc}"
            ) from None
        self.bypassed += 1
        if self.on_bypass is not None:
            self.on_bypass(reservation.request_id, exc)
        return reservation._replace(prepared=BYPASS)

    # -- settlement -----------------------------------------------------------------------
    def _settle_call(
        self, reservation: Reservation, tokens: int, cost: int
    ) -> tuple[list[str], list[Any]]:
        spec = reservation.spec
        keys = self.keys(spec, reservation.windows)
        extra = tokens - reservation.tokens
        bucket_keys, bucket_args = [], []
        for i in keys.token_buckets:
            b = spec.buckets[i]
            dq, dr = split_units(abs(extra), b.per_ns // 1000, b.limit)
            bucket_keys.append(keys.buckets[i])
            bucket_args += [1 if extra >= 0 else -1, dq, dr, b.limit]
        budget_args: list[Any] = []
        for g in spec.budgets:
            delta = g.amount(tokens, cost) - g.amount(reservation.tokens, reservation.cost)
            budget_args += list(split_money(delta, g.unit == "usd"))
        marker = f"{self.tag}:s:{reservation.request_id}"
        numbers = [len(bucket_keys), len(keys.budgets), len(keys.leases), 0, self.settled_ttl,
                   *bucket_args, *budget_args]  # fmt: skip
        args = [pack_numbers(numbers), reservation.request_id]
        return [marker, *bucket_keys, *keys.budgets, *keys.leases], args

    def settle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        if reservation.prepared == BYPASS or reservation.spec.empty:
            return False
        keys, args = self._settle_call(reservation, tokens, cost)
        try:
            if self._pending:
                self.flush()
            return bool(self._settle(keys=keys, args=args))
        except UNREACHABLE:
            with self._pending_lock:
                self._pending.append((reservation, tokens, cost))
            return True  # queued: replayed, once, when Redis answers again

    async def asettle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        if reservation.prepared == BYPASS or reservation.spec.empty:
            return False
        keys, args = self._settle_call(reservation, tokens, cost)
        try:
            if self._pending:
                await self.aflush()
            return bool(await self.async_client().evalsha_or_eval(SETTLE, keys, args))  # type: ignore[attr-defined]
        except UNREACHABLE:
            with self._pending_lock:
                self._pending.append((reservation, tokens, cost))
            return True

    def flush(self) -> int:
        """Replay queued settlements (each is idempotent); returns how many went through."""
        done = 0
        while True:
            with self._pending_lock:
                if not self._pending:
                    return done
                item = self._pending[0]
            keys, args = self._settle_call(*item)
            self._settle(keys=keys, args=args)  # raises while Redis is still away
            with self._pending_lock:
                if self._pending and self._pending[0] is item:
                    self._pending.popleft()
            done += 1

    async def aflush(self) -> int:
        done = 0
        while True:
            with self._pending_lock:
                if not self._pending:
                    return done
                item = self._pending[0]
            keys, args = self._settle_call(*item)
            await self.async_client().evalsha_or_eval(SETTLE, keys, args)  # type: ignore[attr-defined]
            with self._pending_lock:
                if self._pending and self._pending[0] is item:
                    self._pending.popleft()
            done += 1

    def spent(self, budget_key: str, window_key: str) -> int:
        """What a budget window holds (pico-USD for usd), like MemoryStore.spent."""
        value = self.client.get(f"{self.tag}:b:{budget_key}|{window_key}")
        if value is None:
            return 0
        assert isinstance(value, bytes), "the store's client must not decode responses"
        high, low = PAIR.unpack(value)  # see lua.py: two little-endian doubles, exact
        usd = "|budget|usd/" in budget_key  # keys read "<counter>|budget|<unit>/<period>"
        return int(high) * (MICRO if usd else 1) + int(low)

    def inflight(self, lease_key: str) -> int:
        return int(self.client.zcard(f"{self.tag}:c:{lease_key}"))

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
            return bool(self._renew(keys=list(keys), args=[reservation.request_id, ttl]))
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"cannot renew leases: {exc}") from None

    # -- async plumbing -------------------------------------------------------------------
    def async_client(self) -> aioredis.Redis:
        """The client of the running event loop (an asyncio pool cannot cross loops)."""
        loop = id(asyncio.get_running_loop())
        found = self._aclients.get(loop)
        if found is None:
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                max_connections=self._max_connections,
                timeout=self._timeout,
            )
            found = aioredis.Redis(connection_pool=pool)
            found.evalsha_or_eval = _evalsha_or_eval(found)  # type: ignore[attr-defined]
            self._aclients[loop] = found
        return found

    def ping(self) -> float:
        """One round trip, in seconds (for benchmarks and health checks)."""
        start = time.perf_counter()
        self.client.ping()
        return time.perf_counter() - start

    def close(self) -> None:
        self.client.close()


def _evalsha_or_eval(client: aioredis.Redis) -> Callable[..., Any]:
    """EVALSHA, loading the script again after a SCRIPT FLUSH (NOSCRIPT)."""
    shas: dict[str, str] = {}

    async def call(script: str, keys: list[str], args: list[Any]) -> Any:
        sha = shas.get(script)
        if sha is None:
            sha = await client.script_load(script)
            shas[script] = sha
        try:
            return await client.evalsha(sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            shas[script] = await client.script_load(script)
            return await client.evalsha(shas[script], len(keys), *keys, *args)

    return call


class _Plan:
    """One chain's admission for one UTC day: keys, and the argument numbers with holes for
    the token-dependent and cost-dependent pairs, filled per request."""

    __slots__ = ("day", "ends", "holes", "key_list", "numbers", "spec", "windows")

    def __init__(self, spec: ChainSpec, day: int, tag: str, lease_ttl_us: int) -> None:
        self.spec, self.day = spec, day
        wins = [window(g.period, day, spec.epoch) for g in spec.budgets]
        self.windows = tuple(w[0] for w in wins)
        self.ends = tuple(w[1] for w in wins)
        self.key_list = [
            *(f"{tag}:r:{b.key}" for b in spec.buckets),
            *(f"{tag}:b:{g.key}|{w}" for g, w in zip(spec.budgets, self.windows, strict=True)),
            *(f"{tag}:c:{lease.key}" for lease in spec.leases),
        ]
        numbers = [len(spec.buckets), len(spec.budgets), len(spec.leases), 0, lease_ttl_us]
        # holes: (index of a pair in `numbers`, function of (tokens, cost) giving the pair)
        holes: list[tuple[int, Callable[[int, int], tuple[int, int]]]] = []
        for b in spec.buckets:
            per_us = b.per_ns // 1000
            cq, cr = split_units(b.burst, per_us, b.limit)
            if b.unit == "tokens":
                holes.append((len(numbers) + 1, _bucket_units(per_us, b.limit)))
            numbers += [b.limit, *split_units(1, per_us, b.limit), cq, cr]
        for g, end in zip(spec.budgets, self.ends, strict=True):
            usd = g.unit == "usd"
            expire = end // 10**9 + 86_400 if end is not None else 0
            xh, xl = split_money(g.alert_at, usd) if g.alert_at is not None else (-1, -1)
            if g.unit != "requests":
                holes.append((len(numbers) + 2, _budget_amount(usd)))
            numbers += [*split_money(g.limit, usd), 1, 0, expire, xh, xl]
        numbers += [lease.limit for lease in spec.leases]
        self.numbers, self.holes = numbers, holes

    def args(self, request_id: str, tokens: int, cost: int) -> list[Any]:
        numbers = self.numbers.copy()
        for at, pair in self.holes:
            numbers[at], numbers[at + 1] = pair(tokens, cost)
        return [pack_numbers(numbers), request_id]


def pack_numbers(numbers: list[int]) -> bytes:
    """Little-endian doubles, as the scripts unpack them (exact: all are below 2^53)."""
    return _packer(len(numbers)).pack(*numbers)


@functools.lru_cache(maxsize=64)
def _packer(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}d")


def _bucket_units(per_us: int, limit: int) -> Callable[[int, int], tuple[int, int]]:
    def units(tokens: int, cost: int) -> tuple[int, int]:
        return split_units(tokens, per_us, limit)

    return units


def _budget_amount(usd: bool) -> Callable[[int, int], tuple[int, int]]:
    def amount(tokens: int, cost: int) -> tuple[int, int]:
        return split_money(cost if usd else tokens, usd)

    return amount


def _with_alerts(reservation: Reservation, result: list[Any]) -> Reservation:
    if len(result) <= 2:
        return reservation
    crossed = tuple(reservation.spec.budgets[int(j) - 1] for j in result[2:])
    return reservation._replace(alerts=crossed)


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def _rate_refusal(b: Bucket, tokens: int, result: list[Any]) -> RateLimited:
    units = b.cost(tokens)
    if b.limit == 0 or units > b.burst:
        return RateLimited(b.counter, b.unit, b.per, b.limit, retry_after=None)
    q, r, now = int(result[2]), int(result[3]), int(result[4])
    per_us = b.per_ns // 1000
    # ready when now' >= tat + units*T - burst*T, in exact rationals (units of 1/limit us)
    ready = q * b.limit + r + units * per_us - b.burst * per_us
    wait_us = max(ready - now * b.limit, 0) / b.limit
    return RateLimited(b.counter, b.unit, b.per, b.limit, retry_after=wait_us / MICRO)
