"""Exact money: every charge is a whole number of units of 1e-16 USD (UNITS_PER_USD).

Prices are USD per 1M tokens with at most 10 decimal places (the compiler enforces it), so
one token costs `price * 10**10` units exactly; per-request fees have at most 16 places.

`Estimate` and `Usage` come from clients and upstreams: every token count is a plain `int`
(never bool, float, Decimal or str) from 0 to MAX_TOKENS, else InvalidRequest (400) names
the field. The bound is far above any real request (the largest context windows hold ~10^7
tokens) and keeps every derived counter exact where it is kept: a request costs at most
5 * 10^9 tokens * 10^14 units (the compiler's 10,000 USD per 1M tokens) + 10^18 units (a
100 USD fee), about 5 * 10^7 USD = 5 * 10^13 micro-USD, far below the 2^53 up to which the
Redis store's doubles count (it keeps micro-USD and a remainder below 10^10 units apart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Context, Decimal, Inexact

from runtime.bundle.errors import InvalidRequest
from runtime.bundle.load import Prices
from runtime.bundle.values import value

UNITS_PER_USD = 10**16
PLACES = 16  # decimal places of USD a unit resolves
MAX_TOKENS = 10**9  # per field of an Estimate or a Usage
SERVED_TIERS = ("default", "flex", "priority")  # service tiers a Usage may report
_PER_TOKEN = Decimal(10**10)  # units per token for a price of 1 USD per 1M tokens
# exact conversions: amounts here have at most ~40 digits; Inexact would be a bug, not rounding
_EXACT = Context(prec=60, traps=[Inexact])


@value
class Usage:
    """What a request really used, as the upstream reports it.

    `input_tokens` excludes cached input: cache reads and writes are counted apart, as
    Anthropic reports them (for OpenAI: prompt_tokens minus cached_tokens)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0  # cache writes of the default (5-minute) TTL
    cache_write_1h_tokens: int = 0  # cache writes of the 1-hour TTL (Anthropic)
    # the service tier the upstream says it served ("default", "flex", "priority"); None:
    # it said nothing, and the requested tier is charged (runtime/bundle/price_tables.py). Not
    # part of equality: two usages of the same tokens are the same usage.
    service_tier: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        i, o = self.input_tokens, self.output_tokens
        r, w, h = self.cache_read_tokens, self.cache_write_tokens, self.cache_write_1h_tokens
        # one expression on the hot path; `type(...) is int` refuses bool, float, Decimal, str
        if not (
            type(i) is int and type(o) is int and type(r) is int and type(w) is int
            and type(h) is int
            and 0 <= i <= MAX_TOKENS and 0 <= o <= MAX_TOKENS
            and 0 <= r <= MAX_TOKENS and 0 <= w <= MAX_TOKENS and 0 <= h <= MAX_TOKENS
        ):  # fmt: skip
            _refuse(self, ("input_tokens", "output_tokens", "cache_read_tokens",
                           "cache_write_tokens", "cache_write_1h_tokens"))  # fmt: skip
        tier = self.service_tier
        if tier is not None and (type(tier) is not str or tier not in SERVED_TIERS):
            raise InvalidRequest(
                "Usage.service_tier", f"must be one of {', '.join(SERVED_TIERS)} or null"
            )

    @property
    def tokens(self) -> int:
        """Tokens counted against token limits and budgets: everything processed."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.cache_write_1h_tokens
        )

    @property
    def prompt_tokens(self) -> int:
        """What a long-context tier's threshold counts: every prompt token, cached or not."""
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.cache_write_1h_tokens
        )


@value
class Estimate:
    """What admission reserves: the input plus the most the model may write, `max_tokens`
    for each of `choices` completions (a request's `n`, `best_of`, or prompts)."""

    input_tokens: int
    max_tokens: int | None = None
    choices: int = 1

    def __post_init__(self) -> None:
        i, m, c = self.input_tokens, self.max_tokens, self.choices
        if not (
            type(i) is int and 0 <= i <= MAX_TOKENS
            and (m is None or (type(m) is int and 0 <= m <= MAX_TOKENS))
            and type(c) is int and 1 <= c <= MAX_TOKENS
        ):  # fmt: skip
            _refuse(self, ("input_tokens", "max_tokens", "choices"))

    def usage(self, max_output_tokens: int | None) -> Usage:
        """What to reserve: without `max_tokens`, the most the model may write (clamped to
        the bounds, whatever the bundle says), for each choice."""
        if self.max_tokens is not None:
            out = self.max_tokens
        else:
            out = min(max(max_output_tokens or 0, 0), MAX_TOKENS)
        return Usage(self.input_tokens, min(out * self.choices, MAX_TOKENS))


def reserved_usage(estimate: object, max_output_tokens: int | None) -> Usage:
    """The usage an admission reserves for `estimate` (None: nothing but the model's most)."""
    if type(estimate) is Estimate:
        return estimate.usage(max_output_tokens)
    if estimate is None:
        return _NOTHING.usage(max_output_tokens)
    raise InvalidRequest("estimate", f"must be an Estimate, found {shown(estimate)}")


def _refuse(owner: Estimate | Usage, fields: tuple[str, ...]) -> None:
    """Raise for the first field of `owner` out of bounds (None is a missing max_tokens)."""
    for name in fields:
        value = getattr(owner, name)
        if name == "max_tokens" and value is None:
            continue
        if name == "choices" and value == 0:
            raise InvalidRequest("Estimate.choices", "must be at least 1")
        if type(value) is not int or not 0 <= value <= MAX_TOKENS:
            raise InvalidRequest(
                f"{type(owner).__name__}.{name}",
                f"must be a whole number of tokens from 0 to {MAX_TOKENS:,}, found {shown(value)}",
            )


def shown(value: object) -> str:
    """A short, safe description of a rejected value (never a 5,000-digit repr)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int):
        bits = value.bit_length()
        return str(value) if bits <= 64 else f"an integer of {bits} bits"
    if isinstance(value, float):
        return repr(value)
    return f"a value of type {type(value).__name__}"


_NOTHING = Estimate(0)


def _per_token(price: Decimal | None) -> int:
    if price is None:
        return 0
    exact = _EXACT.multiply(price, _PER_TOKEN)
    # integral for every price the compiler accepts; round up anything finer, never down
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class Rates:
    """A model's prices in units (1e-16 USD) per token and per request, for exact costing."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    per_request: int
    priced: bool  # False when the model has no input price: cost is unknown, charged as 0
    cache_write_1h: int = 0

    @classmethod
    def of(cls, prices: Prices | None) -> Rates:
        if prices is None:
            return cls(0, 0, 0, 0, 0, False)
        per_request = prices.per_request or Decimal(0)
        write = prices.cache_write if prices.cache_write is not None else prices.input
        write_1h = prices.cache_write_1h
        return cls(
            _per_token(prices.input),
            _per_token(prices.output),
            _per_token(prices.cache_read if prices.cache_read is not None else prices.input),
            _per_token(write),
            units(per_request),
            prices.input is not None,
            _per_token(write_1h if write_1h is not None else write),  # absent: the 5-minute price
        )

    def cost(self, usage: Usage) -> int:
        """The exact cost in units of 1e-16 USD."""
        if type(usage) is not Usage:
            raise InvalidRequest("usage", f"must be a Usage, found {shown(usage)}")
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
            + usage.cache_write_1h_tokens * self.cache_write_1h
            + self.per_request
        )


def usd(units: int) -> Decimal:
    """Units of 1e-16 USD as exact USD."""
    return _EXACT.scaleb(Decimal(units), -PLACES)


def units(amount: Decimal) -> int:
    """USD as units of 1e-16 USD, rounded up (exact for amounts of at most 16 places)."""
    return int(_EXACT.scaleb(amount, PLACES).to_integral_value(rounding=ROUND_CEILING))


def dollars(amount: Decimal) -> str:
    """Exact, in plain notation, without trailing zeros: "0.000011", "0"."""
    text = f"{amount:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
