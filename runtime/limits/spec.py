"""What admission checks for one counter chain, precompiled once per chain.

Every store executes the same thing atomically: check every bucket, budget and lease of
the chain, then charge all of them, or charge nothing.

Rate limits are GCRA buckets in integer arithmetic: a bucket refills `limit` units per
`per` and holds `burst`. Time is scaled by the limit (ns * limit) so the emission interval
`per_ns / limit` never needs a fraction: a request of n units is admitted iff
    max(tat, now * limit) + n * per_ns - now * limit <= burst * per_ns
which admits at most `burst + limit * t / per` units over any interval t.

Settlement charges a token bucket the tokens the estimate missed (or refunds those it
overestimated). The charge leaves the bucket at most one full bucket in debt (its arrival
time at most `now + 2 * burst * per / limit`): admitted units still never exceed the bound
by more than what the estimates missed, a wildly wrong usage cannot lock a limit for years,
and the Redis store's microsecond times stay exact (below 2^53; the compiler bounds a full
bucket's refill to 100 years).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from runtime.bundle.load import Counter
from runtime.bundle.money import units

PER_NS = {"second": 10**9, "minute": 60 * 10**9, "hour": 3600 * 10**9, "day": 86_400 * 10**9}


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    counter: str
    unit: str  # requests | tokens
    per: str
    limit: int
    burst: int
    per_ns: int

    def cost(self, tokens: int) -> int:
        return tokens if self.unit == "tokens" else 1


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    key: str
    counter: str
    unit: str  # usd | tokens | requests
    period: str
    limit: int  # units of 1e-16 USD for usd
    alert_at: int | None  # the amount at which the alert threshold is crossed

    def amount(self, tokens: int, cost: int) -> int:
        return cost if self.unit == "usd" else tokens if self.unit == "tokens" else 1


@dataclass(frozen=True, slots=True)
class LeaseSpec:
    key: str
    counter: str
    limit: int


@dataclass(frozen=True, slots=True)
class ChainSpec:
    counters: tuple[str, ...]
    buckets: tuple[Bucket, ...]
    budgets: tuple[BudgetSpec, ...]
    leases: tuple[LeaseSpec, ...]
    epoch: str | None

    @property
    def empty(self) -> bool:
        return not (self.buckets or self.budgets or self.leases)


def compile_chain(chain: tuple[Counter, ...], epoch: str | None) -> ChainSpec:
    buckets: list[Bucket] = []
    budgets: list[BudgetSpec] = []
    leases: list[LeaseSpec] = []
    for counter in chain:
        for r in counter.rate_limits:
            buckets.append(Bucket(f"{counter.id}|rate|{r.key}", counter.id, r.unit, r.per,
                                  r.limit, r.burst, PER_NS[r.per]))  # fmt: skip
        for b in counter.budgets:
            limit = _units(b.unit, b.limit)
            alert = _units(b.unit, b.limit * b.alert_threshold) if b.alert_threshold else None
            budgets.append(BudgetSpec(f"{counter.id}|budget|{b.key}", counter.id, b.unit,
                                      b.period, limit, alert))  # fmt: skip
        if counter.concurrency is not None:
            leases.append(LeaseSpec(f"{counter.id}|inflight", counter.id, counter.concurrency))
    return ChainSpec(
        tuple(c.id for c in chain), tuple(buckets), tuple(budgets), tuple(leases), epoch
    )


def _units(unit: str, amount: Decimal) -> int:
    # a usd limit has at most 12 places and an alert threshold 6: alerts round up, exactly
    return units(amount) if unit == "usd" else int(amount)
