"""The in-process store: one lock, plain dicts, integer arithmetic. Thread-safe; the
embedded default."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from runtime.limits.base import (
    Reservation,
    Store,
    budget_refusal,
    lease_refusal,
    rate_refusal,
)
from runtime.limits.spec import BudgetSpec, ChainSpec
from runtime.periods import NS_PER_DAY, window

SETTLED_MEMORY = 100_000  # request ids remembered for idempotent settlement


class MemoryStore(Store):
    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self.clock = clock  # ns since 1970, injectable for tests
        self._lock = threading.Lock()
        self._tat: dict[str, int] = {}  # bucket -> theoretical arrival time, scaled by limit
        self._spent: dict[str, int] = {}  # "budget|window" -> amount
        self._inflight: dict[str, int] = {}
        self._settled: OrderedDict[str, None] = OrderedDict()

    def admit(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation:
        now = self.clock()
        day = now // NS_PER_DAY
        windows = [window(g.period, day, spec.epoch) for g in spec.budgets]
        with self._lock:
            tats = []
            for b in spec.buckets:
                units = b.cost(tokens)
                tat = self._tat.get(b.key, 0)
                scaled_now = now * b.limit
                new = max(tat, scaled_now) + units * b.per_ns
                if b.limit == 0 or new - scaled_now > b.burst * b.per_ns:
                    raise rate_refusal(b, tat, now, units)
                tats.append(new)
            keys = [f"{g.key}|{w[0]}" for g, w in zip(spec.budgets, windows, strict=True)]
            alerts: list[BudgetSpec] = []
            for g, key in zip(spec.budgets, keys, strict=True):
                spent = self._spent.get(key, 0)
                amount = g.amount(tokens, cost)
                if spent + amount > g.limit:
                    raise budget_refusal(g, spent)
                if g.alert_at is not None and spent < g.alert_at <= spent + amount:
                    alerts.append(g)
            for lease in spec.leases:
                if self._inflight.get(lease.key, 0) >= lease.limit:
                    raise lease_refusal(lease)
            # every check passed: charge all
            for b, tat in zip(spec.buckets, tats, strict=True):
                self._tat[b.key] = tat
            for g, key in zip(spec.budgets, keys, strict=True):
                self._spent[key] = self._spent.get(key, 0) + g.amount(tokens, cost)
            for lease in spec.leases:
                self._inflight[lease.key] = self._inflight.get(lease.key, 0) + 1
        return Reservation(
            request_id, spec, tokens, cost, tuple(w[0] for w in windows),
            tuple(w[1] for w in windows), tuple(alerts),
        )  # fmt: skip

    def settle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        spec = reservation.spec
        extra_tokens = tokens - reservation.tokens
        with self._lock:
            if reservation.request_id in self._settled:
                return False
            self._settled[reservation.request_id] = None
            if len(self._settled) > SETTLED_MEMORY:
                self._settled.popitem(last=False)
            if extra_tokens:
                for b in spec.buckets:
                    if b.unit == "tokens" and b.key in self._tat:
                        self._tat[b.key] += extra_tokens * b.per_ns
            for g, win in zip(spec.budgets, reservation.windows, strict=True):
                delta = g.amount(tokens, cost) - g.amount(reservation.tokens, reservation.cost)
                if delta:
                    key = f"{g.key}|{win}"
                    self._spent[key] = self._spent.get(key, 0) + delta
            for lease in spec.leases:
                self._inflight[lease.key] = max(self._inflight.get(lease.key, 0) - 1, 0)
        return True

    # -- inspection ---------------------------------------------------------------------
    def spent(self, budget_key: str, window_key: str) -> int:
        with self._lock:
            return self._spent.get(f"{budget_key}|{window_key}", 0)

    def inflight(self, lease_key: str) -> int:
        with self._lock:
            return self._inflight.get(lease_key, 0)
