"""Free-form objects (request params, metadata, condition queries, hook options) are copied
into the bundle and sent upstream as JSON, so they must be JSON any reader holds exactly:
finite numbers, integers within ±(2^53−1), decimals a double round-trips, and bounded
depth and size. Every problem is reported at its own path, all of them in one run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from catalog_compiler.model.numbers import MAX_DIGITS, MAX_SAFE_INT, not_finite, shown

MAX_DEPTH = 16  # levels of nesting inside one free-form object
MAX_VALUES = 10_000  # values (scalars, lists and mappings) inside one free-form object
_NUMBER_TEXT = re.compile(r"[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\Z")

Loc = tuple[str | int, ...]


def check_free_object(value: dict[str, Any]) -> dict[str, Any]:
    """`value` itself, or a ValidationError listing every problem at its path."""
    problems = list(_problems(value))
    if problems:
        raise ValidationError.from_exception_data(
            "free-form object",
            [InitErrorDetails(type=err, loc=loc, input=None) for loc, err in problems],
        )
    return value


def _problems(root: dict[str, Any]) -> Iterator[tuple[Loc, PydanticCustomError]]:
    stack: list[tuple[Any, Loc]] = [(root, ())]
    count = 0
    while stack:
        value, loc = stack.pop()
        count += 1
        if count > MAX_VALUES:
            yield (), _too_big(f"more than {MAX_VALUES:,} values")
            return
        if isinstance(value, dict):
            children: list[tuple[Any, Loc]] = [(v, (*loc, k)) for k, v in value.items()]
        elif isinstance(value, list):
            children = [(v, (*loc, i)) for i, v in enumerate(value)]
        else:
            problem = _scalar_problem(value)
            if problem is not None:
                yield loc, problem
            continue
        if children and len(loc) >= MAX_DEPTH:
            yield loc, _too_big(f"nested deeper than {MAX_DEPTH} levels")
            continue
        stack.extend(reversed(children))


def _too_big(what: str) -> PydanticCustomError:
    return PydanticCustomError(
        "E0216",
        "free-form object too large: {what}",
        {"what": what, "hint": "request params and metadata are small; move bulk data out"},
    )


def _scalar_problem(value: Any) -> PydanticCustomError | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        if len(value) > MAX_DIGITS and _NUMBER_TEXT.match(value):
            return _unsafe(f"a number with {len(value):,} characters", "")
        return None
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            return _unsafe(shown(value), "beyond ±9,007,199,254,740,991 (2^53−1)")
        return None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return not_finite(value)
        if abs(value) > MAX_SAFE_INT:
            return _unsafe(shown(value), "beyond ±9,007,199,254,740,991 (2^53−1)")
        if Decimal(repr(float(value))) != value:
            return _unsafe(shown(value), f"a double holds {float(value)!r}, not this number")
    return None


def _unsafe(value: str, why: str) -> PydanticCustomError:
    message = "{value} cannot be sent as JSON exactly" + (": {why}" if why else "")
    return PydanticCustomError(
        "E0215",
        message,
        {
            "value": value,
            "why": why,
            "hint": "JSON readers keep numbers as doubles: use a smaller or shorter number, "
            "or quote it to send text",
        },
    )
