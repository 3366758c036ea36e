"""Building blocks shared by several kinds: limits, access lists, prices, secret references."""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from catalog_compiler.model.errors import NULL, type_name
from catalog_compiler.model.numbers import Numeric, bound_text, decimal_places, shown
from catalog_compiler.model.types import (
    COUNTERS_EXACT,
    MAX_COUNT,
    Amount,
    Concurrency,
    Count,
    EnvName,
    Flag,
    Fraction,
    ModelPattern,
    NonEmptyText,
    Period,
    PerRequestPrice,
    Positive,
    Price,
    Tokens,
)
from runtime.bundle.suggest import did_you_mean


def is_numeric(annotation: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> bool:
    """Whether a field is a number (possibly optional): its type carries `Numeric` metadata."""
    if any(isinstance(m, Numeric) for m in metadata):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        args = typing.get_args(annotation)
        return is_numeric(args[0], args[1:])
    if origin in (typing.Union, types.UnionType):
        return any(is_numeric(a) for a in typing.get_args(annotation) if a is not type(None))
    return False


@functools.cache
def numeric_fields(cls: type[BaseModel]) -> frozenset[str]:
    return frozenset(
        name for name, f in cls.model_fields.items() if is_numeric(f.annotation, f.metadata)
    )


def _numbers_not_nullable(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """In the JSON Schema too, an optional number is omitted, never `null`."""
    props = schema.get("properties", {})
    for name in numeric_fields(cls):
        prop = props.get(name)
        if not prop or "anyOf" not in prop:
            continue
        branches = [b for b in prop["anyOf"] if b != {"type": "null"}]
        if len(branches) == 1:
            rest = {k: v for k, v in prop.items() if k != "anyOf" and k != "default"}
            props[name] = {**branches[0], **rest}
        else:
            prop["anyOf"] = branches
            prop.pop("default", None)


class Strict(BaseModel):
    """Unknown fields are errors; instances are immutable; inputs never echo into errors."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        defer_build=True,
        json_schema_extra=_numbers_not_nullable,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_not_absent(cls, value: Any) -> Any:
        """`weight: null` is a mistake to report, not an omitted field: pydantic would take
        `None` as "absent" before the number's validator runs, so it becomes `NULL`."""
        names = numeric_fields(cls)
        if isinstance(value, dict) and any(value.get(n, 0) is None for n in names):
            return {k: NULL if v is None and k in names else v for k, v in value.items()}
        return value


# -- secrets ------------------------------------------------------------------------------


class SecretRef(Strict):
    """Where a secret lives; the catalog and the bundle hold only this reference."""

    model_config = ConfigDict(
        json_schema_extra={
            "description": "a secret reference `{env: NAME}` or `{file: PATH}`; "
            "literal secrets are rejected",
            "minProperties": 1,
            "maxProperties": 1,
        }
    )

    env: EnvName | None = Field(None, description="name of an environment variable")
    file: NonEmptyText | None = Field(None, description="path of a file holding the secret")

    @model_validator(mode="before")
    @classmethod
    def _no_literal(cls, value: Any) -> Any:
        if isinstance(value, (str, int, Decimal)) and not isinstance(value, bool):
            raise PydanticCustomError(
                "E0400",
                "a literal secret is written here; credentials must be references",
                {"hint": "write `{env: NAME}` or `{file: PATH}` and keep the value out of git"},
            )
        if value is not None and not isinstance(value, dict):
            raise PydanticCustomError(
                "E0204",
                "expected a secret reference `{env: NAME}` or `{file: PATH}`, found {found}",
                {"found": type_name(value)},
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.env is None) == (self.file is None):
            raise PydanticCustomError(
                "E0205", "a secret reference has exactly one of `env` or `file`", {}
            )
        return self

    def ref(self) -> str:
        return f"env:{self.env}" if self.env is not None else f"file:{self.file}"


# -- limits -------------------------------------------------------------------------------

# Upper bounds that keep every counter exact where it is kept: the Redis store's Lua works
# in doubles, exact for integers below 2^53 (~9e15), so a USD budget in micro-USD, a count,
# and a bucket's refill time in microseconds must each stay below that.
MAX_BUDGET_USD = 10**9
USD_PLACES = 12  # a budget needs no finer; the runtime keeps 1e-16 USD (money.py)
MAX_REFILL_YEARS = 100
PER_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}


def _too_large(field: str, value: Decimal | int, bound: int, why: str) -> PydanticCustomError:
    return PydanticCustomError(
        "E0206",
        "{value} is too large: at most {bound} ({why})",
        {"field": field, "value": shown(value), "bound": bound_text(bound), "why": why},
    )


class Budget(Strict):
    """A spending pool: `limit` units per calendar `period` (UTC)."""

    limit: Amount = Field(description="USD (exact decimal), tokens or requests; 0 blocks")
    unit: Literal["usd", "tokens", "requests"]
    period: Period
    alert_threshold: Fraction | None = Field(None, description="fraction of the limit, e.g. 0.8")

    @model_validator(mode="after")
    def _whole_units(self) -> Self:
        bound = MAX_BUDGET_USD if self.unit == "usd" else MAX_COUNT
        if self.limit > bound:
            raise _too_large("limit", self.limit, bound, COUNTERS_EXACT)
        if self.unit != "usd" and self.limit != self.limit.to_integral_value():
            raise PydanticCustomError(
                "E0206",
                "a {unit} budget is a whole number, found {limit}",
                {"unit": self.unit, "limit": shown(self.limit), "field": "limit"},
            )
        if self.unit == "usd" and decimal_places(self.limit) > USD_PLACES:
            raise PydanticCustomError(
                "E0205",
                "a usd budget is exact to {places} decimal places, found {limit}",
                {"places": USD_PLACES, "limit": shown(self.limit), "field": "limit"},
            )
        return self


class RateLimit(Strict):
    """A GCRA bucket: capacity `burst` (default `limit`), refilled at `limit` per `per`."""

    limit: Count = Field(description="units per `per`; 0 blocks")
    unit: Literal["requests", "tokens"]
    per: Literal["second", "minute", "hour", "day"]
    burst: Positive | None = Field(None, description="bucket capacity; defaults to `limit`")

    @model_validator(mode="after")
    def _refills(self) -> Self:
        burst = self.burst if self.burst is not None else self.limit
        most = MAX_REFILL_YEARS * 365 * 86_400 * self.limit // PER_SECONDS[self.per]
        if self.limit and burst > most:
            why = f"a full bucket must refill within {MAX_REFILL_YEARS} years"
            raise _too_large("burst", burst, most, why)
        return self


class Limits(Strict):
    """The limits one level declares; each entry is one pool shared by everything beneath."""

    budgets: tuple[Budget, ...] = ()
    rate_limits: tuple[RateLimit, ...] = ()
    concurrency: Concurrency | None = Field(None, description="max requests in flight")


class ModelAccess(Strict):
    """`allow` absent = inherit the parent's set, `[]` = nothing; `deny` always wins."""

    allow: tuple[ModelPattern, ...] | None = None
    deny: tuple[ModelPattern, ...] = ()


# -- prices -------------------------------------------------------------------------------

PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "per_request", "cache_write_1h")
SERVICE_TIERS = ("flex", "priority")  # OpenAI's `service_tier` values with their own prices


class PriceTable(Strict):
    """USD per 1M tokens (exact decimals), plus an optional fee per request."""

    input: Price | None = None
    output: Price | None = None
    cache_read: Price | None = None
    cache_write: Price | None = Field(None, description="cache write, 5-minute TTL (the default)")
    cache_write_1h: Price | None = Field(
        None, description="cache write, 1-hour TTL (absent: `cache_write` applies)"
    )
    per_request: PerRequestPrice | None = None

    def fields(self) -> dict[str, Decimal]:
        return {k: v for k in PRICE_FIELDS if (v := getattr(self, k)) is not None}


class PriceTier(PriceTable):
    """Long context: a request whose prompt tokens (input + cache reads + cache writes) are
    strictly above `above_input_tokens` is priced wholly at this tier."""

    above_input_tokens: Tokens


class PriceVariant(PriceTable):
    """A partial table (batch, a service tier, a region): absent fields fall back to the
    base table's; its own `tiers` replace the base's."""

    tiers: tuple[PriceTier, ...] = Field(
        (), description="long-context tiers, strictly increasing thresholds"
    )

    @model_validator(mode="after")
    def _increasing(self) -> Self:
        for i in range(1, len(self.tiers)):
            before, now = self.tiers[i - 1].above_input_tokens, self.tiers[i].above_input_tokens
            if now <= before:
                raise PydanticCustomError(
                    "E0403",
                    "tier thresholds must increase: {now} follows {before}",
                    {"now": now, "before": before, "field": ("tiers", i, "above_input_tokens"),
                     "hint": "list tiers from the lowest threshold up, each one higher"},
                )  # fmt: skip
        return self


class Pricing(PriceVariant):
    """A price block: a base table, long-context tiers, batch, service-tier and regional
    variants (docs/pricing.md)."""

    batch: PriceVariant | None = Field(None, description="Batch API prices")
    service_tiers: dict[str, PriceVariant] = Field(
        default_factory=dict, description="`flex` and `priority` (OpenAI's `service_tier`)"
    )
    regions: dict[NonEmptyText, PriceVariant] = Field(
        default_factory=dict, description="prices where the integration's `settings.region` is"
    )
    unusual_price: Flag = Field(
        False,
        description="these prices are meant to be more than 100x away from the registry's "
        "price for the model (they are checked otherwise: a per-token or per-1K price typed "
        "as per-1M is the classic mistake); applies to this block only",
    )

    @field_validator("service_tiers", mode="before")
    @classmethod
    def _known_tiers(cls, value: Any) -> Any:
        for name in value if isinstance(value, dict) else ():
            if name not in SERVICE_TIERS:
                guess = did_you_mean(str(name), SERVICE_TIERS)
                raise PydanticCustomError(
                    "E0405",
                    "unknown service tier `{name}`: the priced tiers are flex and priority",
                    {"name": str(name)[:40], "field": (name,),
                     "hint": f"did you mean `{guess}`?" if guess else
                     "the default tier's prices are the block's own"},
                )  # fmt: skip
        return value

    def unpriced(self, base: set[str]) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """(path, field) of each tier or variant price whose field `base` does not price:
        a typo, or a price that applies nowhere (E0404). A price the runtime derives is one
        the base has: cache prices fall back to `input`, and a fee absent is 0. A region
        table is not a variant: it becomes the base where it applies."""
        base = base | {"per_request"}
        if "input" in base:
            base |= {"cache_read", "cache_write", "cache_write_1h"}
        for path, table in self.variant_tables():
            if len(path) == 2 and path[0] == "regions":
                continue
            for name in sorted(set(table.fields()) - base):
                yield path, name

    def variant_tables(self) -> Iterator[tuple[tuple[str | int, ...], PriceTable]]:
        """Every partial table of the block, with its path inside the block."""
        named: list[tuple[tuple[str | int, ...], PriceVariant]] = [((), self)]
        if self.batch is not None:
            named.append((("batch",), self.batch))
        named += [(("service_tiers", k), v) for k, v in sorted(self.service_tiers.items())]
        named += [(("regions", k), v) for k, v in sorted(self.regions.items())]
        for path, variant in named:
            if path:
                yield path, variant
            for i, tier in enumerate(variant.tiers):
                yield (*path, "tiers", i), tier


class PriceOverride(Pricing):
    """A price for the models matching `model` (a name, `@provider/model`, or a glob)."""

    model: ModelPattern
    free: Flag = Field(False, description="charge nothing for these models")

    @model_validator(mode="after")
    def _free_or_prices(self) -> Self:
        if self.free and self.fields():
            raise PydanticCustomError(
                "E0205", "`free: true` and explicit prices exclude each other", {"field": "free"}
            )
        if self.free and (self.tiers or self.batch or self.service_tiers or self.regions):
            raise PydanticCustomError(
                "E0205", "`free: true` and explicit prices exclude each other", {"field": "free"}
            )
        if not self.free and not self.fields():
            raise PydanticCustomError(
                "E0203", "a price override needs `free: true` or at least one price", {}
            )
        return self


class ModelLimits(Strict):
    """Token limits of one model."""

    context_window: Tokens | None = None
    max_output_tokens: Tokens | None = None
