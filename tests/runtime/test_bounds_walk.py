"""runtime/routing/bounds.py's walk, with its shortcuts for plain leaves, against the rule
written out plainly: the same copy, or the same refusal naming the same first problem."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.bundle.errors import InvalidConfig
from runtime.routing.bounds import MAX_INT, Bounds, plain_json, problem, where
from tests.json_equality import same

keys = st.one_of(st.text(max_size=6), st.just("\ud800"), st.integers(0, 3))
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.sampled_from([MAX_INT, -MAX_INT, MAX_INT + 1, -MAX_INT - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.just("é\ud800"),
    st.decimals(allow_nan=True, allow_infinity=True), st.just(Decimal("1e400")),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=25,
)
bounds = st.builds(
    Bounds,
    depth=st.integers(1, 5), nodes=st.integers(1, 20), string=st.integers(0, 8),
    key=st.integers(0, 5), items=st.integers(0, 5),
)  # fmt: skip


class Refused(Exception):
    pass


def reference(value: Any, limits: Bounds, root: str) -> Any:
    """The rule: depth first, members in order, the first problem refuses."""
    count = [0]

    def visit(item: Any, depth: int, path: tuple[str | int, ...]) -> Any:
        def refuse(message: str) -> Refused:
            return Refused(f"{where(path, root)}: {message}")

        count[0] += 1
        if count[0] > limits.nodes:
            raise refuse(f"more than {limits.nodes} values in total")
        if isinstance(item, dict):
            if depth >= limits.depth:
                raise refuse(f"nesting deeper than {limits.depth} levels")
            if len(item) > limits.items:
                raise refuse(f"an object with more than {limits.items} members")
            out = {}
            for key, child in item.items():
                if type(key) is not str:
                    raise refuse(f"an object key of type {type(key).__name__}")
                if len(key) > limits.key:
                    raise refuse(f"an object key longer than {limits.key} characters")
                try:
                    key.encode("utf-8")
                except UnicodeEncodeError:
                    raise refuse("an object key that is not valid Unicode") from None
                out[key] = visit(child, depth + 1, (*path, key))
            return out
        if isinstance(item, list | tuple):
            if depth >= limits.depth:
                raise refuse(f"nesting deeper than {limits.depth} levels")
            if len(item) > limits.items:
                raise refuse(f"a list longer than {limits.items} items")
            return [visit(child, depth + 1, (*path, i)) for i, child in enumerate(item)]
        found = problem(item, limits)
        if found is not None:
            raise refuse(found)
        if isinstance(item, Decimal):
            whole = item == item.to_integral_value() and abs(item) <= MAX_INT
            return int(item) if whole else float(item)
        return item

    return visit(value, 0, ())


@settings(max_examples=1500)
@given(values, bounds)
def test_the_walk_copies_or_refuses_as_the_rule_says(value: Any, limits: Bounds) -> None:
    try:
        expected: Any = ("copy", reference(value, limits, "params"))
    except Refused as refused:
        expected = ("refused", str(refused))
    try:
        found: Any = ("copy", plain_json(value, limits, "params"))
    except InvalidConfig as exc:
        found = ("refused", exc.problems[0])
    assert found[0] == expected[0], (found, expected)
    if found[0] == "copy":
        assert same(found[1], expected[1])
        assert found[1] is not value or not isinstance(value, dict | list)  # a copy
    else:
        assert found[1] == expected[1]
