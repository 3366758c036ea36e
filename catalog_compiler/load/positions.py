"""Source positions of a parsed document, kept beside (not inside) the plain data.

A position tree mirrors the data:
  scalar   -> Pos                                  (line, col, end_line, end_col), 1-based
  mapping  -> (Pos, {key: (key Pos, child tree)})
  sequence -> (Pos, [child tree, ...])
An alias shares its anchor's tree, so an aliased value reports the anchor's position.
Paths are tuples of mapping keys (str) and sequence indexes (int), as in pydantic's `loc`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

Pos: TypeAlias = tuple[int, int, int, int]
PosTree: TypeAlias = (
    Any  # Pos | tuple[Pos, dict[str, tuple[Pos, PosTree]]] | tuple[Pos, list[PosTree]]
)

NOWHERE: Pos = (0, 0, 0, 0)


def own_pos(tree: PosTree) -> Pos:
    if tree is None:
        return NOWHERE
    if len(tree) == 2:
        pos: Pos = tree[0]
        return pos
    scalar: Pos = tree
    return scalar


def _child(tree: PosTree, step: str | int) -> PosTree:
    if tree is None or len(tree) != 2:
        return None
    container = tree[1]
    if isinstance(container, dict):
        entry = container.get(step) if isinstance(step, str) else container.get(str(step))
        return entry[1] if entry else None
    if isinstance(step, int) and 0 <= step < len(container):
        return container[step]
    return None


def subtree(tree: PosTree, path: Sequence[str | int]) -> tuple[PosTree, int]:
    """The deepest tree along `path`, and how many steps of the path it matched."""
    depth = 0
    for step in path:
        nxt = _child(tree, step)
        if nxt is None:
            break
        tree = nxt
        depth += 1
    return tree, depth


def value_pos(tree: PosTree, path: Sequence[str | int]) -> Pos:
    """Position of the value at `path`, or of its nearest existing ancestor."""
    found, _ = subtree(tree, path)
    return own_pos(found)


def key_pos(tree: PosTree, path: Sequence[str | int]) -> Pos:
    """Position of the mapping key that ends `path` (falls back to the value's position)."""
    if not path:
        return own_pos(tree)
    parent, depth = subtree(tree, path[:-1])
    last = path[-1]
    if depth == len(path) - 1 and parent is not None and len(parent) == 2:
        container = parent[1]
        if isinstance(container, dict) and isinstance(last, str) and last in container:
            kpos: Pos = container[last][0]
            return kpos
    return value_pos(tree, path)
