"""The validation pipeline: discover -> per-file checks (cached) -> link.

Each stage reads the previous stage's value and appends to one diagnostics sink, so one
run reports every error. Nothing here prints; the CLI renders the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from catalog_compiler.check import parallel
from catalog_compiler.check.cache import ParseCache
from catalog_compiler.check.facts import Facts
from catalog_compiler.check.files import FATAL_PARSE, FileResult
from catalog_compiler.check.gaps import BrokenFile, Gaps
from catalog_compiler.check.link import Index, link
from catalog_compiler.diagnostics import Diagnostic, Severity, Sink
from catalog_compiler.diagnostics.codes import CODES
from catalog_compiler.diagnostics.progress import NullProgress, Progress
from catalog_compiler.load.sources import CATALOG_FILE, Source, discover, find_root
from catalog_compiler.registry import Registry, builtin

if TYPE_CHECKING:
    from catalog_compiler.check.schema import Checked
    from catalog_compiler.load.yamlparse import Document


@dataclass
class Result:
    root: Path | None
    root_display: str
    sources: list[Source] = field(default_factory=list)
    files: list[FileResult] = field(default_factory=list)
    index: Index | None = None
    gaps: Gaps = field(default_factory=Gaps)  # what broken files and documents leave unknown
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def facts(self) -> list[Facts]:
        return [f for fr in self.files for f in fr.facts]

    @property
    def document_count(self) -> int:
        return sum(len(fr.facts) for fr in self.files)

    @property
    def documents(self) -> list[Document]:
        return [d for fr in self.files for d in fr.documents]

    @property
    def checked(self) -> list[Checked]:
        """Typed documents that passed the structure check (unpacked from the cache lazily)."""
        return [c for fr in self.files for c in fr.checked()]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def io_failed(self) -> bool:
        return any(CODES[d.code].is_io for d in self.diagnostics)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_files(
    sources: list[Source],
    registry: Registry,
    cache: ParseCache | None,
    progress: Progress,
    jobs: int = 1,
    warm: parallel.WarmWorker | None = None,
) -> list[FileResult]:
    """Per-file results, through the content-hash cache, on up to `jobs` processes."""
    results: list[FileResult | None] = [cache.get(s) if cache else None for s in sources]
    todo = [i for i, r in enumerate(results) if r is None]
    progress.start("check", len(todo))
    todo_sources = [sources[i] for i in todo]
    for i, fresh in parallel.check_all(todo_sources, registry, jobs, progress, warm):
        results[todo[i]] = fresh
        if cache:
            cache.put(sources[todo[i]], fresh)
    progress.finish()
    done = [r for r in results if r is not None]
    for result, source in zip(done, sources, strict=True):
        result.attach(source, registry)
    return done


def validate(
    path: str | Path,
    *,
    cache: ParseCache | None = None,
    registry: Registry | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    warm: parallel.WarmWorker | None = None,
) -> Result:
    """Run every check on the catalog at `path` and collect all diagnostics.

    `jobs > 1` checks files in forked worker processes (for a CLI run on a large catalog);
    `warm` is a worker started early that checks the changed files when there are few."""
    sink = Sink()
    registry = registry or builtin()
    root_display = str(path)
    result = Result(root=None, root_display=root_display)
    root = find_root(Path(path), sink)
    if root is None:
        result.diagnostics = sink.sorted()
        return result
    if Path(path).name == CATALOG_FILE:
        root_display = str(Path(root_display).parent)
    result.root, result.root_display = root, root_display
    result.sources = discover(root, root_display, sink)
    result.files = check_files(
        result.sources, registry, cache, progress or NullProgress(), jobs=jobs, warm=warm
    )
    unread = unread_paths(sink, result.sources)
    for fr in result.files:
        sink.extend(fr.diagnostics)
    broken = [BrokenFile(p) for p in unread]
    broken += [BrokenFile.scan(s.display, text_of(s)) for s, fr in
               zip(result.sources, result.files, strict=True) if fr.unparsed]  # fmt: skip
    result.gaps = Gaps.of(result.facts, broken)
    root_file = next((s.display for s in result.sources if s.rel == CATALOG_FILE), CATALOG_FILE)
    result.index = link(result.facts, registry, root_file, sink, result.gaps)
    result.diagnostics = sink.sorted()
    return result


def unread_paths(sink: Sink, sources: list[Source]) -> list[str]:
    """Files or directories discovery could not read: they may define anything."""
    read = {s.display for s in sources}
    found = {d.span.file for d in sink if d.code in FATAL_PARSE or CODES[d.code].is_io}
    return sorted(found - read)


def text_of(source: Source) -> str:
    """What a file that failed to parse says, for a scan of the names it would define."""
    return source.raw.decode("utf-8", errors="replace").removeprefix("\ufeff")
