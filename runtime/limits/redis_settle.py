"""The Redis store's books: the keys of a chain's counters, settlement (sync and async, the
queue of settlements and voids replayed once Redis answers again), and reads (`spent`,
`snapshot`, `inflight`, `claim`) and lease renewal. Apart from redis_store.py, which admits,
because settlement and reads only need keys and a connection (redis_connection.py); a leased
reservation is settled by redis_lease_admit.py.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from runtime.bundle.periods import NS_PER_DAY
from runtime.limits import redis_lease_admit
from runtime.limits.base import Reservation, Snapshot
from runtime.limits.lua import LOW, RENEW, SETTLE
from runtime.limits.redis_codec import (
    BYPASS,
    EPOCH_S,
    MICRO,
    PAIR,
    UNREACHABLE,
    _bucket_free,
    _budget_held,
    _Keys,
    _Plan,
    _text,
    budget_key,
    pack_numbers,
    split_money,
    split_units,
)
from runtime.limits.redis_connection import RedisConnection, log
from runtime.limits.redis_upkeep import Upkeep
from runtime.limits.spec import Bucket, BudgetSpec, ChainSpec, LeaseSpec

MAX_VOIDS = 100_000  # queued voids beyond this are dropped (their leases expire by TTL)


class RedisSettlement(RedisConnection):
    """Keys, settlement and reads of one store (see redis_store.py)."""

    # set by RedisStore.__init__
    tag: str
    lease_ttl_us: int
    settled_ttl: int
    clock: Callable[[], int]
    _skew_ns: int
    _plans: dict[int, _Plan]
    _pending: collections.deque[_Pending]
    _pending_lock: threading.Lock
    _dropped: collections.deque[Reservation]  # made in RedisStore.__init__
    _upkeep: Upkeep
    namespace: str
    unknown_admissions = 0  # settlements that found no admission (see _unknown_admission)

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

    # -- settlement -----------------------------------------------------------------------
    def _settle_call(
        self, reservation: Reservation, tokens: int, cost: int, nonce: str = ""
    ) -> tuple[list[str], list[Any]]:
        """The settlement's keys and arguments; with a nonce, the void of that admission
        (everything it charged refunded, requests included)."""
        spec = reservation.spec
        keys = self.keys(spec, reservation.windows)
        extra = tokens - reservation.tokens
        if nonce:  # every bucket gives back what the admission took: a request, its tokens
            changes = [(i, -b.cost(reservation.tokens)) for i, b in enumerate(spec.buckets)]
        else:  # a request bucket's charge stands; a token bucket's follows the usage
            changes = [(i, extra) for i in keys.token_buckets] if extra else []
        bucket_keys, bucket_args = [], []
        for i, change in changes:
            if not change:
                continue
            b = spec.buckets[i]
            per_us = b.per_ns // 1000
            # a charge past one more full bucket is capped in the script: keep it exact
            units = min(abs(change), 2 * b.burst + 1)
            dq, dr = split_units(units, per_us, b.limit)
            bucket_keys.append(keys.buckets[i])
            bucket_args += [1 if change > 0 else -1, dq, dr, b.limit,
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
        if code == 3:
            self._unknown_admission()
        return code != 0

    def _unknown_admission(self) -> None:
        """A settlement found no admission: one a failover lost (written to the old primary
        after its replica's last copy). Its usage was charged; said at the 1st, 2nd, 4th...
        so that a failover under load is one line or a few, not one per request."""
        self.unknown_admissions += 1
        count = self.unknown_admissions
        if count & (count - 1) == 0:
            log.warning("limits store namespace %r: %d settlements found no admission (a "
                        "failover lost it): each was charged its usage, nothing released",
                        self.namespace, count)  # fmt: skip

    def settle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        if self.budget_leases is not None and redis_lease_admit.owns(reservation):
            return redis_lease_admit.settle(self.budget_leases, reservation, tokens, cost)
        if reservation.prepared == BYPASS or reservation.spec.empty:
            return False
        self._upkeep.settled(reservation.request_id)
        keys, args = self._settle_call(reservation, tokens, cost)
        try:
            self._check_primary()
            if self._pending:
                self._flush()
            return self._settled(self._eval(SETTLE, keys, args))
        except UNREACHABLE:
            self._queue(_Pending(reservation, tokens, cost, ""))
            return True  # queued: replayed, once, when Redis answers again

    async def asettle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        if self.budget_leases is not None and redis_lease_admit.owns(reservation):
            return await redis_lease_admit.asettle(self.budget_leases, reservation, tokens, cost)
        if reservation.prepared == BYPASS or reservation.spec.empty:
            return False
        self._upkeep.settled(reservation.request_id)
        keys, args = self._settle_call(reservation, tokens, cost)
        try:
            await self._acheck_primary()
            if self._pending:
                await self._aflush()
            return self._settled(await self._aeval(SETTLE, keys, args))
        except UNREACHABLE:
            self._queue(_Pending(reservation, tokens, cost, ""))
            return True

    async def _asettle_dropped(self) -> None:
        """`_settle_dropped` (base.py) for an event loop: their leases stop being renewed
        and are released; a Redis that cannot be reached queues them, as any settlement."""
        while (held := self._next_dropped()) is not None:
            await self.asettle(held, held.tokens, held.cost)

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

    def _void(self, reservation: Reservation, nonce: str) -> None:
        """Queue the undoing of an admission that may have run (its reply was lost, or no
        replica acknowledged it): refunded and its leases released only if it ran."""
        with self._pending_lock:
            if len(self._pending) >= MAX_VOIDS:
                return
        self._queue(_Pending(reservation, 0, 0, nonce))

    def _queue(self, item: _Pending) -> None:
        """Queue a settlement or void, replayed in the background (redis_upkeep.py)."""
        with self._pending_lock:
            self._pending.append(item)
        self._upkeep.queued()

    async def aclose(self) -> None:
        """At shutdown (the gateway): dropped tickets settled, background upkeep stopped,
        queued settlements given a last try, then the connection's own close."""
        if self._dropped:
            with contextlib.suppress(Exception):  # (a store that cannot be reached queues)
                await self._asettle_dropped()
        await self._upkeep.aclose()
        await super().aclose()

    def close(self) -> None:
        if self._dropped:
            with contextlib.suppress(Exception):
                self._settle_dropped()
        self._upkeep.close()
        super().close()

    # -- reads -----------------------------------------------------------------------------
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
            pipe.get(self._marker)
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
        self._check_generation(next(got))
        self._check_present(replies[1:1 + len(budgets) + len(buckets)],
                            [budget_key(tag, g, w) for g, w in budgets]
                            + [f"{tag}:r:{b.key}" for b in buckets])  # fmt: skip
        held = tuple(_budget_held(next(got), g.unit == "usd") for g, _ in budgets)
        free = tuple(_bucket_free(b, next(got), now_us) for b in buckets)
        inflight = tuple(int(next(got)) for _ in leases)
        return Snapshot(held, free, inflight)

    def _check_present(self, values: Sequence[Any], keys: Sequence[str]) -> None:
        """Refuse to report a counter a fail-closed store has lost on its own (an eviction,
        a DEL): its registry entry says it should still exist, as the admission script
        checks. Read as absent, it showed a spent budget whole (the fixes' review)."""
        missing = [key for key, value in zip(keys, values, strict=True) if value is None]
        if not missing or self.fail_open or self.generation is None:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in missing:
                pipe.zscore(self._registry, key)
            scores = pipe.execute()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        now = time.time()
        for key, score in zip(missing, scores, strict=True):
            if score is not None and float(score) > now:
                raise self._lost(f"the counter `{key}` vanished before its window ended")

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
        """Extend a request's concurrency leases now. The store renews those of requests it
        admitted on an event loop itself (redis_upkeep.py); sync callers renew long ones."""
        keys = self.keys(reservation.spec, reservation.windows).leases
        if not keys:
            return False
        ttl = int((seconds if seconds is not None else self.lease_ttl_us / MICRO) * MICRO)
        try:
            return bool(self._eval(RENEW, list(keys), [ttl, *[reservation.request_id] * len(keys)]))
        except UNREACHABLE as exc:
            raise self._unavailable(exc, "cannot renew leases") from None


class _Pending(NamedTuple):
    """A settlement to replay, or (with the admission's nonce) a void."""

    reservation: Reservation
    tokens: int
    cost: int
    nonce: str
