"""How values are written into the bundle: exact decimals as strings, params as JSON numbers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def dec(value: Decimal) -> str:
    """Exact and normalized: 2.50 -> "2.5", 5E+4 -> "50000"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def plain(value: Any) -> Any:
    """YAML data as JSON data: request params are numbers on the wire, not strings.

    A Decimal from YAML becomes an int when whole, else the float with the same shortest
    representation (0.7 stays 0.7); the float is deterministic on every machine."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        return float(value)
    return value
