"""The store interface every limits backend implements, sync and async, and the refusals
it raises. A store admits a whole chain atomically and settles a reservation once."""

from __future__ import annotations

import abc
from decimal import Decimal
from typing import Any, NamedTuple

from runtime.errors import BudgetExceeded, ConcurrencyExceeded, RateLimited
from runtime.limits.spec import Bucket, BudgetSpec, ChainSpec, LeaseSpec
from runtime.money import usd


class Reservation(NamedTuple):
    """What one admission charged, so settlement corrects exactly that."""

    request_id: str
    spec: ChainSpec
    tokens: int
    cost: int  # pico-USD reserved
    windows: tuple[str, ...]  # budget windows charged, one per spec.budgets
    ends: tuple[int | None, ...]  # when each window ends (ns), for expiry
    alerts: tuple[BudgetSpec, ...] = ()  # budgets whose alert threshold this crossed
    prepared: Any = None  # the store's own precomputed rows, if it keeps any


class Store(abc.ABC):
    """A limits backend. `admit` checks and charges every counter of the chain, or none."""

    @abc.abstractmethod
    def admit(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation: ...

    @abc.abstractmethod
    def settle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        """Correct the reservation to the real usage and release leases; False if this
        reservation was already settled (settlement is idempotent)."""

    async def aadmit(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation:
        return self.admit(request_id, spec, tokens, cost)

    async def asettle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        return self.settle(reservation, tokens, cost)

    def close(self) -> None:  # noqa: B027 - optional for stores without resources
        """Release connections; the default store has none."""


def rate_refusal(b: Bucket, tat: int, now: int, units: int) -> RateLimited:
    """The refusal for a full bucket, with when it will admit `units` again."""
    if b.limit == 0 or units > b.burst:
        return RateLimited(b.counter, b.unit, b.per, b.limit, retry_after=None)
    ready = (tat + units * b.per_ns - b.burst * b.per_ns) / b.limit  # ns since 1970
    return RateLimited(b.counter, b.unit, b.per, b.limit, retry_after=max(0.0, (ready - now) / 1e9))


def budget_refusal(g: BudgetSpec, spent: int) -> BudgetExceeded:
    def shown(amount: int) -> Decimal | int:
        return usd(amount) if g.unit == "usd" else amount

    return BudgetExceeded(
        g.counter, g.unit, g.period, shown(g.limit), shown(max(g.limit - spent, 0))
    )


def lease_refusal(lease: LeaseSpec) -> ConcurrencyExceeded:
    return ConcurrencyExceeded(lease.counter, lease.limit)
