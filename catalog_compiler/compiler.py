"""validate -> resolve -> emit: the whole compile, returning diagnostics and the sealed bundle.

The bundle is loaded back with the runtime before anyone sees it: the router's own index
answers the semantic checks, so compiler and router cannot disagree about access or prices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog_compiler.cache import ParseCache
from catalog_compiler.diagnostics import Diagnostic, Severity, Sink
from catalog_compiler.pipeline import Result, validate
from catalog_compiler.progress import Progress
from catalog_compiler.registry import Registry, builtin
from runtime.bundle import Bundle
from runtime.canonical import seal


@dataclass
class Compiled:
    validation: Result
    diagnostics: list[Diagnostic] = field(default_factory=list)
    data: bytes | None = None  # the sealed bundle file, when there are no errors
    body: dict[str, Any] | None = None
    index: Bundle | None = None

    @property
    def ok(self) -> bool:
        return self.data is not None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]


def compile_catalog(
    path: str | Path,
    *,
    cache: ParseCache | None = None,
    registry: Registry | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
) -> Compiled:
    from catalog_compiler.resolve.build import BundleBuilder
    from catalog_compiler.resolve.context import Context
    from catalog_compiler.resolve.semantics import Semantics

    registry = registry or builtin()
    result = validate(path, cache=cache, registry=registry, progress=progress, jobs=jobs)
    compiled = Compiled(result, diagnostics=list(result.diagnostics))
    if result.errors:
        return compiled
    sink = Sink()
    sink.extend(result.diagnostics)
    rel_of = {s.display: s.rel for s in result.sources}
    ctx = Context.build(result.checked, registry, sink, rel_of)
    builder = BundleBuilder(ctx)
    body = builder.build([{"path": s.rel, "sha256": s.sha256} for s in result.sources])
    data = seal(body)
    index = Bundle.load(data)  # a failure here is a compiler bug, not a catalog error
    Semantics(ctx, index).run(builder.leaves)
    compiled.diagnostics = sink.sorted()
    compiled.body, compiled.index = body, index
    if not compiled.errors:
        compiled.data = data
    return compiled
