"""The validation pipeline: discover -> parse -> check -> link.

Each stage reads the previous stage's value and appends to one diagnostics sink, so one
run reports every error. Nothing here prints; the CLI renders the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from catalog_compiler.cache import ParseCache
from catalog_compiler.check.schema import Checked, check_document
from catalog_compiler.check.secrets import scan_document
from catalog_compiler.codes import CODES
from catalog_compiler.diagnostics import Diagnostic, Severity, Sink
from catalog_compiler.link import Catalog, link
from catalog_compiler.progress import NullProgress, Progress
from catalog_compiler.registry import Registry, builtin
from catalog_compiler.sources import CATALOG_FILE, Source, discover, find_root
from catalog_compiler.yamlparse import Document, decode, parse_text

# A file that fails to parse may define what others reference: say so on dangling refs.
_FATAL_PARSE = frozenset({"E0100", "E0102", "E0103", "E0104", "E0108"})


@dataclass
class Result:
    root: Path | None
    root_display: str
    sources: list[Source] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    checked: list[Checked] = field(default_factory=list)
    catalog: Catalog | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

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


def parse_source(source: Source, sink: Sink) -> list[Document]:
    text = decode(source.raw, source.display, sink)
    if text is None:
        return []
    return parse_text(text, source.display, sink)


def load_documents(
    sources: list[Source], sink: Sink, cache: ParseCache | None, progress: Progress
) -> list[Document]:
    """Parse every source, through the content-hash cache when one is given."""
    documents: list[Document] = []
    progress.start("parse", len(sources))
    for source in sources:
        hit = cache.get(source) if cache else None
        if hit is not None:
            docs, diags = hit
            sink.extend(diags)
        else:
            local = Sink()
            docs = parse_source(source, local)
            diags = list(local)
            sink.extend(diags)
            if cache:
                cache.put(source, docs, diags)
        documents.extend(docs)
        progress.advance()
    progress.finish()
    return documents


def validate(
    path: str | Path,
    *,
    cache: ParseCache | None = None,
    registry: Registry | None = None,
    progress: Progress | None = None,
) -> Result:
    """Run every check on the catalog at `path` and collect all diagnostics."""
    sink = Sink()
    progress = progress or NullProgress()
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
    result.documents = load_documents(result.sources, sink, cache, progress)
    unparsed = sorted({d.span.file for d in sink if d.code in _FATAL_PARSE})
    invalid: list[Document] = []
    progress.start("check", len(result.documents))
    for doc in result.documents:
        scan_document(doc, sink)
        checked = check_document(doc, sink)
        if checked is None:
            invalid.append(doc)
        else:
            result.checked.append(checked)
        progress.advance()
    progress.finish()
    root_file = next((s.display for s in result.sources if s.rel == CATALOG_FILE), CATALOG_FILE)
    result.catalog = link(
        result.checked, invalid, registry or builtin(), root_file, sink, unparsed=unparsed
    )
    result.diagnostics = sink.sorted()
    return result
