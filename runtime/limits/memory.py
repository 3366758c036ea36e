"""The in-process store: one lock, plain dicts, integer arithmetic. Thread-safe; the
embedded default.

Per chain and UTC day the store prepares flat rows (keys with their window, limits as
plain ints), so one admission is a handful of dict operations under the lock."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

from runtime.bundle.periods import NS_PER_DAY, window
from runtime.limits.base import (
    Reservation,
    Snapshot,
    Store,
    budget_refusal,
    lease_refusal,
    rate_refusal,
    reused_id,
)
from runtime.limits.spec import Bucket, BudgetSpec, ChainSpec, LeaseSpec

SETTLED_MEMORY = 100_000  # request ids remembered for idempotent settlement
LIVE_MEMORY = 1_000_000  # admitted, unsettled ids; beyond it the oldest (abandoned) are forgotten
_USD, _TOKENS, _REQUESTS = 0, 1, 2
_KIND = {"usd": _USD, "tokens": _TOKENS, "requests": _REQUESTS}
_NO_TAT = (0, 1)  # a bucket never charged: arrival time 0 (the bucket is full)


class Prepared:
    """One chain's rows for one UTC day (budget windows never change within a day)."""

    __slots__ = ("buckets", "budgets", "day", "empty", "ends", "leases", "windows")

    def __init__(self, spec: ChainSpec, day: int) -> None:
        self.day = day
        wins = [window(g.period, day, spec.epoch) for g in spec.budgets]
        self.windows = tuple(w[0] for w in wins)
        self.ends = tuple(w[1] for w in wins)
        self.buckets: tuple[tuple[str, int, int, int, bool, Bucket], ...] = tuple(
            (b.key, b.limit, b.per_ns, b.burst * b.per_ns, b.unit == "tokens", b)
            for b in spec.buckets
        )
        self.budgets: tuple[tuple[str, int, int, int | None, BudgetSpec], ...] = tuple(
            (f"{g.key}|{w}", _KIND[g.unit], g.limit, g.alert_at, g)
            for g, w in zip(spec.budgets, self.windows, strict=True)
        )
        self.leases: tuple[tuple[str, int, LeaseSpec], ...] = tuple(
            (lease.key, lease.limit, lease) for lease in spec.leases
        )
        self.empty = spec.empty  # nothing to charge: the request id is not tracked either


class MemoryStore(Store):
    settles_inline = True

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self.clock = clock  # ns since 1970, injectable for tests
        self._lock = threading.Lock()
        # bucket -> (theoretical arrival time scaled by a limit, that limit): a reload may
        # change the limit under the same key, and the time must carry over (see _rescaled)
        self._tat: dict[str, tuple[int, int]] = {}
        self._spent: dict[str, int] = {}  # "budget|window" -> amount
        self._reserved: dict[str, int] = {}  # of that, held by admitted, unsettled requests
        self._inflight: dict[str, int] = {}
        self._settled: OrderedDict[str, None] = OrderedDict()
        self._live: dict[str, None] = {}  # admitted, not settled (insertion ordered)
        self._prepared: dict[int, tuple[ChainSpec, Prepared]] = {}
        self._claims: dict[str, int] = {}  # key -> when it expires (ns)
        self._dropped: deque[Reservation] = deque()  # of tickets dropped unsettled (base.py)

    def prepare(self, spec: ChainSpec, day: int) -> Prepared:
        found = self._prepared.get(id(spec))
        if found is None or found[0] is not spec or found[1].day != day:
            found = (spec, Prepared(spec, day))
            self._prepared[id(spec)] = found
        return found[1]

    def admit(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation:
        if self._dropped:
            self._settle_dropped()
        now = self.clock()
        prep = self.prepare(spec, now // NS_PER_DAY)
        if prep.empty:
            return Reservation(request_id, spec, tokens, cost, (), (), (), prep)
        amounts = (cost, tokens, 1)
        tat_of = self._tat
        spent_of = self._spent
        live = self._live
        with self._lock:
            if request_id in live or request_id in self._settled:
                raise reused_id(request_id, request_id not in live)
            news = []
            for key, limit, per_ns, capacity, by_tokens, b in prep.buckets:
                units = tokens if by_tokens else 1
                scaled_now = now * limit
                tat, by = tat_of.get(key, _NO_TAT)
                if by != limit:
                    tat = _rescaled(tat, by, limit)
                new = (tat if tat > scaled_now else scaled_now) + units * per_ns
                if new - scaled_now > capacity or limit == 0:
                    raise rate_refusal(b, tat, now, units)
                news.append(new)
            alerts: list[BudgetSpec] = []
            for key, kind, limit, alert_at, g in prep.budgets:
                spent = spent_of.get(key, 0)
                after = spent + amounts[kind]
                if after > limit:
                    raise budget_refusal(g, spent)
                if alert_at is not None and spent < alert_at <= after:
                    alerts.append(g)
            inflight = self._inflight
            for key, limit, lease in prep.leases:
                if inflight.get(key, 0) >= limit:
                    raise lease_refusal(lease)
            # every check passed: charge all
            for row, new in zip(prep.buckets, news, strict=True):
                tat_of[row[0]] = (new, row[1])
            reserved = self._reserved
            for key, kind, _, _, _ in prep.budgets:
                spent_of[key] = spent_of.get(key, 0) + amounts[kind]
                reserved[key] = reserved.get(key, 0) + amounts[kind]
            for key, _, _ in prep.leases:
                inflight[key] = inflight.get(key, 0) + 1
            live[request_id] = None
            if len(live) > LIVE_MEMORY:
                del live[next(iter(live))]
        return Reservation(
            request_id, spec, tokens, cost, prep.windows, prep.ends, tuple(alerts), prep
        )

    def settle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        prep = reservation.prepared
        if not isinstance(prep, Prepared):  # a reservation made elsewhere: rebuild its rows
            prep = Prepared(reservation.spec, 0)
            prep.budgets = tuple(
                (f"{g.key}|{w}", _KIND[g.unit], g.limit, g.alert_at, g)
                for g, w in zip(reservation.spec.budgets, reservation.windows, strict=True)
            )
        if prep.empty:
            return False
        deltas = (cost - reservation.cost, tokens - reservation.tokens, 0)
        held = (reservation.cost, reservation.tokens, 1)
        with self._lock:
            if reservation.request_id in self._settled:
                return False
            self._settled[reservation.request_id] = None
            self._live.pop(reservation.request_id, None)
            if len(self._settled) > SETTLED_MEMORY:
                self._settled.popitem(last=False)
            extra_tokens = deltas[_TOKENS]
            if extra_tokens:
                self._correct_buckets(prep, extra_tokens)
            for key, kind, _, _, _ in prep.budgets:
                if deltas[kind]:
                    self._spent[key] = self._spent.get(key, 0) + deltas[kind]
                self._reserved[key] = max(self._reserved.get(key, 0) - held[kind], 0)
            for key, _, _ in prep.leases:
                self._inflight[key] = max(self._inflight.get(key, 0) - 1, 0)
        return True

    def _correct_buckets(self, prep: Prepared, extra_tokens: int) -> None:
        """Charge (or refund) the tokens the estimate missed, leaving a bucket at most one
        full bucket in debt (see spec.py): a wild usage cannot lock a limit for years."""
        now = self.clock() if extra_tokens > 0 else 0
        for key, limit, per_ns, capacity, by_tokens, _ in prep.buckets:
            found = self._tat.get(key)
            if by_tokens and found is not None and limit:
                # the reservation's limit, which a reload since may have changed
                tat = _rescaled(*found, limit) + extra_tokens * per_ns
                if extra_tokens > 0:
                    tat = min(tat, now * limit + 2 * capacity)
                self._tat[key] = (tat, limit)

    def claim(self, key: str, ttl_s: int) -> bool:
        now = self.clock()
        with self._lock:
            if self._claims.get(key, 0) > now:
                return False
            if len(self._claims) > SETTLED_MEMORY:  # drop the expired ones now and then
                self._claims = {k: t for k, t in self._claims.items() if t > now}
            self._claims[key] = now + ttl_s * 10**9
            return True

    # -- inspection ---------------------------------------------------------------------
    def snapshot(
        self,
        budgets: Sequence[tuple[BudgetSpec, str]],
        buckets: Sequence[Bucket],
        leases: Sequence[LeaseSpec],
    ) -> Snapshot:
        if self._dropped:
            self._settle_dropped()
        now = self.clock()
        with self._lock:
            held = tuple(
                (self._spent.get(f"{g.key}|{w}", 0), self._reserved.get(f"{g.key}|{w}", 0))
                for g, w in budgets
            )
            tats = [_rescaled(*self._tat.get(b.key, _NO_TAT), b.limit) for b in buckets]
            inflight = tuple(self._inflight.get(lease.key, 0) for lease in leases)
        free = tuple(_available(b, tat, now) for b, tat in zip(buckets, tats, strict=True))
        return Snapshot(held, free, inflight)

    def spent(self, budget_key: str, window_key: str) -> int:
        with self._lock:
            return self._spent.get(f"{budget_key}|{window_key}", 0)

    def inflight(self, lease_key: str) -> int:
        with self._lock:
            return self._inflight.get(lease_key, 0)


def _rescaled(tat: int, by: int, limit: int) -> int:
    """An arrival time scaled by the limit `by`, scaled by `limit` instead: the same instant,
    so what a bucket used carries over a reload that changed its limit (as in the Redis
    store, which keeps the time itself). Rounded up, the fraction lost is below 1 ns / limit
    and every admission decision stays exact: its other terms are whole scaled units."""
    if by == limit:
        return tat
    return -(-tat * limit // by)


def _available(b: Bucket, tat: int, now: int) -> int:
    """Units the bucket would admit now (its arrival time `tat` is scaled by the limit)."""
    if b.limit == 0:
        return 0
    debt = max(tat - now * b.limit, 0)
    return max((b.burst * b.per_ns - debt) // b.per_ns, 0)
