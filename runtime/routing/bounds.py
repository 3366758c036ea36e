"""Bounds on what a client sends: JSON values of limited depth, size and magnitude.

Everything the router receives from a request (an inline config, `metadata`, `params`) is
copied through `plain_json` first: the copy holds only dicts with string keys, lists,
strings, finite numbers, booleans and None, within the limits below, so nothing later (deep
merges, deep copies, comparisons, hashing, JSON encoding) can recurse without end, overflow
or meet a type it does not expect. The walk stops at the first problem; a Decimal becomes the
int or float it will be sent as.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from runtime.bundle.errors import InvalidConfig

MAX_INT = 2**63 - 1  # what every JSON consumer can hold; beyond is an error, not a rounding


@dataclass(frozen=True, slots=True)
class Bounds:
    depth: int  # nesting of objects and lists
    nodes: int  # values in total
    string: int  # characters in one string
    key: int  # characters in one object key
    items: int  # members of one object or list


CONFIG_BOUNDS = Bounds(depth=24, nodes=5_000, string=8_192, key=256, items=512)
METADATA_BOUNDS = Bounds(depth=8, nodes=1_024, string=4_096, key=256, items=256)
PARAMS_BOUNDS = Bounds(depth=64, nodes=200_000, string=32 * 1024 * 1024, key=4_096, items=100_000)


def where(path: tuple[str | int, ...], root: str = "") -> str:
    """("targets", 0, "weight") -> "targets[0].weight", under `root` if given."""
    out = root
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "config"


def problem(value: Any, bounds: Bounds) -> str | None:
    """What is wrong with one scalar, or None; containers are checked by the walk."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > bounds.string:
            return f"a string longer than {bounds.string} characters"
        if not value.isascii() and not _unicode(value):
            return "a string that is not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, int):
        return None if -MAX_INT <= value <= MAX_INT else "an integer beyond ±(2^63-1)"
    if isinstance(value, float):
        return None if math.isfinite(value) else "a number that is not finite (NaN, Infinity)"
    if isinstance(value, Decimal):
        if not value.is_finite() or not math.isfinite(float(value)):
            return "a number that is not finite or beyond the float range"
        return None
    return f"a {type(value).__name__}, which is not a JSON value"


class _Refused(Exception):
    """Raised at the first problem; the path is collected while it unwinds (cheap when,
    as almost always, nothing is wrong)."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.steps: list[str | int] = []


def plain_json(value: Any, bounds: Bounds, root: str = "") -> Any:
    """A validated plain copy of `value`; InvalidConfig naming the path on the first problem."""
    walk = _Walk(bounds)
    try:
        return walk.copy(value, 0)
    except _Refused as refused:
        path = tuple(reversed(refused.steps))
        raise InvalidConfig([f"{where(path, root)}: {refused.message}"]) from None


class _Walk:
    """Recursive, but never deeper than `bounds.depth` (far below Python's limit)."""

    __slots__ = ("bounds", "nodes")

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.nodes = 0

    def copy(self, item: Any, depth: int) -> Any:
        bounds = self.bounds
        self.nodes += 1
        if self.nodes > bounds.nodes:
            raise _Refused(f"more than {bounds.nodes} values in total")
        kind = type(item)
        if kind is str:
            if len(item) > bounds.string or not item.isascii():
                self.scalar(item)
            return item
        if kind is int or kind is float or kind is bool or item is None:
            self.scalar(item)
            return item
        if kind is dict:  # what json.loads gives: skip the slower ABC checks below
            return self.mapping(item, depth)
        if kind is list:
            return self.sequence(item, depth)
        if isinstance(item, Mapping):
            return self.mapping(item, depth)
        if isinstance(item, (list, tuple)):
            return self.sequence(item, depth)
        self.scalar(item)
        return _json_number(item) if isinstance(item, Decimal) else item

    def plain_leaf(self, item: Any) -> bool:
        """Counted and True for a short ASCII string, an integer in range, a bool or None
        within the node bound: what `copy` would return unchanged. False: `copy` decides."""
        kind = type(item)
        if not (
            (kind is str and item.isascii() and len(item) <= self.bounds.string)
            or (kind is int and -MAX_INT <= item <= MAX_INT)
            or kind is bool
            or item is None
        ):
            return False
        if self.nodes >= self.bounds.nodes:
            return False  # `copy` refuses it, naming the bound
        self.nodes += 1
        return True

    def scalar(self, item: Any) -> None:
        found = problem(item, self.bounds)
        if found is not None:
            raise _Refused(found)

    def mapping(self, item: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        bounds = self.bounds
        if depth >= bounds.depth:
            raise _Refused(f"nesting deeper than {bounds.depth} levels")
        if len(item) > bounds.items:
            raise _Refused(f"an object with more than {bounds.items} members")
        out: dict[str, Any] = {}
        for key, child in item.items():
            if type(key) is not str:
                raise _Refused(f"an object key of type {type(key).__name__}")
            if len(key) > bounds.key:
                raise _Refused(f"an object key longer than {bounds.key} characters")
            if not key.isascii() and not _unicode(key):  # its length is checked above
                raise _Refused("an object key that is not valid Unicode")
            if self.plain_leaf(child):  # most members: no call to `copy`
                out[key] = child
                continue
            try:
                out[key] = self.copy(child, depth + 1)
            except _Refused as refused:
                refused.steps.append(key)
                raise
        return out

    def sequence(self, item: list[Any] | tuple[Any, ...], depth: int) -> list[Any]:
        bounds = self.bounds
        if depth >= bounds.depth:
            raise _Refused(f"nesting deeper than {bounds.depth} levels")
        if len(item) > bounds.items:
            raise _Refused(f"a list longer than {bounds.items} items")
        out: list[Any] = []
        for i, child in enumerate(item):
            if self.plain_leaf(child):
                out.append(child)
                continue
            try:
                out.append(self.copy(child, depth + 1))
            except _Refused as refused:
                refused.steps.append(i)
                raise
        return out


def _unicode(text: str) -> bool:
    """False for a string with a lone surrogate, which no UTF-8 encoder can write."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_number(value: Decimal) -> int | float:
    """A caller's Decimal as the JSON number it will be sent as."""
    if value == value.to_integral_value() and abs(value) <= MAX_INT:
        return int(value)
    return float(value)
