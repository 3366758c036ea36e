"""Value types of the catalog language, each with one validator and its own JSON Schema.

Every validator raises `PydanticCustomError` whose *type* is our diagnostic code, so
`check/schema.py` maps it straight to a located diagnostic with our message.
Plain validators do their own type checks: no silent coercion ("5" is not 5).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PERIOD_RE = re.compile(r"([1-9][0-9]{0,3})d\Z")
DECIMAL_STRING = r"^[0-9]+(\.[0-9]+)?$"
MAX_PRICE_PER_M = Decimal(10_000)
MAX_PER_REQUEST = Decimal(100)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def wrong_type(expected: str, value: Any) -> PydanticCustomError:
    return PydanticCustomError(
        "E0204",
        "expected {expected}, found {found}",
        {"expected": expected, "found": type_name(value)},
    )


def suggest_slug(text: str) -> str:
    fixed = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return fixed[:63] or "my-slug"


def _slug(value: Any) -> str:
    if not isinstance(value, str):
        raise wrong_type("a slug (string)", value)
    if not SLUG_RE.match(value):
        raise PydanticCustomError(
            "E0207",
            "`{value}` is not a valid slug: use lowercase letters, digits and `-`, "
            "starting with a letter or digit, at most 63 characters",
            {"value": value[:80], "fix": suggest_slug(value)},
        )
    return value


def _provider_ref(value: Any) -> str:
    """`@openai-prod` (or bare `openai-prod`) -> `openai-prod`."""
    if not isinstance(value, str):
        raise wrong_type("a provider slug such as `@openai-prod`", value)
    return _slug(value[1:] if value.startswith("@") else value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise wrong_type("a string", value)
    return value


def _nonempty_text(value: Any) -> str:
    text = _text(value)
    if not text.strip():
        raise PydanticCustomError("E0205", "must not be empty", {})
    return text


def to_decimal(value: Any, what: str = "a number") -> Decimal:
    if isinstance(value, bool):
        raise wrong_type(what, value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise wrong_type(what, value) from None
    else:
        raise wrong_type(what, value)
    if not result.is_finite():
        raise PydanticCustomError("E0206", "must be a finite number", {})
    return result


def _amount(value: Any) -> Decimal:
    result = to_decimal(value)
    if result < 0:
        raise PydanticCustomError(
            "E0206", "must be 0 or more, found {value}", {"value": str(result)}
        )
    return result


def _exact_to(result: Decimal, places: int, what: str) -> Decimal:
    """Money is kept in integer pico-USD: a price finer than that cannot be charged exactly."""
    if result != result.quantize(Decimal(1).scaleb(-places)):
        hint = "prices are kept exact to 1e-12 USD per token"
        if what == "price" and result < Decimal("0.001"):
            per_m = format((result * 1_000_000).normalize(), "f")
            hint = f"prices are per 1M tokens: if {result:f} is per token, write {per_m}"
        raise PydanticCustomError(
            "E0205",
            "{what} {value} has more than {places} decimal places",
            {"what": what, "value": format(result, "f"), "places": places, "hint": hint},
        )
    return result


def _price(value: Any) -> Decimal:
    result = to_decimal(value, "a price in USD per 1M tokens")
    if result < 0 or result > MAX_PRICE_PER_M:
        raise PydanticCustomError(
            "E0401",
            "price {value} is outside 0..10000 USD per 1M tokens",
            {
                "value": str(result),
                "hint": "prices are USD per 1M tokens: gpt-4o input is 2.5",
            },
        )
    return _exact_to(result, 6, "price")


def _per_request_price(value: Any) -> Decimal:
    result = to_decimal(value, "a price in USD per request")
    if result < 0 or result > MAX_PER_REQUEST:
        raise PydanticCustomError(
            "E0401", "per-request price {value} is outside 0..100 USD", {"value": str(result)}
        )
    return _exact_to(result, 12, "per-request price")


def to_count(value: Any) -> int:
    """A whole number >= 0. `2e6` or `1.0` are whole (as in JSON Schema); `"5"` is text."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type("a whole number", value)
    if value < 0:
        raise PydanticCustomError("E0206", "must be 0 or more, found {value}", {"value": value})
    return value


def _positive(value: Any) -> int:
    result = to_count(value)
    if result < 1:
        raise PydanticCustomError("E0206", "must be 1 or more, found {value}", {"value": result})
    return result


def _fraction(value: Any) -> Decimal:
    result = to_decimal(value)
    if not Decimal(0) < result <= Decimal(1):
        raise PydanticCustomError(
            "E0206",
            "must be a fraction in (0, 1], found {value}",
            {"value": str(result), "hint": "write 0.8 for 80%"},
        )
    return result


def _period(value: Any) -> str:
    if not isinstance(value, str):
        raise wrong_type("a period (daily, weekly, monthly, none or <N>d)", value)
    if value in ("daily", "weekly", "monthly", "none") or PERIOD_RE.match(value):
        return value
    raise PydanticCustomError(
        "E0205",
        "unknown period `{value}`: use daily, weekly, monthly, none or <N>d (e.g. 30d)",
        {"value": value[:40], "choices": ["daily", "weekly", "monthly", "none"]},
    )


def _env_name(value: Any) -> str:
    text = _text(value)
    if not ENV_RE.match(text):
        raise PydanticCustomError(
            "E0205", "`{value}` is not an environment variable name", {"value": text[:40]}
        )
    return text


def _url(value: Any) -> str:
    text = _text(value)
    if not re.match(r"https?://[^\s/?#]+[^\s]*\Z", text):
        raise PydanticCustomError("E0205", "`{value}` is not an http(s) URL", {"value": text[:80]})
    return text.rstrip("/")


def _iso_date(value: Any) -> str:
    text = _text(value)
    if not re.match(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])\Z", text):
        raise PydanticCustomError(
            "E0205", "`{value}` is not a date YYYY-MM-DD", {"value": text[:40]}
        )
    return text


def _sha256_hex(value: Any) -> str:
    text = _text(value)
    if not re.match(r"[0-9a-f]{64}\Z", text):
        raise PydanticCustomError(
            "E0205",
            "expected a sha256 digest (64 lowercase hex digits)",
            {"hint": 'store only the hash: `printf %s "$KEY" | sha256sum`'},
        )
    return text


def _workspace_item(value: Any) -> str:
    return "*" if value == "*" else _slug(value)


def _star_or_list(value: Any) -> Any:
    """`"*"` (every workspace) or a list of workspace slugs; `"*"` becomes `("*",)`."""
    if value == "*":
        return ("*",)
    if not isinstance(value, list):
        raise wrong_type('`"*"` or a list of workspace slugs', value)
    return value


Slug = Annotated[
    str,
    PlainValidator(_slug),
    WithJsonSchema({"type": "string", "pattern": SLUG_PATTERN, "maxLength": 63}),
]
ProviderRef = Annotated[
    str,
    PlainValidator(_provider_ref),
    WithJsonSchema(
        {"type": "string", "pattern": r"^@?[a-z0-9][a-z0-9-]{0,62}$", "examples": ["@openai-prod"]}
    ),
]
Text = Annotated[str, PlainValidator(_text), WithJsonSchema({"type": "string"})]
NonEmptyText = Annotated[
    str, PlainValidator(_nonempty_text), WithJsonSchema({"type": "string", "minLength": 1})
]
_NUMBER_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DECIMAL_STRING}]
}
Amount = Annotated[Decimal, PlainValidator(_amount), WithJsonSchema(_NUMBER_SCHEMA)]
Price = Annotated[
    Decimal,
    PlainValidator(_price),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 10000},
                {"type": "string", "pattern": DECIMAL_STRING},
            ],
            "description": "USD per 1M tokens, exact decimal",
        }
    ),
]
PerRequestPrice = Annotated[
    Decimal,
    PlainValidator(_per_request_price),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 100},
                {"type": "string", "pattern": DECIMAL_STRING},
            ],
            "description": "USD per request, exact decimal",
        }
    ),
]
Count = Annotated[int, PlainValidator(to_count), WithJsonSchema({"type": "integer", "minimum": 0})]
Positive = Annotated[
    int, PlainValidator(_positive), WithJsonSchema({"type": "integer", "minimum": 1})
]
Fraction = Annotated[
    Decimal,
    PlainValidator(_fraction),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1}),
]
Period = Annotated[
    str,
    PlainValidator(_period),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^(daily|weekly|monthly|none|[1-9][0-9]{0,3}d)$",
            "description": "calendar-aligned in UTC; <N>d counts from the organization's epoch",
        }
    ),
]
EnvName = Annotated[
    str,
    PlainValidator(_env_name),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}),
]
Url = Annotated[
    str,
    PlainValidator(_url),
    WithJsonSchema({"type": "string", "pattern": "^https?://", "format": "uri"}),
]
IsoDate = Annotated[
    str, PlainValidator(_iso_date), WithJsonSchema({"type": "string", "format": "date"})
]
Sha256Hex = Annotated[
    str,
    PlainValidator(_sha256_hex),
    WithJsonSchema({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
]
WorkspaceItem = Annotated[str, PlainValidator(_workspace_item)]
WorkspaceSelector = Annotated[
    tuple[WorkspaceItem, ...],
    BeforeValidator(_star_or_list),
    WithJsonSchema(
        {
            "anyOf": [
                {"const": "*", "description": "every workspace"},
                {"type": "array", "items": {"type": "string", "pattern": SLUG_PATTERN}},
            ]
        }
    ),
]


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise wrong_type("true or false", value)


def _model_name(value: Any) -> str:
    text = _text(value)
    if not text or text != text.strip() or len(text) > 256 or any(c.isspace() for c in text):
        raise PydanticCustomError(
            "E0205",
            "a model name is 1-256 characters without spaces, found `{value}`",
            {"value": text[:80]},
        )
    return text


def _pattern(value: Any) -> str:
    text = _model_name(value)
    return text


Flag = Annotated[bool, PlainValidator(_flag), WithJsonSchema({"type": "boolean"})]
ModelName = Annotated[
    str,
    PlainValidator(_model_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 256, "pattern": r"^\S+$"}),
]
ModelPattern = Annotated[
    str,
    PlainValidator(_pattern),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "pattern": r"^\S+$",
            "description": "a model name, `@provider/model`, or a glob where only `*` is special",
        }
    ),
]
