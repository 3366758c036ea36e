"""The store interface every limits backend implements, sync and async, and the refusals
it raises. A store admits a whole chain atomically and settles a reservation once.

Request ids are single-use. A store refuses (InvalidRequest, 409) to admit an id that is
live (admitted, not settled) or that it remembers as settled: settlement is idempotent per
id, so a second admission under a settled id would have its settlement dropped as a retry,
and a live one would hold a second lease that nothing releases. How long a settled id is
remembered is each store's window (MemoryStore: the last SETTLED_MEMORY ids; RedisStore:
`settled_ttl`). Chains without any limit are not tracked: nothing is charged or leased.
Ids a caller chooses become Redis keys: 1 to 128 characters of `A-Z a-z 0-9 _ . : -`."""

from __future__ import annotations

import abc
import re
from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from runtime.bundle.errors import BudgetExceeded, ConcurrencyExceeded, InvalidRequest, RateLimited
from runtime.bundle.money import usd
from runtime.limits.spec import Bucket, BudgetSpec, ChainSpec, LeaseSpec

REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class Reservation(NamedTuple):
    """What one admission charged, so settlement corrects exactly that."""

    request_id: str
    spec: ChainSpec
    tokens: int
    cost: int  # units of 1e-16 USD reserved
    windows: tuple[str, ...]  # budget windows charged, one per spec.budgets
    ends: tuple[int | None, ...]  # when each window ends (ns), for expiry
    alerts: tuple[BudgetSpec, ...] = ()  # budgets whose alert threshold this crossed
    prepared: Any = None  # the store's own precomputed rows, if it keeps any


class Snapshot(NamedTuple):
    """What a store holds now for some counters, in the order they were asked for."""

    # (charged: settled + reserved, reserved; None where only the sum is known: leasing)
    budgets: tuple[tuple[int, int | None], ...]
    buckets: tuple[int, ...]  # units a bucket would admit now
    leases: tuple[int, ...]  # leases held


class Store(abc.ABC):
    """A limits backend. `admit` checks and charges every counter of the chain, or none."""

    # True when `settle` completes in process, without I/O: an async caller may then settle
    # synchronously, which no cancellation can interrupt (no task to shield it with)
    settles_inline = False

    def snapshot(
        self,
        budgets: Sequence[tuple[BudgetSpec, str]],
        buckets: Sequence[Bucket],
        leases: Sequence[LeaseSpec],
    ) -> Snapshot:
        """The state of these budgets (each in a window), buckets and leases."""
        raise NotImplementedError(f"{type(self).__name__} cannot report usage")

    @abc.abstractmethod
    def admit(self, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation: ...

    @abc.abstractmethod
    def settle(self, reservation: Reservation, tokens: int, cost: int) -> bool:
        """Correct the reservation to the real usage and release leases; False if this
        reservation was already settled (settlement is idempotent)."""

    # reservations of tickets dropped unsettled, for a store that settles them (it makes
    # its own deque; None: a store that keeps none)
    _dropped: deque[Reservation] | None = None

    def dropped(self, reservation: Reservation) -> None:
        """A ticket was dropped unsettled: settle `reservation` at what it reserved, and
        release its leases, at the store's next call (`_settle_dropped`). Called from a
        finalizer, so it only hands the reservation over: deque.append takes no lock (the
        collector may run it while this thread holds one)."""
        if self._dropped is not None:
            self._dropped.append(reservation)

    def _next_dropped(self) -> Reservation | None:
        try:
            return self._dropped.popleft() if self._dropped is not None else None
        except IndexError:  # (another thread took the last)
            return None

    def _settle_dropped(self) -> None:
        """Settle dropped tickets at what they reserved: their leases are released."""
        while (held := self._next_dropped()) is not None:
            self.settle(held, held.tokens, held.cost)

    def claim(self, key: str, ttl_s: int) -> bool:
        """True for the first caller to claim `key` until it expires: a once-only action
        (a budget alert) across every process that shares the store."""
        raise NotImplementedError(f"{type(self).__name__} cannot claim keys")

    async def aclaim(self, key: str, ttl_s: int) -> bool:
        return self.claim(key, ttl_s)

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


def checked_request_id(request_id: object) -> str:
    """A caller's request id, if it is a short string of safe characters."""
    if type(request_id) is str and REQUEST_ID.fullmatch(request_id):
        return request_id
    found = (
        f"{len(request_id)} characters"
        if isinstance(request_id, str)
        else "a " + type(request_id).__name__
    )
    raise InvalidRequest(
        "request_id", f"must be 1 to 128 characters of A-Z a-z 0-9 _ . : -, found {found}"
    )


def reused_id(request_id: str, settled: bool) -> InvalidRequest:
    """The refusal for an id the store still knows: 409, whatever the limits say."""
    if settled:
        problem = f"`{request_id}` was already admitted and settled: request ids are single-use"
    else:
        problem = f"`{request_id}` is already admitted and not settled yet"
    return InvalidRequest("request_id", problem, status=409)
