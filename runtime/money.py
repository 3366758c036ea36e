"""Exact money: every charge is a whole number of pico-USD (1e-12 USD).

Prices are USD per 1M tokens with at most 6 decimal places (the compiler enforces it), so
one token costs `price * 10**6` pico-USD exactly; per-request fees at most 12 places.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from runtime.bundle import Prices

PICO_PER_USD = 10**12
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

    def usage(self, max_output_tokens: int | None) -> Usage:
        out = self.max_tokens if self.max_tokens is not None else (max_output_tokens or 0)
        return Usage(input_tokens=self.input_tokens, output_tokens=out)


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
