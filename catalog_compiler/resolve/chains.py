"""Facts about counter chains the semantic checks ask (W0500, E0501): whether an ancestor's
limit is always at least as tight as a child's (so the child can never bind), and which
counter of a chain is the usd budget that needs prices."""

from __future__ import annotations

from fractions import Fraction

from catalog_compiler.model.common import PER_SECONDS
from catalog_compiler.model.types import PERIOD_RE
from runtime.bundle.load import BudgetLimit, Counter, Prices, RateLimit, budget_words, rate_words


def contains(outer: str, inner: str) -> bool:
    """Does every `inner` period lie inside one `outer` period (both calendar-aligned)?"""
    if outer == inner or outer == "none":
        return True
    outer_days = days(outer)
    inner_days = days(inner)
    if inner == "daily":
        return outer in ("weekly", "monthly") or outer_days is not None
    return outer_days is not None and inner_days is not None and outer_days % inner_days == 0


def days(period: str) -> int | None:
    match = PERIOD_RE.match(period)
    return int(match.group(1)) if match else None


Reason = tuple[str, str, str]  # (ancestor counter, its limit in words, its element tail)


def tighter_budget(child: BudgetLimit, chain: list[Counter]) -> Reason | None:
    for counter in chain:
        for b in counter.budgets:
            if b.unit == child.unit and contains(b.period, child.period) and b.limit <= child.limit:
                return counter.id, budget_words(b), f"budgets/{b.key}"
    return None


def rate(r: RateLimit) -> Fraction:
    return Fraction(r.limit, PER_SECONDS[r.per])


def tighter_rate(child: RateLimit, chain: list[Counter]) -> Reason | None:
    for counter in chain:
        for r in counter.rate_limits:
            if r.unit == child.unit and rate(r) <= rate(child) and r.burst <= child.burst:
                what = rate_words(r)
                return counter.id, what, f"rate_limits/{r.key}"
    return None


def tighter_concurrency(child: int, chain: list[Counter]) -> Reason | None:
    for counter in chain:
        if counter.concurrency is not None and counter.concurrency <= child:
            return counter.id, f"{counter.concurrency} requests in flight", "concurrency"
    return None


def missing_prices(mode: str, prices: Prices) -> list[str]:
    needed = ("input",) if mode == "embedding" else ("input", "output")
    return [f for f in needed if prices.get(f) is None]


def usd_counter(chain: list[Counter]) -> Counter | None:
    return next((c for c in chain if any(b.unit == "usd" for b in c.budgets)), None)


def usd_key(counter: Counter) -> str:
    return next(b.key for b in counter.budgets if b.unit == "usd")
