"""Value types of the catalog language, each with one validator and its own JSON Schema.

Every validator raises `PydanticCustomError` whose *type* is our diagnostic code, so
`check/schema.py` maps it straight to a located diagnostic with our message (model/errors.py).
Plain validators do their own type checks: no silent coercion ("5" is not 5). Numbers are
declared with the metadata classes of model/numbers.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from catalog_compiler.diagnostics.redact import URL_USERINFO
from catalog_compiler.model.errors import wrong_type
from catalog_compiler.model.numbers import Exact, Whole, bound_text, shown

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PERIOD_RE = re.compile(r"([1-9][0-9]{0,3})d\Z")
# host, then optionally a path, query or fragment: the two parts cannot overlap, so a long
# almost-URL is rejected in linear time (`[^\s/?#]+[^\s]*` backtracked quadratically)
HTTP_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?\Z")
MAX_PRICE_PER_M = Decimal(10_000)
MAX_PER_REQUEST = Decimal(100)
# the runtime counts 1e-16 USD (runtime/bundle/money.py): one token at a 10-place price per 1M
# tokens, or a 16-place fee, is a whole number of those
PRICE_PLACES = 10
PER_REQUEST_PLACES = 16


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
    if not HTTP_URL.match(text):
        raise PydanticCustomError("E0205", "`{value}` is not an http(s) URL", {"value": text[:80]})
    if URL_USERINFO.search(text):  # the router would send it: a credential, never echoed
        raise PydanticCustomError(
            "E0400",
            "literal secret: this URL carries credentials before `@`",
            {
                "hint": "remove `user:password@`; credentials go in the integration's "
                "`credentials` as `{env: NAME}` or `{file: PATH}`"
            },
        )
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
# -- numbers: every bound is documented in docs/diagnostics.md (E0206) ---------------------

MAX_COUNT = 10**15  # counters: the Redis store's Lua is exact for integers below 2^53
MAX_CONCURRENCY = 1_000_000
MAX_MODEL_TOKENS = 100_000_000  # context windows today are at most ~10M tokens
COUNTERS_EXACT = "counters stay exact below that"


@dataclass(frozen=True)
class PriceNumber(Exact):
    """A price: E0401 when out of range; finer than `places` gets the per-token hint."""

    unit: str = "USD per 1M tokens"

    def out_of_range(self, d: Decimal) -> PydanticCustomError:
        return PydanticCustomError(
            "E0401",
            "{what} {value} is outside 0..{hi} {unit}",
            {
                "what": "per-request price" if self.places == PER_REQUEST_PLACES else "price",
                "value": shown(d),
                "hi": bound_text(self.hi or 0),
                "unit": self.unit,
                "hint": "prices are USD per 1M tokens: gpt-4o input is 2.5",
            },
        )

    def too_fine(self, d: Decimal) -> PydanticCustomError:
        what = "per-request price" if self.places == PER_REQUEST_PLACES else "price"
        hint = "prices are kept exact to 1e-16 USD per token"
        if self.places == PRICE_PLACES and d < Decimal("0.001"):
            per_m = shown(d * 1_000_000)
            hint = f"prices are per 1M tokens: if {shown(d)} is per token, write {per_m}"
        return PydanticCustomError(
            "E0205",
            "{what} {value} has more than {places} decimal places",
            {"what": what, "value": shown(d), "places": self.places, "hint": hint},
        )


@dataclass(frozen=True)
class FractionNumber(Exact):
    def out_of_range(self, d: Decimal) -> PydanticCustomError:
        return PydanticCustomError(
            "E0206",
            "must be a fraction in (0, 1], found {value}",
            {"value": shown(d), "hint": "write 0.8 for 80%"},
        )


Amount = Annotated[
    Decimal,
    Exact(Decimal(0), None, None, text=True, description="exact decimal (text keeps it exact)"),
]
Price = Annotated[
    Decimal,
    PriceNumber(
        Decimal(0),
        MAX_PRICE_PER_M,
        PRICE_PLACES,
        what="a price in USD per 1M tokens",
        text=True,
        description="USD per 1M tokens, exact decimal",
    ),
]
PerRequestPrice = Annotated[
    Decimal,
    PriceNumber(
        Decimal(0),
        MAX_PER_REQUEST,
        PER_REQUEST_PLACES,
        what="a price in USD per request",
        text=True,
        description="USD per request, exact decimal",
        unit="USD",
    ),
]
Count = Annotated[int, Whole(0, MAX_COUNT, COUNTERS_EXACT)]
Positive = Annotated[int, Whole(1, MAX_COUNT, COUNTERS_EXACT)]
Concurrency = Annotated[int, Whole(0, MAX_CONCURRENCY, "requests in flight at once")]
Tokens = Annotated[
    int, Whole(1, MAX_MODEL_TOKENS, "no model has more", what="a whole number of tokens")
]
Fraction = Annotated[Decimal, FractionNumber(Decimal(0), Decimal(1), 6, open_lo=True)]
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
    # printable: a control or bidi character (NUL, ESC, U+202E) reached snippets, reports and
    # terminals from a name that passed here (a review); isprintable() is False for spaces
    # of every kind but " ", which the second test refuses
    text = _text(value)
    if not text or len(text) > 256 or not text.isprintable() or " " in text:
        raise PydanticCustomError(
            "E0205",
            "a model name is 1-256 printable characters without spaces, found `{value}`",
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
