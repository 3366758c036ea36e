"""After an import: can the catalog it wrote reach any model at all? An import whose every
entry was skipped, or whose teams name models it did not convert, writes a catalog that
validates but routes nothing; say so rather than let `catalogc validate` pass quietly."""

from __future__ import annotations

from pathlib import Path

from catalog_compiler.tools.importers.emit import join_names


def reach_warnings(out: Path) -> list[str]:
    """Warnings about the catalog written to `out` (none when it reaches models)."""
    from catalog_compiler.compiler import compile_catalog

    compiled = compile_catalog(out)
    if compiled.errors or compiled.index is None:
        count = len(compiled.errors)
        return [f"the imported catalog does not validate ({count} error{'s' * (count != 1)}): "
                f"run `catalogc validate {out}`"]  # fmt: skip
    index = compiled.index
    if not any(p.models for p in index.providers.values()):
        why = "it has no provider" if not index.providers else "no provider offers a model"
        return [f"the imported catalog can reach no model: {why} (nothing usable was "
                "converted: see what was skipped)"]  # fmt: skip
    stuck = [ws for ws in sorted(index.workspaces) if next(index.routes(ws), None) is None]
    if stuck and len(stuck) == len(index.workspaces):
        return [f"the imported catalog can reach no model: none of its workspaces "
                f"({join_names(stuck)}) may use one of its models"]  # fmt: skip
    if stuck:
        return [f"workspaces {join_names(stuck)} can reach no model (W0502)"]
    return []
