"""YAML 1.2 core-schema scalars: what a plain or core-tagged scalar's text means.

Numbers with a fraction become exact `Decimal` (money never passes through float); dates
stay strings; anything the core schema does not resolve is kept as its text.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_NULLS = frozenset(["", "~", "null", "Null", "NULL"])
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_SPECIAL_FLOATS = {
    ".inf": "Infinity", ".Inf": "Infinity", ".INF": "Infinity",
    "+.inf": "Infinity", "+.Inf": "Infinity", "+.INF": "Infinity",
    "-.inf": "-Infinity", "-.Inf": "-Infinity", "-.INF": "-Infinity",
    ".nan": "NaN", ".NaN": "NaN", ".NAN": "NaN",
}  # fmt: skip
_NUMERIC_START = frozenset("0123456789+-.")
CORE = "tag:yaml.org,2002:"


def resolve_plain(text: str) -> Any:
    """YAML 1.2 core schema for untagged plain scalars; fractions become Decimal."""
    if not text:
        return None
    first = text[0]
    if first in _NUMERIC_START:
        if len(text) <= 64:  # longer digit strings stay text (and fail type checks)
            if _INT.match(text):
                return int(text)
            if _FLOAT.match(text):
                return Decimal(text)
            if _HEX.match(text):
                return int(text, 16)
            if _OCT.match(text):
                return int(text[2:], 8)
        special = _SPECIAL_FLOATS.get(text)
        if special:
            return Decimal(special)
        return text
    if first in "nN~":
        return None if text in _NULLS else text
    if first in "tTfF":
        return _BOOLS.get(text, text)
    return text


def resolve_explicit(tag: str, text: str) -> tuple[Any, bool]:
    """Value for a scalar with an explicit core tag; (text, False) when unsupported."""
    short = tag[len(CORE) :] if tag.startswith(CORE) else None
    if short == "str":
        return text, True
    if short in ("int", "float", "bool", "null"):
        value = resolve_plain(text)
        is_bool = isinstance(value, bool)
        if short == "int" and isinstance(value, int) and not is_bool:
            return value, True
        if short == "float" and isinstance(value, (int, Decimal)) and not is_bool:
            return Decimal(value), True
        if (short == "bool" and is_bool) or (short == "null" and value is None):
            return value, True
    return text, False
