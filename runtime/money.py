"""Exact money: every charge is a whole number of pico-USD (1e-12 USD).

Prices are USD per 1M tokens with at most 6 decimal places (the compiler enforces it), so
one token costs `price * 10**6` pico-USD exactly; per-request fees at most 12 places.

`Estimate` and `Usage` come from clients and upstreams: every token count is a plain `int`
(never bool, float, Decimal or str) from 0 to MAX_TOKENS, else InvalidRequest (400) names
the field. The bound is far above any real request (the largest context windows hold ~10^7
tokens) and keeps every derived counter exact where it is kept: a request costs at most
4 * 10^9 tokens * 10^10 pico-USD (the compiler's 10,000 USD per 1M tokens) + 10^14 pico-USD,
about 4 * 10^13 micro-USD, far below the 2^53 up to which the Redis store's doubles count.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from runtime.bundle import Prices
from runtime.errors import InvalidRequest

PICO_PER_USD = 10**12
MAX_TOKENS = 10**9  # per field of an Estimate or a Usage
_PER_TOKEN = Decimal(10**6)  # pico-USD per token for a price of 1 USD per 1M tokens


@dataclass(frozen=True, slots=True)
class Usage:
    """What a request really used, as the upstream reports it.

    `input_tokens` excludes cached input: cache reads and writes are counted apart, as
    Anthropic reports them (for OpenAI: prompt_tokens minus cached_tokens)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __post_init__(self) -> None:
        _check_tokens("Usage.input_tokens", self.input_tokens)
        _check_tokens("Usage.output_tokens", self.output_tokens)
        _check_tokens("Usage.cache_read_tokens", self.cache_read_tokens)
        _check_tokens("Usage.cache_write_tokens", self.cache_write_tokens)

    @property
    def tokens(self) -> int:
        """Tokens counted against token limits and budgets: everything processed."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


@dataclass(frozen=True, slots=True)
class Estimate:
    """What admission reserves: the input plus the most the model may write."""

    input_tokens: int
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        _check_tokens("Estimate.input_tokens", self.input_tokens)
        if self.max_tokens is not None:
            _check_tokens("Estimate.max_tokens", self.max_tokens)

    def usage(self, max_output_tokens: int | None) -> Usage:
        """What to reserve: without `max_tokens`, the most the model may write (clamped to
        the bounds, whatever the bundle says)."""
        if self.max_tokens is not None:
            out = self.max_tokens
        else:
            out = min(max(max_output_tokens or 0, 0), MAX_TOKENS)
        return Usage(input_tokens=self.input_tokens, output_tokens=out)


def reserved_usage(estimate: object, max_output_tokens: int | None) -> Usage:
    """The usage an admission reserves for `estimate` (None: nothing but the model's most)."""
    if estimate is None:
        estimate = _NOTHING
    elif type(estimate) is not Estimate:
        raise InvalidRequest("estimate", f"must be an Estimate, found {_shown(estimate)}")
    return estimate.usage(max_output_tokens)


def _check_tokens(field: str, value: object) -> None:
    # `type(...) is int` refuses bool (an int subclass) as well as float, Decimal and str
    if type(value) is not int or not 0 <= value <= MAX_TOKENS:
        raise InvalidRequest(
            field,
            f"must be a whole number of tokens from 0 to {MAX_TOKENS:,}, found {_shown(value)}",
        )


def _shown(value: object) -> str:
    """A short, safe description of a rejected value (never a 5,000-digit repr)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int):
        return (
            str(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"
        )
    if isinstance(value, float):
        return repr(value)
    return f"a value of type {type(value).__name__}"


_NOTHING = Estimate(0)


def _per_token(price: Decimal | None) -> int:
    if price is None:
        return 0
    exact = price * _PER_TOKEN
    # integral for every price the compiler accepts; round up anything finer, never down
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class Rates:
    """A model's prices in pico-USD per token (and per request), for fast exact costing."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    per_request: int
    priced: bool  # False when the model has no input price: cost is unknown, charged as 0

    @classmethod
    def of(cls, prices: Prices | None) -> Rates:
        if prices is None:
            return cls(0, 0, 0, 0, 0, False)
        per_request = prices.per_request or Decimal(0)
        return cls(
            _per_token(prices.input),
            _per_token(prices.output),
            _per_token(prices.cache_read if prices.cache_read is not None else prices.input),
            _per_token(prices.cache_write if prices.cache_write is not None else prices.input),
            int((per_request * PICO_PER_USD).to_integral_value(rounding=ROUND_CEILING)),
            prices.input is not None,
        )

    def cost(self, usage: Usage) -> int:
        """The exact cost in pico-USD."""
        if type(usage) is not Usage:
            raise InvalidRequest("usage", f"must be a Usage, found {_shown(usage)}")
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
            + self.per_request
        )


def usd(pico: int) -> Decimal:
    return Decimal(pico).scaleb(-12)


def pico(amount: Decimal) -> int:
    return int((amount * PICO_PER_USD).to_integral_value(rounding=ROUND_CEILING))
