"""The store's leased admission and settlement, sync and async: RedisStore hands a chain
with budgets (and a leased reservation) here when budget leasing is on. Apart from
redis_lease.py, which keeps the books these functions drive: here are the Redis calls and
what an unreachable or lost store means for them.
"""

from __future__ import annotations

from typing import Any

from runtime.bundle.errors import BudgetExceeded
from runtime.limits.base import Reservation
from runtime.limits.redis_codec import BYPASS, UNREACHABLE, _maybe_ran
from runtime.limits.redis_lease import Leased, Leases
from runtime.limits.redis_lease_lua import LEASE, UNLEASE
from runtime.limits.spec import BudgetSpec, ChainSpec


def owns(reservation: Reservation) -> bool:
    return isinstance(reservation.prepared, Leased)


def admit(leases: Leases, request_id: str, spec: ChainSpec, tokens: int, cost: int) -> Reservation:
    store = leases.store
    for attempt in range(2):
        if store.generation is None:
            try:
                store._start()
            except UNREACHABLE as exc:
                return store._unreachable(Reservation(request_id, spec, tokens, cost, (), ()), exc)
        chain, amounts, parts, acq = leases.begin(request_id, spec, tokens, cost)
        crossed: tuple[BudgetSpec, ...] = ()
        if acq is not None:
            try:
                leases.calls += 1
                result = store._eval(LEASE, acq.keys, acq.args)
            except UNREACHABLE as exc:
                leases.failed(request_id, acq)
                store._drop_demoted(exc)
                return store._unreachable(Reservation(request_id, spec, tokens, cost, (), ()), exc)
            got = _reply(leases, request_id, spec, amounts, acq, result)
            if got is None:  # fail-open after a lost generation: count afresh
                if attempt == 0:
                    try:
                        store._recover()
                    except UNREACHABLE as exc:
                        unsent = Reservation(request_id, spec, tokens, cost, (), ())
                        return store._unreachable(unsent, exc)
                    continue
                return store._bypass(request_id, spec, tokens, cost)
            parts, crossed = got
        inner = None
        if chain.rest is not None:
            try:
                inner = store.admit(request_id, chain.rest, tokens, cost)
            except BaseException:
                leases.undo(request_id, parts)
                raise
        return leases.reservation(request_id, spec, tokens, cost, amounts, parts, crossed, inner)
    raise AssertionError("unreachable")


def _reply(leases: Leases, request_id: str, spec: ChainSpec, amounts: tuple[int, ...],
           acq: Any, result: Any) -> Any:  # fmt: skip
    """LEASE's reply applied; a refusal stands only if the holdings cannot cover the whole
    request now (Leases.take_held)."""
    try:
        return leases.acquired_reply(request_id, acq, result)
    except BudgetExceeded:
        parts = leases.take_held(request_id, spec, amounts)
        if parts is None:
            raise
        return parts, ()


async def aadmit(
    leases: Leases, request_id: str, spec: ChainSpec, tokens: int, cost: int
) -> Reservation:
    store = leases.store
    if leases._adue():
        await leases.atick()
    for attempt in range(2):
        if store.generation is None:
            try:
                await store._astart()
            except UNREACHABLE as exc:
                return store._unreachable(Reservation(request_id, spec, tokens, cost, (), ()), exc)
        chain, amounts, parts, acq = leases.begin(request_id, spec, tokens, cost)
        crossed: tuple[BudgetSpec, ...] = ()
        if acq is not None:
            try:
                leases.calls += 1
                result = await store._aeval(LEASE, acq.keys, acq.args)
            except UNREACHABLE as exc:
                leases.failed(request_id, acq)
                await store._adrop_demoted(exc)
                return store._unreachable(Reservation(request_id, spec, tokens, cost, (), ()), exc)
            got = _reply(leases, request_id, spec, amounts, acq, result)
            if got is None:
                if attempt == 0:
                    try:
                        await store._arecover()
                    except UNREACHABLE as exc:
                        unsent = Reservation(request_id, spec, tokens, cost, (), ())
                        return store._unreachable(unsent, exc)
                    continue
                return store._bypass(request_id, spec, tokens, cost)
            parts, crossed = got
        inner = None
        if chain.rest is not None:
            try:
                inner = await store.aadmit(request_id, chain.rest, tokens, cost)
            except BaseException:
                leases.undo(request_id, parts)
                raise
        return leases.reservation(request_id, spec, tokens, cost, amounts, parts, crossed, inner)
    raise AssertionError("unreachable")


def settle(leases: Leases, reservation: Reservation, tokens: int, cost: int) -> bool:
    excess = leases.settle_local(reservation, tokens, cost)
    if excess is None:
        return False
    if excess:
        try:
            leases.calls += 1
            leases.returned_reply(excess, leases.store._eval(UNLEASE, *leases.unlease_call(excess)))
        except UNREACHABLE as exc:
            leases.unreturned(excess, _maybe_ran(exc))  # excesses queued: charged later
    inner = reservation.prepared.inner
    if inner is not None and inner.prepared != BYPASS:
        leases.store.settle(inner, tokens, cost)
    return True


async def asettle(leases: Leases, reservation: Reservation, tokens: int, cost: int) -> bool:
    excess = leases.settle_local(reservation, tokens, cost)
    if excess is None:
        return False
    if excess:
        try:
            leases.calls += 1
            call = leases.unlease_call(excess)
            leases.returned_reply(excess, await leases.store._aeval(UNLEASE, *call))
        except UNREACHABLE as exc:
            leases.unreturned(excess, _maybe_ran(exc))
    inner = reservation.prepared.inner
    if inner is not None and inner.prepared != BYPASS:
        await leases.store.asettle(inner, tokens, cost)
    return True
