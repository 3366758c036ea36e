"""validate -> resolve -> emit: the whole compile, returning diagnostics and the sealed bundle.

The bundle is loaded back with the runtime before anyone sees it: the router's own index
answers the semantic checks, so compiler and router cannot disagree about access or prices.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog_compiler.check.cache import ParseCache
from catalog_compiler.diagnostics import Diagnostic, Severity, Sink
from catalog_compiler.diagnostics.progress import Progress
from catalog_compiler.load.sources import CATALOG_FILE
from catalog_compiler.pipeline import Result, validate
from catalog_compiler.registry import Registry, builtin
from runtime.bundle.canonical import seal
from runtime.bundle.errors import BundleError
from runtime.bundle.load import Bundle


@dataclass
class Compiled:
    validation: Result
    diagnostics: list[Diagnostic] = field(default_factory=list)
    data: bytes | None = None  # the sealed bundle file, when there are no errors
    # The resolved catalog, when every document passed validation (the semantic checks may
    # still have found errors); never a catalog resolved around broken documents.
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
    """Every check of the catalog at `path`, and its bundle when there is no error.

    Errors in some documents do not stop the later stages: the catalog is resolved from the
    documents that passed (see Context.build), and each check skips exactly what depends on
    a broken document (see check/gaps.py), so one run reports every mistake and invents none."""
    registry = registry or builtin()
    result = validate(path, cache=cache, registry=registry, progress=progress, jobs=jobs)
    compiled = Compiled(result, diagnostics=list(result.diagnostics))
    if result.root is None or result.io_failed:
        return compiled
    sink = Sink()
    sink.extend(result.diagnostics)
    resolved: tuple[bytes, dict[str, Any], Bundle] | None = None
    try:
        resolved = resolve(result, registry, sink)
    except PARTIAL_FAILURES:
        # Only reachable from a catalog that already has errors (without, it is a bug):
        # a part that cannot be resolved is explained by them.
        if not has_errors(sink) or os.environ.get("CATALOGC_DEBUG"):
            raise
    compiled.diagnostics = one_report_per_price(sink.sorted())
    if resolved is not None and not result.errors:  # complete, not resolved around errors
        data, compiled.body, compiled.index = resolved
        compiled.data = None if compiled.errors else data
    return compiled


PARTIAL_FAILURES = (BundleError, KeyError, TypeError, ValueError, AttributeError)


def resolve(result: Result, registry: Registry, sink: Sink) -> tuple[bytes, dict[str, Any], Bundle]:
    """Resolve the documents that passed their checks, emit and load the bundle, and run
    the checks on the resolved catalog."""
    from catalog_compiler.resolve.build import BundleBuilder
    from catalog_compiler.resolve.context import Context
    from catalog_compiler.resolve.prices import PriceCheck
    from catalog_compiler.resolve.semantics import Semantics

    rel_of = {s.display: s.rel for s in result.sources}
    root_file = next((s.display for s in result.sources if s.rel == CATALOG_FILE), CATALOG_FILE)
    ctx = Context.build(result.checked, registry, sink, rel_of, result.gaps, root_file)
    builder = BundleBuilder(ctx)
    body = builder.build([{"path": s.rel, "sha256": s.sha256} for s in result.sources])
    data = seal(body)
    # The router's full gate, also on the meaning of routing configs, unless the config
    # compiler already reported problems there (with positions): then only their shape.
    # Without errors, a failure here is a compiler bug.
    index = Bundle.load(data, check_routing=not has_errors(sink))
    Semantics(ctx, index, result.gaps).run(builder.leaves)
    PriceCheck(ctx, result.gaps).run()
    return data, body, index


def has_errors(sink: Sink) -> bool:
    return any(d.severity is Severity.ERROR for d in sink)


def one_report_per_price(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """A price far from the registry's (E0512) is also the tiny price W0400 warns about:
    the error, which names the registry's price, is the one report."""
    far = {d.span for d in diagnostics if d.code == "E0512"}
    return [d for d in diagnostics if not (d.code == "W0400" and d.span in far)]
