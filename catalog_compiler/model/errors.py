"""The errors value validators raise: a `PydanticCustomError` whose *type* is our diagnostic
code, so `check/schema.py` maps it straight to a located diagnostic with our message."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic_core import PydanticCustomError


class ExplicitNull:
    """Stands for a `null` written where a number belongs (see `common.Strict`): pydantic
    treats `None` as "absent" before our validators run, so the null is swapped for this."""

    def __repr__(self) -> str:
        return "null"


NULL = ExplicitNull()
OMIT_HINT = "omit the field for the default"


def type_name(value: Any) -> str:
    if value is None or value is NULL:
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
    ctx: dict[str, Any] = {"expected": expected, "found": type_name(value)}
    if value is NULL:
        ctx["hint"] = OMIT_HINT
    return PydanticCustomError("E0204", "expected {expected}, found {found}", ctx)
