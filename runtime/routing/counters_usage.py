"""Usage now, per counter: what every budget, rate limit and concurrency limit of the
catalog has used in its current window, read from the store (`Router.usage`).

Budgets: `spent` is what settled requests cost, `reserved` what admitted, unsettled requests
hold (their estimates), `remaining` what admission would still allow (limit − spent −
reserved). Rate limits: `remaining` is what the bucket would admit now, `spent` the rest of
its burst. Concurrency: `spent` is the leases held. Money is exact (Decimal USD)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from runtime.bundle.load import Bundle, Counter
from runtime.bundle.money import dollars, usd
from runtime.bundle.periods import NS_PER_DAY, span
from runtime.limits.base import Store
from runtime.limits.spec import Bucket, BudgetSpec, LeaseSpec, compile_chain

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class CounterUsage:
    counter: str  # "organization", "workspace/support", "provider/openai-prod", …
    kind: str  # budget | rate_limit | concurrency
    unit: str  # usd | tokens | requests
    limit: Decimal | int
    spent: Decimal | int
    reserved: Decimal | int | None  # None: a leased budget (spent is what was granted)
    remaining: Decimal | int
    period: str | None = None  # budgets: daily … <N>d; rate limits: second … day
    window_start: dt.datetime | None = None  # budgets, UTC
    window_end: dt.datetime | None = None  # None: a budget of period `none`
    alert_at: Decimal | int | None = None  # budgets: the amount its alert fires at

    @property
    def level(self) -> str:
        return self.counter.partition("/")[0]

    @property
    def name(self) -> str | None:
        return self.counter.partition("/")[2] or None

    @property
    def used(self) -> Decimal:
        """The share of the limit taken (spent + reserved), 0 to 1 and beyond."""
        if not self.limit:
            return Decimal(1) if self.spent or self.reserved else Decimal(0)
        return (Decimal(self.spent) + Decimal(self.reserved or 0)) / Decimal(self.limit)

    def to_json(self) -> dict[str, Any]:
        def shown(value: Decimal | int) -> str | int:
            return dollars(value) if isinstance(value, Decimal) else value

        out: dict[str, Any] = {
            "counter": self.counter, "level": self.level, "name": self.name, "kind": self.kind,
            "unit": self.unit, "limit": shown(self.limit), "spent": shown(self.spent),
            "reserved": shown(self.reserved) if self.reserved is not None else None,
            "remaining": shown(self.remaining),
            "period": self.period,
        }  # fmt: skip
        if self.kind == "budget":
            out["window_start"] = _iso(self.window_start)
            out["window_end"] = _iso(self.window_end)
            out["alert_at"] = shown(self.alert_at) if self.alert_at is not None else None
        return out


def counters_of(bundle: Bundle, workspace: str | None) -> list[Counter]:
    """Every counter of the catalog, or those a workspace's requests are charged to."""
    if workspace is None:
        return [bundle.counters[cid] for cid in sorted(bundle.counters)]
    ws = bundle.workspace(workspace)  # raises UnknownWorkspace
    ids = {"organization", ws.counter}
    for provider in bundle.usable_providers(workspace):
        ids.update(c.id for c in bundle.chain(workspace, provider.slug))
    return [bundle.counters[cid] for cid in sorted(ids)]


def read_usage(
    store: Store, counters: Iterable[Counter], epoch: str | None, now_ns: int
) -> list[CounterUsage]:
    spec = compile_chain(tuple(c for c in counters if not c.empty), epoch)
    day = now_ns // NS_PER_DAY
    windows = [span(g.period, day, epoch) for g in spec.budgets]
    snap = store.snapshot([(g, w[0]) for g, w in zip(spec.budgets, windows, strict=True)],
                          spec.buckets, spec.leases)  # fmt: skip
    found = [_budget(g, w, held) for g, w, held in zip(spec.budgets, windows, snap.budgets,
                                                       strict=True)]  # fmt: skip
    found += [_bucket(b, free) for b, free in zip(spec.buckets, snap.buckets, strict=True)]
    found += [_lease(lease, n) for lease, n in zip(spec.leases, snap.leases, strict=True)]
    return sorted(found, key=lambda u: (u.counter, u.kind, u.unit, u.period or ""))


def _budget(g: BudgetSpec, window: tuple[str, int, int | None],
            held: tuple[int, int | None]) -> CounterUsage:  # fmt: skip
    charged, reserved = held
    if reserved is not None:
        reserved = max(min(reserved, charged), 0)

    def amount(n: int) -> Decimal | int:
        return usd(n) if g.unit == "usd" else n

    _, first, after = window
    return CounterUsage(
        g.counter, "budget", g.unit, amount(g.limit), amount(charged - (reserved or 0)),
        amount(reserved) if reserved is not None else None,
        amount(max(g.limit - charged, 0)), g.period, _day(first),
        _day(after) if after is not None else None,
        amount(g.alert_at) if g.alert_at is not None else None,
    )  # fmt: skip


def _bucket(b: Bucket, free: int) -> CounterUsage:
    free = min(free, b.burst)
    return CounterUsage(b.counter, "rate_limit", b.unit, b.limit, b.burst - free, 0, free,
                        b.per)  # fmt: skip


def _lease(lease: LeaseSpec, held: int) -> CounterUsage:
    return CounterUsage(lease.counter, "concurrency", "requests", lease.limit, held, 0,
                        max(lease.limit - held, 0))  # fmt: skip


def _day(day: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(days=day)


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when is not None else None
