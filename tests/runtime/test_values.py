"""`@value` (runtime/bundle/values.py) behaves as the frozen dataclass it replaced, at run time,
in everything but the guard on assignment (which mypy holds): equality and hashing by the
fields, slots, `dataclasses.replace`."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from runtime.bundle.money import Estimate, Usage
from runtime.bundle.values import value

counts = st.integers(min_value=0, max_value=10**9 - 1)


@value
class Pair:
    left: int
    right: str = "r"


@given(counts, counts, counts, counts)
def test_usage_is_equal_and_hashes_by_its_fields(a: int, b: int, c: int, d: int) -> None:
    one, other = Usage(a, b, c, d), Usage(a, b, c, d)
    assert one == other and hash(one) == hash(other)
    assert len({one, other, Usage(a + 1, b, c, d)}) == 2


def test_a_value_has_slots_and_no_instance_dict() -> None:
    for made in (Pair(1), Usage(1, 2), Estimate(3, 4)):
        assert not hasattr(made, "__dict__"), type(made).__name__
        assert dataclasses.is_dataclass(made)


def test_replace_and_defaults() -> None:
    made = Pair(1)
    assert made.right == "r"
    changed = dataclasses.replace(made, right="s")
    assert changed == Pair(1, "s") and made == Pair(1)
    assert Pair(1) != Pair(2) and Pair(1) != Pair(1, "t")
