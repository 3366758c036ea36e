"""`@value`: the dataclass of a value made per request (an attempt, a plan, an upstream call,
its usage). Frozen to the type checker (PEP 681's `frozen_default`: mypy refuses any
assignment to a field), a plain slotted dataclass at run time, hashable by its fields as a
frozen one is.

Why not `frozen=True`: a frozen dataclass's `__init__` sets each field through
`object.__setattr__`, a generic call several times the cost of a plain slot store; the
values one gateway request makes (about sixty fields) cost 15% of the request handler's
instructions that way (benchmarks/RESULTS.md). Values made once, at load (the bundle's
model), stay `frozen=True`: there the run-time guarantee costs nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def value(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
