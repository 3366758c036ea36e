"""A ticket: one admitted attempt, settled once with the real usage (or cancelled, which
charges the input only and releases the lease)."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from types import TracebackType

from runtime.bundle.money import Estimate, Usage, usd
from runtime.bundle.price_tables import requested_tier
from runtime.limits.base import Reservation, Store
from runtime.routing.plan import Attempt


class Ticket:
    """One admitted attempt. Settle it with the real usage; leaving the `with` block without
    settling (an error, a cancel) charges the input only and releases the lease."""

    def __init__(
        self,
        store: Store,
        attempt: Attempt,
        reservation: Reservation,
        estimate: Estimate,
        batch: bool = False,
    ) -> None:
        self.store = store
        self.attempt = attempt
        self.reservation = reservation
        self.estimate = estimate
        self.batch = batch  # admitted as a Batch API request: charged at batch prices
        self.units: int | None = None  # the settled cost in units of 1e-16 USD
        self.usage: Usage | None = None  # what it was settled with
        self.billed = True  # False: settled as an attempt the upstream did not bill (cost 0)
        # one settlement, whoever asks: the first caller claims it (under the lock) and
        # tells the store; threads wait for it (the lock), coroutines await it (the task),
        # and a caller that finds it claimed by the other API gets the claimed cost
        self._lock = threading.Lock()
        self._settling: asyncio.Future[None] | None = None
        self._claimed: int | None = None  # the cost the store is told, once claimed

    def __del__(self) -> None:
        """A ticket dropped unsettled (a caller that neither settled nor used `with`): the
        store settles it at what it reserved, at its next call, and releases its leases,
        which nothing else would (an async Redis store renewed them for ever, a memory store
        never freed them). Only handed over here: the collector may run this while the
        thread holds the store's lock."""
        if getattr(self, "_claimed", 0) is None:  # (not when __init__ itself failed)
            self.store.dropped(self.reservation)

    @property
    def request_id(self) -> str:
        return self.reservation.request_id

    @property
    def reserved(self) -> Decimal:
        return usd(self.reservation.cost)

    @property
    def cost(self) -> Decimal | None:
        """The settled cost in USD (None until settled)."""
        return usd(self.units) if self.units is not None else None

    @property
    def settled(self) -> bool:
        return self.units is not None

    def settle(self, usage: Usage, billed: bool = True) -> Decimal:
        """Reconcile the reservation with real usage; idempotent (returns the first cost).
        `billed=False`: an attempt the upstream did not bill (an error without usage, no
        answer at all) costs nothing, not even the model's `per_request` fee."""
        with self._lock:
            if self._claimed is None:
                cost = self._claimed = self.charge(usage) if billed else 0
                try:
                    self.store.settle(self.reservation, usage.tokens, cost)
                except BaseException:  # nothing was counted: it may be settled again
                    self._claimed = None
                    raise
                self.units, self.usage, self.billed = cost, usage, billed
            return usd(self._claimed)

    async def asettle(self, usage: Usage, billed: bool = True) -> Decimal:
        """As `settle`. Settlement goes on if the caller is cancelled meanwhile (its store
        call may have counted already): a later or concurrent call, `__aexit__`'s cancel
        too, awaits that one and returns its cost."""
        if self.units is None:
            await asyncio.shield(self._settlement(usage, billed))
        assert self._claimed is not None
        return usd(self._claimed)

    def _settlement(self, usage: Usage, billed: bool) -> asyncio.Future[None]:
        """The settlement under way, or one started with `usage` (again, if the last
        failed: a store that could not be reached raised and counted nothing)."""
        if self._settling is None or (self._settling.done() and self._claimed is None):
            self._settling = asyncio.ensure_future(self._asettle(usage, billed))
        return self._settling

    async def _asettle(self, usage: Usage, billed: bool) -> None:
        with self._lock:
            if self._claimed is not None:  # settled (or being settled) through `settle`
                return
            cost = self._claimed = self.charge(usage) if billed else 0
        try:
            await self.store.asettle(self.reservation, usage.tokens, cost)
        except BaseException:
            self._claimed = None
            raise
        self.units, self.usage, self.billed = cost, usage, billed

    def charge(self, usage: Usage) -> int:
        """What `usage` costs in units of 1e-16 USD: at the service tier the upstream reported, else
        the requested one; at the long-context tier of its prompt; batch if admitted so."""
        card = self.attempt.rates
        if card.flat is not None:
            return card.flat.cost(usage)
        return card.cost(usage, requested_tier(self.attempt.params), self.batch)

    def _input_only(self) -> Usage:
        return Usage(input_tokens=self.estimate.input_tokens)

    def cancel(self) -> Decimal:
        """A request that never completed still pays for its input."""
        return self.settle(self._input_only())

    async def acancel(self) -> Decimal:
        return await self.asettle(self._input_only())

    async def asettle_through_cancel(self, usage: Usage | None, billed: bool = True) -> Decimal:
        """Settle with `usage` (None: cancel, the input only) even while the calling task is
        being cancelled (a client went away): in process when the store settles inline, as
        nothing can interrupt it, else in a task shielded from the cancellation."""
        if self.store.settles_inline:
            return self.cancel() if usage is None else self.settle(usage, billed)
        if self.units is None:
            work = self._settlement(self._input_only() if usage is None else usage,
                                    billed or usage is None)  # fmt: skip
            try:
                await asyncio.shield(work)
            except asyncio.CancelledError:
                # the settlement ends before the cancel goes on (bounded by the store's own
                # timeouts): the caller's books read its cost from this ticket (`cost`)
                await asyncio.wait([work])
                raise
        assert self._claimed is not None
        return usd(self._claimed)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.units is None:
            self.cancel()

    async def __aenter__(self) -> Ticket:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.units is None:
            await self.acancel()
