"""How the Redis store and its budget leases talk to the Lua scripts: key names, numbers
packed as little-endian doubles, one chain's admission plan, and reading replies back (rate
refusals, budget and bucket state). No connections here: redis_connection.py owns those.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisClusterException

from runtime.bundle.errors import RateLimited
from runtime.bundle.periods import NS_PER_DAY, epoch_day, kind, span
from runtime.limits.lua import LOW
from runtime.limits.spec import Bucket, BudgetSpec, ChainSpec

EPOCH_S = 1_577_836_800  # 2020-01-01: keeps microsecond times well below 2^53 in Lua
MICRO = 10**6
# unreachable, or refusing: OOM under noeviction, READONLY after a failover, BUSY script,
# a cluster with no reachable node or an uncovered slot (RedisClusterException)
UNREACHABLE = (redis.RedisError, OSError, RedisClusterException)
BYPASS = "bypass"
PAIR = struct.Struct("<dd")  # how the scripts store a counter's state
GENERATION_LOST = ("its generation marker is gone or replaced (FLUSHALL, FLUSHDB, eviction, "
                   "or a failover to an empty replica)")  # fmt: skip


def split_units(units: int, per_us: int, limit: int) -> tuple[int, int]:
    """units * per_us / limit as (whole microseconds, remainder in 1/limit microseconds)."""
    if limit == 0:
        return 0, 0
    return divmod(units * per_us, limit)


def split_money(amount: int, usd: bool) -> tuple[int, int]:
    """Units of 1e-16 USD as (micro-USD, remainder below 10^10 units); other units as
    (amount, 0). Keeps sign."""
    if not usd:
        return amount, 0
    whole, rest = divmod(abs(amount), LOW)
    return (whole, rest) if amount >= 0 else (-whole, -rest)


def budget_key(tag: str, g: BudgetSpec, window: str) -> str:
    """A budget window's key. usd windows have their own prefix since money moved from
    pico-USD to 1e-16 USD: a pair an older store wrote is never read in the new unit (their
    windows start afresh on upgrade: docs/redis.md). Leasing derives `:l`/`:lu` from it."""
    return f"{tag}{':bu:' if g.unit == 'usd' else ':b:'}{g.key}|{window}"


@dataclass(frozen=True, slots=True)
class _Keys:
    buckets: tuple[str, ...]
    budgets: tuple[str, ...]
    leases: tuple[str, ...]
    token_buckets: tuple[int, ...]  # indexes of buckets charged by tokens


def _maybe_ran(exc: BaseException) -> bool:
    """Whether a failed call may have reached the server and run: a timeout or a reset after
    sending. An error reply, a refused connection or an empty pool means it did not."""
    if isinstance(exc, redis.ResponseError | RedisClusterException):
        return False
    text = str(exc)
    return not ("connecting" in text or "No connection available" in text
                or "previous master is now a slave" in text)  # fmt: skip


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Plan:
    """One chain's admission for one UTC day of the client's clock: keys, and the argument
    numbers with holes for the token-dependent and cost-dependent pairs, filled per request.
    Budget windows are the client's guess; the script corrects a wrong one."""

    __slots__ = ("day", "ends", "holes", "key_list", "numbers", "spec", "windows")

    def __init__(
        self, spec: ChainSpec, day: int, tag: str, lease_ttl_us: int, accept_loss: bool
    ) -> None:
        self.spec, self.day = spec, day
        spans = [span(g.period, day, spec.epoch) for g in spec.budgets]
        self.windows = tuple(s[0] for s in spans)
        self.ends = tuple(None if s[2] is None else s[2] * NS_PER_DAY for s in spans)
        self.key_list = [
            *(f"{tag}:r:{b.key}" for b in spec.buckets),
            *(budget_key(tag, g, w) for g, w in zip(spec.budgets, self.windows, strict=True)),
            *(f"{tag}:c:{lease.key}" for lease in spec.leases),
        ]
        numbers = [len(spec.buckets), len(spec.budgets), len(spec.leases), int(accept_loss),
                   lease_ttl_us]  # fmt: skip
        # holes: (index of a pair in `numbers`, function of (tokens, cost) giving the pair)
        holes: list[tuple[int, Callable[[int, int], tuple[int, int]]]] = []
        for b in spec.buckets:
            per_us = b.per_ns // 1000
            cq, cr = split_units(b.burst, per_us, b.limit)
            if b.unit == "tokens":
                holes.append((len(numbers) + 1, _bucket_units(per_us, b.limit, b.burst)))
            numbers += [b.limit, *split_units(1, per_us, b.limit), cq, cr]
        epoch = epoch_day(spec.epoch)
        for g, (_, first, last) in zip(spec.budgets, spans, strict=True):
            usd = g.unit == "usd"
            xh, xl = split_money(g.alert_at, usd) if g.alert_at is not None else (-1, -1)
            if g.unit != "requests":
                holes.append((len(numbers) + 2, _budget_amount(usd)))
            code, n = kind(g.period)
            end_s = last * 86_400 if last is not None else -1
            numbers += [*split_money(g.limit, usd), 1, 0, first * 86_400, end_s, xh, xl,
                        code, n, epoch]  # fmt: skip
        numbers += [lease.limit for lease in spec.leases]
        self.numbers, self.holes = numbers, holes

    def pack(self, tokens: int, cost: int) -> bytes:
        numbers = self.numbers.copy()
        for at, pair in self.holes:
            numbers[at], numbers[at + 1] = pair(tokens, cost)
        return pack_numbers(numbers)


def pack_numbers(numbers: list[int]) -> bytes:
    """Little-endian doubles, as the scripts unpack them (exact: all are below 2^53)."""
    return _packer(len(numbers)).pack(*numbers)


@functools.lru_cache(maxsize=64)
def _packer(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}d")


def _bucket_units(per_us: int, limit: int, burst: int) -> Callable[[int, int], tuple[int, int]]:
    def units(tokens: int, cost: int) -> tuple[int, int]:
        # more than the bucket holds is refused whatever the excess: keep the number small
        return split_units(min(tokens, burst + 1), per_us, limit)

    return units


def _budget_amount(usd: bool) -> Callable[[int, int], tuple[int, int]]:
    def amount(tokens: int, cost: int) -> tuple[int, int]:
        return split_money(cost if usd else tokens, usd)

    return amount


def _rate_refusal(b: Bucket, tokens: int, result: list[Any]) -> RateLimited:
    units = b.cost(tokens)
    if b.limit == 0 or units > b.burst:
        return RateLimited(b.counter, b.unit, b.per, b.limit, retry_after=None)
    q, r, now = int(result[2]), int(result[3]), int(result[4])
    per_us = b.per_ns // 1000
    # ready when now' >= tat + units*T - burst*T, in exact rationals (units of 1/limit us)
    ready = q * b.limit + r + units * per_us - b.burst * per_us
    wait_us = max(ready - now * b.limit, 0) / b.limit
    return RateLimited(b.counter, b.unit, b.per, b.limit, retry_after=wait_us / MICRO)


def _budget_held(value: Any, usd: bool) -> tuple[int, int | None]:
    """A budget window's (charged, reserved) as integers (1e-16 USD for usd); reserved is
    None for a value without its second pair (leased, or written by an older store)."""
    if value is None:
        return 0, 0
    scale = LOW if usd else 1
    high, low = PAIR.unpack_from(value)
    if len(value) < 2 * PAIR.size:
        return int(high) * scale + int(low), None
    rhigh, rlow = PAIR.unpack_from(value, PAIR.size)
    return int(high) * scale + int(low), int(rhigh) * scale + int(rlow)


def _bucket_free(b: Bucket, value: Any, now_us: int) -> int:
    """Units a bucket would admit now: its arrival time is q + r/limit microseconds."""
    if b.limit == 0:
        return 0
    if value is None:
        return b.burst
    q, r = (int(x) for x in PAIR.unpack(value))
    per_us = b.per_ns // 1000
    debt = max((q - now_us) * b.limit + r, 0)  # microseconds ahead of now, times the limit
    return max(b.burst - -(-debt // per_us), 0)
