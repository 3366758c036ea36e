"""Numbers of the catalog language: finite, in range, exact, and never too large to print.

The YAML loader gives ints (at most 64 digits) and exact Decimals for anything with a
fraction or an exponent, so `1e5000` is a *finite* Decimal whose integer value has 5,001
digits, and `.nan`/`.inf` are Decimal NaN/Infinity. Every check here compares Decimals
(cheap at any magnitude) before anything converts to int or prints digits, and messages
show huge or tiny numbers in exponent form (`1e+400`).

A numeric field is declared with one of the metadata classes below (`Whole`, `Exact`, or a
subclass); they validate, describe the field in the JSON Schema, and mark it as numeric so
an explicit `null` there is an error rather than "absent" (see `common.Strict`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from catalog_compiler.model.errors import ExplicitNull, wrong_type

MAX_SAFE_INT = 2**53 - 1  # the largest integer every JSON reader (a double) holds exactly
MAX_DIGITS = 64  # as the YAML loader: a longer digit string is left as text
_DIGITS_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")


def shown(value: Decimal | int) -> str:
    """A number as a message prints it: exact when short, `1e+400` when huge or tiny."""
    d = Decimal(value) if isinstance(value, int) else value
    if d.is_nan():
        return ".nan"
    if d.is_infinite():
        return "-.inf" if d.is_signed() else ".inf"
    digits = d.as_tuple().digits
    if len(digits) <= 24 and -12 <= d.adjusted() <= 24:
        return format(d, "f")
    if len(digits) > 24 and d.adjusted() > 24 and d == d.to_integral_value():
        lead = "".join(map(str, digits[:5]))
        return f"{'-' if d.is_signed() else ''}{lead}…({d.adjusted() + 1:,} digits)"
    return format(d, ".6g")


def decimal_places(d: Decimal) -> int:
    """Significant digits after the point, computed exactly (no context rounding)."""
    _, digits, exp = d.as_tuple()
    if not isinstance(exp, int) or exp >= 0:
        return 0
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exp - trailing)


def not_finite(d: Decimal) -> PydanticCustomError:
    return PydanticCustomError(
        "E0214",
        "{value} is not a finite number",
        {
            "value": shown(d),
            "hint": "NaN and infinity cannot be counted, compared or written as JSON: "
            "write a number",
        },
    )


def parse(value: Any, what: str, *, text: bool = False) -> Decimal:
    """A finite Decimal from a YAML number; from decimal text too where `text` (money).

    A digit string longer than the loader reads as a number is parsed as one, so a
    5,000-digit integer is reported as too large, not as "a string"."""
    if value is None or isinstance(value, (bool, ExplicitNull)):
        raise wrong_type(what, value)
    if isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, Decimal):
        d = value
    elif isinstance(value, str) and _DIGITS_TEXT.match(value) and (text or len(value) > MAX_DIGITS):
        d = Decimal(value)
    else:
        raise wrong_type(what, value)
    if not d.is_finite():
        raise not_finite(d)
    return d


def below(lo: Decimal | int, d: Decimal, *, open_lo: bool = False) -> PydanticCustomError:
    words = "more than {lo}" if open_lo else "{lo} or more"
    return PydanticCustomError(
        "E0206", f"must be {words}, found {{value}}", {"lo": shown(lo), "value": shown(d)}
    )


def too_large(d: Decimal | int, bound: str, why: str) -> PydanticCustomError:
    return PydanticCustomError(
        "E0206",
        "{value} is too large: at most {bound} ({why})",
        {"value": shown(d), "bound": bound, "why": why},
    )


def bound_text(n: Decimal | int) -> str:
    """10**15 -> "1,000,000,000,000,000"; Decimal("0.5") -> "0.5"."""
    if isinstance(n, int) or n == n.to_integral_value():
        return f"{int(n):,}"
    return shown(n)


class Numeric:
    """Pydantic metadata of a numeric field: `validate` is its plain validator and
    `json_schema` its schema; being a `Numeric` makes an explicit `null` an error."""

    def validate(self, value: Any) -> Any:
        raise NotImplementedError

    def json_schema(self) -> JsonSchemaValue:
        raise NotImplementedError

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.validate)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return self.json_schema()


@dataclass(frozen=True)
class Whole(Numeric):
    """A whole number in [lo, hi]. `2e3` and `2000.0` are whole (as in JSON Schema) unless
    `plain`: then only YAML integers, for values copied unconverted into the bundle."""

    lo: int
    hi: int
    why: str
    what: str = "a whole number"
    plain: bool = False
    description: str | None = None

    def validate(self, value: Any) -> int:
        d = parse(value, self.what)
        if d < self.lo:
            raise below(self.lo, d)
        if d > self.hi:
            raise too_large(d, bound_text(self.hi), self.why)
        if d != d.to_integral_value():
            raise PydanticCustomError(
                "E0206", "must be a whole number, found {value}", {"value": shown(d)}
            )
        if self.plain and not isinstance(value, int):
            raise PydanticCustomError(
                "E0204",
                "expected {expected} written as an integer, found {value}",
                {"expected": self.what, "value": shown(d), "hint": f"write `{int(d)}`"},
            )
        return int(d)

    def json_schema(self) -> JsonSchemaValue:
        out: dict[str, Any] = {"type": "integer", "minimum": self.lo, "maximum": self.hi}
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Exact(Numeric):
    """A decimal kept exact: in [lo, hi] (lo excluded when `open_lo`), at most `places`
    decimal places; decimal text such as `"2.50"` is accepted where `text` (money)."""

    lo: Decimal
    hi: Decimal | None
    places: int | None
    why: str = ""
    what: str = "a number"
    text: bool = False
    open_lo: bool = False
    description: str | None = None

    def validate(self, value: Any) -> Decimal:
        d = parse(value, self.what, text=self.text)
        if d < self.lo or (self.open_lo and d == self.lo):
            raise self.out_of_range(d)
        if self.hi is not None and d > self.hi:
            raise self.out_of_range(d)
        if self.places is not None and decimal_places(d) > self.places:
            raise self.too_fine(d)
        return d

    def out_of_range(self, d: Decimal) -> PydanticCustomError:
        if d < self.lo or self.hi is None:
            return below(self.lo, d, open_lo=self.open_lo)
        return too_large(d, bound_text(self.hi), self.why)

    def too_fine(self, d: Decimal) -> PydanticCustomError:
        return PydanticCustomError(
            "E0205",
            "{value} has more than {places} decimal places",
            {"value": shown(d), "places": self.places},
        )

    def json_schema(self) -> JsonSchemaValue:
        number: dict[str, Any] = {"type": "number"}
        number["exclusiveMinimum" if self.open_lo else "minimum"] = self.lo
        if self.hi is not None:
            number["maximum"] = self.hi
        out: dict[str, Any] = number
        if self.text:
            text = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
            out = {"anyOf": [number, text]}
        if self.description:
            out["description"] = self.description
        result: JsonSchemaValue = _json_numbers(out)
        return result


def _json_numbers(schema: Any) -> Any:
    """Decimal bounds as JSON numbers (ints where whole)."""
    if isinstance(schema, dict):
        return {k: _json_numbers(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_json_numbers(v) for v in schema]
    if isinstance(schema, Decimal):
        return int(schema) if schema == schema.to_integral_value() else float(schema)
    return schema
