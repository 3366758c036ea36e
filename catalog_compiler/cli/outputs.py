"""The one guard every command that writes files uses: what may be replaced, and the
diagnostics (E0006–E0008) when an output is refused or cannot be written."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from catalog_compiler.diagnostics import Diagnostic, Sink, Span
from catalog_compiler.load.fsutil import FileId, OutputRefused, check_output
from catalog_compiler.load.sources import would_be_catalog_file

STDOUT = "-"


def output_problem(path: Path, root: Path, protected: Collection[FileId]) -> list[Diagnostic]:
    """Why `path` must not receive the output of a run that read the catalog at `root`."""
    sink = Sink()
    try:
        check_output(path, protected, "a file of the catalog being read")
    except OutputRefused as exc:
        sink.emit(exc.code, exc.reason, Span(str(path)), help=exc.help)
        return list(sink)
    if would_be_catalog_file(root, path):
        sink.emit(
            "E0006",
            f"`{path}` is inside the catalog: the next run would read the output as a catalog file",
            Span(str(path)),
            help="write it outside the catalog, or with a name that is not *.yaml/*.yml",
        )
    return list(sink)


def unwritable(path: Path, exc: OSError) -> Diagnostic:
    if isinstance(exc, OutputRefused):
        return Sink().emit(exc.code, exc.reason, Span(str(path)), help=exc.help)
    where = "standard output" if str(path) == STDOUT else f"`{path}`"
    reason = exc.strerror or type(exc).__name__
    return Sink().emit("E0008", f"cannot write {where}: {reason}", Span(str(path)))
