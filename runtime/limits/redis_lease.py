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
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from runtime.limits.base import Reservation, budget_refusal, reused_id
from runtime.limits.lua import _ARGS, CALENDAR, FOREVER, LOW
from runtime.limits.redis_codec import (
    BYPASS,
    GENERATION_LOST,
    UNREACHABLE,
    _maybe_ran,
    budget_key,
    pack_numbers,
)
from runtime.limits.spec import BudgetSpec, ChainSpec
from runtime.periods import NS_PER_DAY, epoch_day, kind, span

if TYPE_CHECKING:
    from runtime.limits.redis_store import RedisStore

log = logging.getLogger("runtime.limits.redis")
SETTLED_MEMORY = 100_000  # leased request ids remembered for idempotent settlement

_PAIRS_RAW = r"""
local function less(ah, al, bh, bl) return ah < bh or (ah == bh and al < bl) end
local function add(ah, al, bh, bl)
  local h, l = ah + bh, al + bl
  if l >= __LOW__ then h = h + 1; l = l - __LOW__ end
  return h, l
end
local function sub(ah, al, bh, bl)
  local h, l = ah - bh, al - bl
  if l < 0 then h = h - 1; l = l + __LOW__ end
  return h, l
end
local function entry(s)
  if not s then return 0, 0, -1 end
  return struct.unpack('<ddd', s)
end
"""
_PAIRS = _PAIRS_RAW.replace("__LOW__", str(LOW))  # pairs as in lua.py: lows below LOW

# Acquire blocks. Numbers: ng, accept_loss, ttl ms, fixed N (0: the registry's), tag length;
# per budget: need h l, full amount h l (the need when the window is corrected), block h l,
# limit h l, window start and end (unix s; end -1 when none), alert h l (-1 when none),
# period kind, N of <N>d, epoch day. KEYS: per budget its key and its lease hash, then the
# generation marker, the registry of counter keys, the registry of replicas. ARGV: numbers,
# replica id, generation. Replies: {0, grants (h, l per budget), crossed alerts, corrected
# windows (j, label, end s), vanished keys accepted, server seconds}; {2, j, granted h, l};
# {4, 'generation', marker} or {4, 'key', key}.
_LEASE_BODY = r"""
local t = redis.call('TIME')
local secs = tonumber(t[1])
local ms = secs * 1000 + math.floor(tonumber(t[2]) / 1000)
local ng, accept, ttl, fixed, taglen = V[1], V[2], V[3], V[4], V[5]
local marker, registry, replicas = KEYS[2 * ng + 1], KEYS[2 * ng + 2], KEYS[2 * ng + 3]
local g = redis.call('GET', marker)
if g ~= ARGV[3] then return {4, 'generation', g} end
redis.call('ZREMRANGEBYSCORE', replicas, '-inf', ms)
redis.call('ZADD', replicas, ms + ttl, rid)
local n = fixed
if n <= 0 then n = redis.call('ZCARD', replicas) end
local a = 6
local writes, grants, out, fresh, lost, crossed, corrected = {}, {}, {}, {}, {}, {}, {}
for j = 1, ng do
  local nh, nl, eh, el = V[a], V[a + 1], V[a + 2], V[a + 3]
  local bh, bl, lh, ll = V[a + 4], V[a + 5], V[a + 6], V[a + 7]
  local first, last = V[a + 8], V[a + 9]
  local xh, xl = V[a + 10], V[a + 11]
  local key, hkey = KEYS[2 * j - 1], KEYS[2 * j]
  if secs < first or (last >= 0 and secs >= last) then
    local label
    __CALENDAR__
    key, label, last = span(V[a + 12], V[a + 13], V[a + 14], key, secs)
    hkey = string.sub(key, 1, taglen) .. ':l' .. string.sub(key, taglen + 3)  -- as _hkey
    corrected[#corrected + 1] = j
    corrected[#corrected + 1] = label
    corrected[#corrected + 1] = last
    nh, nl = eh, el  -- another window: this replica holds nothing there
  end
  a = a + 15
  local s = redis.call('GET', key)
  if not s then
    local score = redis.call('ZSCORE', registry, key)
    if score and tonumber(score) > secs then
      if accept == 0 then return {4, 'key', key} end
      lost[#lost + 1] = key
    end
    fresh[#fresh + 1] = {key, last >= 0 and last + 86400 or __FOREVER__}
  end
  -- leases not renewed in time (dead replicas) are forfeited: dropped, never subtracted
  local entries = redis.call('HGETALL', hkey)
  for e = 1, #entries, 2 do
    if entries[e] ~= '~forfeited' then
      local h, l, exp = entry(entries[e + 1])
      if exp < ms then
        redis.call('HDEL', hkey, entries[e])
        local fh, fl = pair(redis.call('HGET', hkey, '~forfeited'))
        fh, fl = add(fh, fl, h, l)
        redis.call('HSET', hkey, '~forfeited', fmt(fh, fl))
      end
    end
  end
  local gh, gl = pair(s)
  local rh, rl = sub(lh, ll, gh, gl)
  if less(rh, rl, nh, nl) then
    return {2, j, string.format('%.0f', gh), string.format('%.0f', gl)}
  end
  local ch, cl = bh, bl
  local share = math.floor(rh / (2 * n))
  if less(share, 0, ch, cl) then ch, cl = share, 0 end
  if less(ch, cl, nh, nl) then ch, cl = nh, nl end
  local th, tl = add(gh, gl, ch, cl)
  if xh >= 0 and less(gh, gl, xh, xl) and not less(th, tl, xh, xl) then
    crossed[#crossed + 1] = j  -- an alert threshold crossed by this grant
  end
  writes[#writes + 1] = key
  writes[#writes + 1] = fmt(th, tl)
  grants[#grants + 1] = {hkey, ch, cl, last}
  out[#out + 1] = string.format('%.0f', ch)
  out[#out + 1] = string.format('%.0f', cl)
end
redis.call('MSET', unpack(writes))
for _, gr in ipairs(grants) do
  local h, l = entry(redis.call('HGET', gr[1], rid))
  h, l = add(h, l, gr[2], gr[3])
  redis.call('HSET', gr[1], rid, struct.pack('<ddd', h, l, ms + ttl))
  if gr[4] >= 0 then redis.call('EXPIREAT', gr[1], gr[4] + 86400) end
end
if #fresh > 0 then
  local old = redis.call('ZRANGEBYSCORE', registry, '-inf', secs, 'LIMIT', 0, 64)
  if #old > 0 then
    redis.call('DEL', unpack(old))
    redis.call('ZREM', registry, unpack(old))
  end
  local scores = {}
  for _, f in ipairs(fresh) do
    scores[#scores + 1] = string.format('%.0f', f[2])
    scores[#scores + 1] = f[1]
  end
  redis.call('ZADD', registry, unpack(scores))
end
return {0, out, crossed, corrected, lost, t[1]}
"""
LEASE = (
    _ARGS
    + _PAIRS
    + _LEASE_BODY.replace("__FOREVER__", str(FOREVER)).replace("__CALENDAR__", CALENDAR)
)

# Return holdings, or charge excesses. Numbers: items, leaving (1: drop the replica from the
# registry); per item: kind (1 an excess; else a return: 0 of held, 2 of a refund paying an
# excess back), h, l. KEYS: marker, registry of replicas,
# then per item the budget key and its lease hash. ARGV: numbers, replica id, generation.
# Reply: -1 (the generation changed: nothing done), or per item 1 (done) or 0 (a return of a
# lease that expired: forfeited, not returned).
_UNLEASE_BODY = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[3] then return -1 end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, V[1] do
  local key, hkey = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local kind, dh, dl = V[3 * i], V[3 * i + 1], V[3 * i + 2]
  local s = redis.call('GET', key)
  out[i] = 0
  if s then
    local gh, gl = pair(s)
    local h, l, exp = entry(redis.call('HGET', hkey, rid))
    if kind == 1 then
      gh, gl = add(gh, gl, dh, dl)  -- spent beyond the estimate and the holding
      redis.call('SET', key, fmt(gh, gl), 'KEEPTTL')
      if exp >= ms then  -- the lease's net grows by it (what it may return, or forfeits)
        h, l = add(h, l, dh, dl)
        redis.call('HSET', hkey, rid, struct.pack('<ddd', h, l, exp))
      end
      out[i] = 1
    else
      if exp >= ms then  -- a live lease returns at most what was granted to it
        if less(h, l, dh, dl) then dh, dl = h, l end
        h, l = sub(h, l, dh, dl)
        redis.call('HSET', hkey, rid, struct.pack('<ddd', h, l, exp))
        gh, gl = sub(gh, gl, dh, dl)
        if gh < 0 then gh, gl = 0, 0 end
        redis.call('SET', key, fmt(gh, gl), 'KEEPTTL')
        out[i] = 1
      end
    end
  end
end
if V[2] == 1 then redis.call('ZREM', KEYS[2], rid) end
return out
"""
UNLEASE = _ARGS + _PAIRS + _UNLEASE_BODY

# Renew this replica's leases. KEYS: marker, registry of replicas, lease hashes. ARGV: replica
# id, generation, ttl ms. Reply: -1 (the generation changed), or the positions (1-based among
# the hashes) of leases that had already expired (forfeited).
LEASE_RENEW = (
    r"""
local rid = ARGV[1]
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return -1 end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], ms + ttl, rid)
local gone = {}
"""
    + _PAIRS
    + r"""
for k = 3, #KEYS do
  local h, l, exp = entry(redis.call('HGET', KEYS[k], rid))
  if exp >= ms then
    redis.call('HSET', KEYS[k], rid, struct.pack('<ddd', h, l, ms + ttl))
  else
    gone[#gone + 1] = k - 2
  end
end
return gone
"""
)


class Holding:
    """What this replica holds of one budget window."""

    __slots__ = ("budget", "dead", "end_ns", "held", "hkey", "inflight", "key", "last",
                 "owed", "payback", "window")  # fmt: skip

    def __init__(self, budget: str, key: str, hkey: str, window: str, end_ns: int | None) -> None:
        self.budget = budget  # the budget's key, without its window
        self.key, self.hkey, self.window, self.end_ns = key, hkey, window, end_ns
        self.held = 0  # may still be admitted from
        self.inflight = 0  # admitted from it, not settled
        self.owed = 0  # excesses charged to Redis, not yet paid back by refunds
        self.payback = 0  # refunds paying an excess back: returned to Redis, never spent
        self.last = time.monotonic()
        self.dead = False  # its generation was lost


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


def _split(amount: int, usd: bool) -> tuple[int, int]:
    return divmod(amount, LOW) if usd else (amount, 0)


def _join(h: int, low: int, usd: bool) -> int:
    return h * LOW + low if usd else h


class _Acquire(NamedTuple):
    """An acquisition under way: what was taken locally, and the LEASE call for the rest."""

    chain: _Chain
    amounts: tuple[int, ...]
    parts: list[tuple[Holding | None, int]]  # per budget: holding taken from, amount taken
    sent: tuple[int, ...]  # indexes of the budgets asked for
    keys: list[str]
    args: list[Any]


class Leases:
    """The leasing state of one store: holdings per budget, guarded by one lock (the sync
    and async paths share it), and a maintenance thread for returns and renewals."""

    def __init__(self, store: RedisStore, block: float, ttl: float, idle: float,
                 refusal_ttl: float, replicas: int | None) -> None:  # fmt: skip
        if not 0 < block <= 1:
            raise ValueError("lease_block is a fraction of each budget's limit, in (0, 1]")
        if ttl <= 0 or idle <= 0 or refusal_ttl < 0:
            raise ValueError("lease_budget_ttl and lease_idle are positive")
        if replicas is not None and (type(replicas) is not int or replicas < 1):
            raise ValueError("lease_replicas is a number of replicas, 1 or more")
        self.store = store
        self.block, self.ttl, self.idle = block, ttl, idle
        self.refusal_ttl, self.replicas = refusal_ttl, replicas or 0
        self.rid = f"{socket.gethostname()[:40]}-{os.getpid()}-{os.urandom(4).hex()}"
        self.lock = threading.Lock()
        self.holdings: dict[str, Holding] = {}  # by budget key (without window)
        self.retired: list[Holding] = []  # windows that ended, or were replaced
        self.refused: dict[str, tuple[float, int]] = {}  # budget -> (until, room last seen)
        self.acquiring: dict[str, int] = {}  # budget -> acquisitions under way
        self.live: dict[str, None] = {}
        self.settled: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.excess: collections.deque[tuple[Holding, int, bool, int]] = collections.deque()
        self.chains: dict[int, _Chain] = {}
        self.calls = 0  # LEASE, UNLEASE and LEASE_RENEW calls made
        self.acquired = 0  # 1e-16 USD / tokens / requests granted, all budgets
        self.returned = 0
        self.charged = 0  # excesses charged beyond holdings
        self.forfeited = 0  # returns refused (the lease had expired) or lost in transit
        self.period = min(ttl / 3, idle / 2)
        self._next_renew = 0.0
        self._next_atick = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._tag_len = len(store.tag)

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

    def _acquired(self, budget: str) -> None:
        left = self.acquiring.pop(budget, 1) - 1
        if left > 0:
            self.acquiring[budget] = left

    def _retire(self, budget: str, h: Holding) -> None:
        if self.holdings.get(budget) is h:
            del self.holdings[budget]
        if not h.dead:
            self.retired.append(h)

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

    def unlease_call(
        self, items: list[tuple[Holding, int, bool, int]], leaving: bool = False
    ) -> tuple[list[str], list[Any]]:
        """UNLEASE for (holding, amount, usd, kind) items: kind 0 returns, 1 charges."""
        store = self.store
        numbers = [len(items), int(leaving)]
        keys = [store._marker, f"{store.tag}:lr"]
        for h, amount, usd, what in items:
            numbers += [what, *_split(amount, usd)]
            keys += [h.key, h.hkey]
        return keys, [pack_numbers(numbers), self.rid, store.generation]

    # -- maintenance: returns, renewals, excesses to replay -----------------------------
    def due_work(self, everything: bool = False) -> tuple[list[Any], list[Any], bool]:
        """Holdings to return (idle, of ended windows, or all when closing), excesses to
        replay, and whether renewal is due. Takes what is returned out of the holdings."""
        now = time.monotonic()
        now_ns = self.store.clock() + self.store._skew_ns
        returns: list[tuple[Holding, int, bool, int]] = []
        with self.lock:
            for budget, h in list(self.holdings.items()):
                if h.dead:
                    del self.holdings[budget]
                elif h.end_ns is not None and now_ns >= h.end_ns:
                    self._retire(budget, h)
            idle = [h for h in self.holdings.values() if now - h.last >= self.idle]
            for h in idle:  # idle and empty since the last round: forgotten, no renewals
                if h.held == h.payback == h.inflight == 0 and not everything:
                    del self.holdings[h.budget]
            for h in [*self.retired, *idle] if not everything else self._all():
                if h.held > 0 and (h.inflight == 0 or everything) and not h.dead:
                    returns.append((h, h.held, "|usd/" in h.key, 0))
                    h.held = 0
            for h in self._all():
                if h.payback > 0 and not h.dead:
                    returns.append((h, h.payback, "|usd/" in h.key, 2))
                    h.payback = 0
            self.retired = [h for h in self.retired if h.inflight > 0 and not h.dead]
            excess = list(self.excess)
            self.excess.clear()
            renew = now >= self._next_renew and bool(self.holdings or self.retired)
            if renew:
                self._next_renew = now + self.ttl / 3
        return returns, excess, renew

    def _all(self) -> list[Holding]:
        return [*self.holdings.values(), *self.retired]

    def returned_reply(self, items: list[Any], result: Any) -> None:
        if result == -1:
            self.drop()
            return
        with self.lock:
            for (_h, amount, _, what), done in zip(items, result, strict=True):
                if what == 1:
                    self.charged += amount
                elif int(done):
                    self.returned += amount
                else:
                    self.forfeited += amount

    def unreturned(self, items: list[Any], maybe_ran: bool) -> None:
        """A return or a charge that may not have reached Redis."""
        with self.lock:
            for h, amount, usd, what in items:
                if what == 1:
                    self.excess.append((h, amount, usd, what))  # charged later: never lost
                elif maybe_ran:
                    self.forfeited += amount  # may have been returned: never spend it twice
                elif what == 2:
                    h.payback += amount
                else:
                    h.held += amount

    def renew_call(self) -> tuple[list[str], list[Any], list[Holding]]:
        with self.lock:
            held = [h for h in self._all() if not h.dead]
        store = self.store
        keys = [store._marker, f"{store.tag}:lr", *(h.hkey for h in held)]
        return keys, [self.rid, store.generation, int(self.ttl * 1000)], held

    def renewed_reply(self, result: Any) -> None:
        if result == -1:
            self.drop()

    def drop(self) -> None:
        """The generation was lost: every holding belonged to lost counters."""
        with self.lock:
            for h in self._all():
                h.dead = True
                h.held = 0
            self.holdings.clear()
            self.retired.clear()
            self.refused.clear()
            self.excess.clear()

    def tick(self, everything: bool = False) -> None:
        """One round of maintenance over the sync client."""
        returns, excess, renew = self.due_work(everything)
        for items in (returns, excess):
            if not items:
                continue
            try:
                self.calls += 1
                self.returned_reply(
                    items, self.store._eval(UNLEASE, *self.unlease_call(items, everything))
                )
            except UNREACHABLE as exc:
                self.unreturned(items, _maybe_ran(exc))
        if renew:
            keys, args, _ = self.renew_call()
            try:
                self.calls += 1
                self.renewed_reply(self.store._eval(LEASE_RENEW, keys, args))
            except UNREACHABLE:
                self._next_renew = 0.0  # try again next round

    async def atick(self, everything: bool = False) -> None:
        returns, excess, renew = self.due_work(everything)
        for items in (returns, excess):
            if not items:
                continue
            try:
                self.calls += 1
                call = self.unlease_call(items, everything)
                self.returned_reply(items, await self.store._aeval(UNLEASE, *call))
            except UNREACHABLE as exc:
                self.unreturned(items, _maybe_ran(exc))
        if renew:
            keys, args, _ = self.renew_call()
            try:
                self.calls += 1
                self.renewed_reply(await self.store._aeval(LEASE_RENEW, keys, args))
            except UNREACHABLE:
                self._next_renew = 0.0

    def _ensure_thread(self) -> None:
        """The maintenance thread, started at the first leased admission (stores built from
        a URL, or given a sync client; a store given only an async client maintains its
        leases from its async admissions instead)."""
        if self._thread is not None or not self.store._can_sync():
            return
        with self._thread_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="budget-leases",
                                                daemon=True)  # fmt: skip
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.tick()
            except Exception:  # never let the thread die: the next round tries again
                log.exception("budget leases: maintenance failed")

    def _adue(self) -> bool:
        """Stores without the thread (given only an async client) maintain their leases
        from their async admissions, at most every `period` seconds."""
        if self._thread is not None or time.monotonic() < self._next_atick:
            return False
        self._next_atick = time.monotonic() + self.period
        return True

    def close(self) -> None:
        """Return everything held and leave the registry of replicas."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.store._can_sync():
            try:
                self.tick(everything=True)
            except Exception:  # closing: what was not returned is forfeited at its ttl
                log.exception("budget leases: returning holdings at close failed")
        with self.lock:
            self.holdings.clear()
            self.retired.clear()

    async def aclose(self) -> None:
        """close() for an event loop: returns through the loop's async client."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        try:
            await self.atick(everything=True)
        except Exception:
            log.exception("budget leases: returning holdings at close failed")
        with self.lock:
            self.holdings.clear()
            self.retired.clear()

    def stats(self) -> dict[str, int]:
        with self.lock:
            held = sum(h.held for h in self._all())
            inflight = sum(h.inflight for h in self._all())
        return {"calls": self.calls, "acquired": self.acquired, "charged": self.charged,
                "returned": self.returned, "forfeited": self.forfeited, "held": held,
                "inflight": inflight}  # fmt: skip


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- the store's leased admission and settlement, sync and async ----------------------------
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
            got = leases.acquired_reply(request_id, acq, result)
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
            got = leases.acquired_reply(request_id, acq, result)
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
