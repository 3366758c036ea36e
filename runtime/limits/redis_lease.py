"""Budget leasing for the Redis store (docs/scaling.md, sections 3 and 4): opt-in with
`RedisStore(..., lease_budgets=True)`.

A replica (one RedisStore) takes blocks of each budget window from Redis ahead of use and
admits requests locally within them: reserve before spend, so a budget is never granted past
its limit and, when estimates bound usage, never billed past it. Per budget window Redis
keeps, in the budget key, the **granted** total (what replicas hold plus what they spent) and
a hash `{ns}:l:<budget>|<window>` of `replica id -> (net granted to it, expiry ms)` (a usd
budget's key is `{ns}:bu:…` and its hash `{ns}:lu:…`: see budget_key in redis_codec.py).

- Admission takes each budget's amount from the replica's holding; a budget short of it is
  acquired with one LEASE script for all of the chain's short budgets at once (all or none):
  `grant = max(need, min(block, room // (2 N)))`, `room = limit - granted`, N = the replicas
  registered in `{ns}:lr` (or `lease_replicas`). Refused (BudgetExceeded) when `room < need`.
  The chain's rate limits and concurrency go through the exact ADMIT/SETTLE scripts (a chain
  with only budgets makes no Redis call while its blocks last).
- Settlement is local: a refund goes back into the holding, an excess is taken from it, and
  what the holding cannot cover is charged to Redis at once (UNLEASE).
- A holding with nothing in flight for `lease_idle` seconds, or of a window that ended, is
  returned (UNLEASE); `close()` returns everything. Leases are renewed every ttl/3
  (LEASE_RENEW). A lease not renewed for its ttl (a dead replica) is **forfeited** by the next
  LEASE on that window: its entry is dropped and its amount stays granted (recorded in the
  hash's `~forfeited` field), never returned.
- The generation marker is checked by every script; a lost generation drops all holdings.

Here: the admission and settlement bookkeeping (Leases). Apart: the scripts
(redis_lease_lua.py), the holdings and their upkeep (redis_lease_holdings.py), and the
store's leased admission and settlement, which make the Redis calls (redis_lease_admit.py).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from runtime.bundle.periods import NS_PER_DAY, epoch_day, kind, span
from runtime.limits.base import Reservation, budget_refusal, reused_id
from runtime.limits.redis_codec import GENERATION_LOST, budget_key, pack_numbers
from runtime.limits.redis_lease_holdings import Holding, LeaseHoldings, _join, _split
from runtime.limits.redis_lease_lua import LEASE, LEASE_RENEW, UNLEASE
from runtime.limits.spec import BudgetSpec, ChainSpec

# what this module held before its split (but admit and settle: redis_lease_admit.py)
__all__ = [
    "LEASE",
    "LEASE_RENEW",
    "SETTLED_MEMORY",
    "UNLEASE",
    "Holding",
    "LeaseHoldings",
    "Leased",
    "Leases",
]

SETTLED_MEMORY = 100_000  # leased request ids remembered for idempotent settlement


class Leased(NamedTuple):
    """Reservation.prepared of a leased admission."""

    generation: str | None
    holdings: tuple[Holding | None, ...]  # per budget (None: bypassed, fail-open)
    amounts: tuple[int, ...]  # per budget, what the admission took
    inner: Reservation | None  # the exact admission of the chain's other counters


class _Chain:
    """One chain's leasing arguments for one UTC day of the client's clock."""

    __slots__ = ("day", "ends", "first", "keys", "last", "rest", "spec", "static", "windows")

    def __init__(self, spec: ChainSpec, day: int, tag: str) -> None:
        self.spec, self.day = spec, day
        spans = [span(g.period, day, spec.epoch) for g in spec.budgets]
        self.windows = tuple(s[0] for s in spans)
        self.first = tuple(s[1] * 86_400 for s in spans)
        self.last = tuple(-1 if s[2] is None else s[2] * 86_400 for s in spans)
        self.ends = tuple(None if s[2] is None else s[2] * NS_PER_DAY for s in spans)
        self.keys = tuple(budget_key(tag, g, w) for g, w in zip(spec.budgets, self.windows,
                                                                 strict=True))  # fmt: skip
        epoch = epoch_day(spec.epoch)
        self.static = tuple((*kind(g.period), epoch) for g in spec.budgets)
        rest = ChainSpec(spec.counters, spec.buckets, (), spec.leases, spec.epoch)
        self.rest = None if rest.empty else rest


class _Acquire(NamedTuple):
    """An acquisition under way: what was taken locally, and the LEASE call for the rest."""

    chain: _Chain
    amounts: tuple[int, ...]
    parts: list[tuple[Holding | None, int]]  # per budget: holding taken from, amount taken
    sent: tuple[int, ...]  # indexes of the budgets asked for
    keys: list[str]
    args: list[Any]


class Leases(LeaseHoldings):
    """A store's leases (LeaseHoldings) and what admission and settlement do with them:
    take from the holdings, acquire blocks with LEASE, correct the holdings at settlement."""

    # -- admission ----------------------------------------------------------------------
    def chain(self, spec: ChainSpec) -> _Chain:
        day = self.store._day()
        found = self.chains.get(id(spec))
        if found is None or found.spec is not spec or found.day != day:
            found = _Chain(spec, day, self.store.tag)
            self.chains[id(spec)] = found
        return found

    def _hkey(self, key: str) -> str:
        # `{ns}:b:…` -> `{ns}:l:…`, `{ns}:bu:…` -> `{ns}:lu:…`: one rule, here and in LEASE
        return f"{key[: self._tag_len]}:l{key[self._tag_len + 2 :]}"

    def begin(
        self, request_id: str, spec: ChainSpec, tokens: int, cost: int
    ) -> tuple[_Chain, tuple[int, ...], list[tuple[Holding | None, int]], _Acquire | None]:
        """Take what the holdings cover; the LEASE call for what they do not, if any."""
        self._ensure_thread()
        chain = self.chain(spec)
        amounts = tuple(g.amount(tokens, cost) for g in spec.budgets)
        now_ns = self.store.clock() + self.store._skew_ns
        generation = self.store.generation
        parts: list[tuple[Holding | None, int]] = []
        short: list[int] = []
        with self.lock:
            if request_id in self.live or request_id in self.settled:
                raise reused_id(request_id, request_id in self.settled)
            self.live[request_id] = None
            for j, g in enumerate(spec.budgets):
                h = self.holdings.get(g.key)
                if h is not None and (h.end_ns is not None and now_ns >= h.end_ns):
                    self._retire(g.key, h)
                    h = None
                if h is None or h.dead:
                    parts.append((None, 0))
                    short.append(j)
                    continue
                part = min(h.held, amounts[j])
                h.held -= part
                h.inflight += 1
                h.last = time.monotonic()
                parts.append((h, part))
                if part < amounts[j]:
                    short.append(j)
            if not short:
                return chain, amounts, parts, None
            now = time.monotonic()
            for j in short:  # a refusal seen less than lease_refusal_ttl ago
                g = spec.budgets[j]
                seen = self.refused.get(g.key)
                if seen is not None and now < seen[0] and amounts[j] - parts[j][1] > seen[1]:
                    self._give_back(parts)
                    self.live.pop(request_id, None)
                    raise budget_refusal(g, g.limit - seen[1])
            busy = set()  # budgets another acquisition is under way for: ask for the need only
            for j in short:
                key = spec.budgets[j].key
                if self.acquiring.get(key, 0):
                    busy.add(j)
                self.acquiring[key] = self.acquiring.get(key, 0) + 1
        numbers: list[int] = [len(short), int(self.store.fail_open), int(self.ttl * 1000),
                              self.replicas, self._tag_len]  # fmt: skip
        keys: list[str] = []
        for j in short:
            g = spec.budgets[j]
            usd = g.unit == "usd"
            h, part = parts[j]
            key = h.key if h is not None else chain.keys[j]
            keys += [key, self._hkey(key)]
            block = 0 if j in busy else max(int(g.limit * self.block), amounts[j])
            xh, xl = _split(g.alert_at, usd) if g.alert_at is not None else (-1, -1)
            first, last = chain.first[j], chain.last[j]
            if h is not None and h.window != chain.windows[j]:  # the server's window: no guess
                first, last = 0, -1 if h.end_ns is None else h.end_ns // 10**9
            numbers += [*_split(amounts[j] - part, usd), *_split(amounts[j], usd),
                        *_split(block, usd), *_split(g.limit, usd), first, last, xh, xl,
                        *chain.static[j]]  # fmt: skip
        store = self.store
        keys += [store._marker, store._registry, f"{store.tag}:lr"]
        args = [pack_numbers(numbers), self.rid, generation]
        return chain, amounts, parts, _Acquire(chain, amounts, parts, tuple(short), keys, args)

    def take_held(
        self, request_id: str, spec: ChainSpec, amounts: tuple[int, ...]
    ) -> list[tuple[Holding | None, int]] | None:
        """After LEASE refused: the parts of an admission from the holdings alone, when they
        now cover all of it, else None. Requests admitted together each find the holding
        short and ask Redis; the grants of the first ones top it up while the last ones are
        refused by a budget that this replica holds the rest of. Without this, those units
        sat in the holding while the requests that could use them were refused."""
        now_ns = self.store.clock() + self.store._skew_ns
        with self.lock:
            if request_id in self.live or request_id in self.settled:
                return None  # the caller's id is in use: its refusal stands
            found: list[Holding] = []
            for j, g in enumerate(spec.budgets):
                h = self.holdings.get(g.key)
                ended = h is not None and h.end_ns is not None and now_ns >= h.end_ns
                if h is None or h.dead or ended or h.held < amounts[j]:
                    return None
                found.append(h)
            parts: list[tuple[Holding | None, int]] = []
            for h, amount in zip(found, amounts, strict=True):
                h.held -= amount
                h.inflight += 1
                h.last = time.monotonic()
                parts.append((h, amount))
            self.live[request_id] = None
            return parts

    def _acquired(self, budget: str) -> None:
        left = self.acquiring.pop(budget, 1) - 1
        if left > 0:
            self.acquiring[budget] = left

    def _give_back(self, parts: list[tuple[Holding | None, int]]) -> None:
        """Undo the local takes of an admission that did not happen (under the lock)."""
        for h, part in parts:
            if h is not None:
                h.held += part
                h.inflight -= 1

    def failed(self, request_id: str, acq: _Acquire | None) -> None:
        """An acquisition or the exact admission failed: nothing was admitted."""
        with self.lock:
            if acq is not None:
                for j in acq.sent:
                    self._acquired(acq.chain.spec.budgets[j].key)
            self._give_back(acq.parts if acq is not None else [])
            self.live.pop(request_id, None)

    def undo(self, request_id: str, parts: list[tuple[Holding | None, int]]) -> None:
        with self.lock:
            self._give_back(parts)
            self.live.pop(request_id, None)

    def acquired_reply(self, request_id: str, acq: _Acquire, result: Any) -> Any:
        """Apply LEASE's reply: the parts per budget, the crossed alerts; raise a refusal.
        Returns None when a fail-open store must join a new generation and try again."""
        store, spec = self.store, acq.chain.spec
        code = int(result[0])
        if code == 4:
            self.failed(request_id, acq)
            if result[1] == b"generation":
                self.drop()
                error = store._lost(GENERATION_LOST)
                if store.fail_open:
                    return None
                raise error
            raise store._lost(f"the counter `{_text(result[2])}` vanished before its window ended")
        if code == 2:
            self.failed(request_id, acq)
            j = acq.sent[int(result[1]) - 1]
            g = spec.budgets[j]
            granted = _join(int(result[2]), int(result[3]), g.unit == "usd")
            with self.lock:
                self.refused[g.key] = (time.monotonic() + self.refusal_ttl, g.limit - granted)
            raise budget_refusal(g, granted)
        grants, crossed_at, corrected = result[1], result[2], result[3]
        fixed: dict[int, tuple[str, int]] = {}
        for at in range(0, len(corrected), 3):
            fixed[acq.sent[int(corrected[at]) - 1]] = (_text(corrected[at + 1]),
                                                       int(corrected[at + 2]))  # fmt: skip
        if fixed:
            store._skew_ns = int(result[5]) * 10**9 - store.clock()
        for key in result[4]:
            store._lost(f"the counter `{_text(key)}` vanished before its window ended")
        parts = list(acq.parts)
        with self.lock:
            for n, j in enumerate(acq.sent):
                g = spec.budgets[j]
                usd = g.unit == "usd"
                grant = _join(int(grants[2 * n]), int(grants[2 * n + 1]), usd)
                self.acquired += grant
                self.refused.pop(g.key, None)
                h, part = parts[j]
                self._acquired(g.key)
                if j in fixed:  # the server's window: this replica held nothing there
                    if h is not None:
                        h.held += part
                        h.inflight -= 1
                    h, part = None, 0
                    label, end_s = fixed[j]
                    key = budget_key(store.tag, g, label)
                    end_ns: int | None = None if end_s < 0 else end_s * 10**9
                else:
                    key, end_ns = acq.keys[2 * n], acq.chain.ends[j]
                if h is None or h.dead:
                    h = self.holdings.get(g.key)
                    if h is None or h.key != key or h.dead:
                        if h is not None:
                            self._retire(g.key, h)
                        h = Holding(g.key, key, self._hkey(key), key.rsplit("|", 1)[1], end_ns)
                        self.holdings[g.key] = h
                    h.inflight += 1
                h.held += grant - (acq.amounts[j] - part)
                h.last = time.monotonic()
                parts[j] = (h, acq.amounts[j])
        crossed = tuple(spec.budgets[acq.sent[int(j) - 1]] for j in crossed_at)
        return parts, crossed

    def reservation(self, request_id: str, spec: ChainSpec, tokens: int, cost: int,
                    amounts: tuple[int, ...], parts: list[tuple[Holding | None, int]],
                    crossed: tuple[BudgetSpec, ...],
                    inner: Reservation | None) -> Reservation:  # fmt: skip
        holdings = tuple(h for h, _ in parts)
        windows = tuple(h.window if h is not None else "" for h in holdings)
        ends = tuple(h.end_ns if h is not None else None for h in holdings)
        lease = Leased(self.store.generation, holdings, amounts, inner)
        return Reservation(request_id, spec, tokens, cost, windows, ends, crossed, lease)

    # -- settlement ---------------------------------------------------------------------
    def settle_local(self, reservation: Reservation, tokens: int, cost: int) -> list[Any] | None:
        """Correct the holdings; UNLEASE items for the excesses they cannot cover (charged
        in Redis at once) and for refunds that pay earlier excesses back (returned at once:
        they keep `granted = spent + held` exact after an excess). None when this reservation
        was settled already."""
        lease: Leased = reservation.prepared
        rid = reservation.request_id
        excess: list[tuple[Holding, int, bool, int]] = []
        with self.lock:
            if rid not in self.live:
                return None
            del self.live[rid]
            self.settled[rid] = None
            if len(self.settled) > SETTLED_MEMORY:
                self.settled.popitem(last=False)
            now = time.monotonic()
            for h, amount, g in zip(lease.holdings, lease.amounts, reservation.spec.budgets,
                                    strict=True):  # fmt: skip
                if h is None:
                    continue
                h.inflight -= 1
                h.last = now
                if h.dead:
                    continue  # its counters were lost: nothing to correct
                delta = g.amount(tokens, cost) - amount
                usd = g.unit == "usd"
                if delta <= 0:
                    pay = min(-delta, h.owed)
                    h.owed -= pay
                    h.held += -delta - pay
                    if pay:
                        excess.append((h, pay, usd, 2))
                else:
                    cover = min(h.held, delta)
                    h.held -= cover
                    if delta > cover:
                        h.owed += delta - cover
                        excess.append((h, delta - cover, usd, 1))
        return excess


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
