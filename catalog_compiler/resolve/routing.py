"""Routing configs compiled to the runtime's normalized tree (SPEC §5).

The structure was checked by the typed models; the tree and its semantic checks come from
the runtime's own normalizer (runtime/configs.py), so the router validating an inline config
and the compiler applying a catalog's config follow one set of rules. Here its problems get
their source positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog_compiler.resolve.context import Context, Located, Path
from runtime.configs import normalize


@dataclass
class Leaf:
    """A compiled leaf and where it was written, for per-workspace reachability checks."""

    config: str
    node: dict[str, Any]
    path: Path


class ConfigCompiler:
    def __init__(self, ctx: Context, slug: str, located: Located) -> None:
        self.ctx = ctx
        self.slug = slug
        self.located = located
        self.leaves: list[Leaf] = []

    def compile(self) -> dict[str, Any]:
        raw = self.located.doc.data["config"]
        result = normalize(raw)
        for problem in result.problems:
            span = self.ctx.span(self.located, ("config", *problem.path), key=problem.at_key)
            self.ctx.sink.emit(problem.code, problem.message, span, help=problem.help)
        for node, path in result.leaves:
            where = ("config", *path)
            self.leaves.append(Leaf(self.slug, node, where))
            self.ctx.remember(f"configs/{self.slug}/tree{tree_key(path)}", self.located, where)
        return result.tree


def tree_key(path: Path) -> str:
    """`("targets", 1, "targets", 0)` -> "/1/0": a leaf's place in the tree."""
    return "".join(f"/{step}" for step in path if isinstance(step, int))
