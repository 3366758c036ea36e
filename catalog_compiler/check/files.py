"""Everything that depends on one file only: parse, secrets, structure, local checks, facts.

The cache stores the small part of a `FileResult` (diagnostics and facts). The YAML data,
positions and typed models are kept only in memory; later stages that need them for a
cached file (compile, explain) re-check that file from its bytes.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from catalog_compiler.check.facts import Facts
from catalog_compiler.diagnostics import Diagnostic, Sink

if TYPE_CHECKING:
    from catalog_compiler.check.schema import Checked
    from catalog_compiler.load.sources import Source
    from catalog_compiler.load.yamlparse import Document
    from catalog_compiler.registry import Registry

MAX_SAME_CODE = 100
UNCAPPED = frozenset({"E0400"})
# A file that fails to parse may define what others reference.
FATAL_PARSE = frozenset({"E0100", "E0102", "E0103", "E0104", "E0108", "E0109"})


class FileResult:
    """Diagnostics and facts of one file; documents and typed models on demand."""

    def __init__(
        self,
        sha256: str,
        display: str,
        diagnostics: list[Diagnostic],
        facts: list[Facts],
        loaded: tuple[list[Document], list[Any]] | None = None,
    ) -> None:
        self.sha256 = sha256
        self.display = display
        self.diagnostics = diagnostics
        self.facts = facts
        self._loaded = loaded
        self._source: tuple[Source, Registry] | None = None

    def attach(self, source: Source, registry: Registry) -> FileResult:
        """Remember where to re-check from when a cached result is asked for its documents."""
        self._source = (source, registry)
        return self

    @property
    def unparsed(self) -> bool:
        return any(d.code in FATAL_PARSE for d in self.diagnostics)

    def _load(self) -> tuple[list[Document], list[Any]]:
        if self._loaded is None:
            if self._source is None:
                raise RuntimeError(f"no source attached to re-check {self.display}")
            fresh = check_file(*self._source)
            self._loaded = fresh._loaded or ([], [])
        return self._loaded

    @property
    def documents(self) -> list[Document]:
        return self._load()[0]

    def checked(self) -> list[Checked]:
        from catalog_compiler.check.schema import Checked

        docs, models = self._load()
        return [Checked(d, d.data["kind"], m) for d, m in zip(docs, models, strict=True) if m]

    def __getstate__(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "display": self.display,
                "diagnostics": self.diagnostics, "facts": self.facts}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._loaded = None
        self._source = None


def check_file(source: Source, registry: Registry) -> FileResult:
    from catalog_compiler.check.local import LocalChecker
    from catalog_compiler.check.schema import check_document
    from catalog_compiler.check.secrets import scan_document
    from catalog_compiler.load.yamlparse import decode, parse_text

    sink = Sink()
    text = decode(source.raw, source.display, sink)
    documents = parse_text(text, source.display, sink) if text is not None else []
    facts: list[Facts] = []
    models: list[Any] = []
    for doc in documents:
        scan_document(doc, sink)
        checked = check_document(doc, sink)
        local = LocalChecker(doc, registry, sink)
        if checked is not None:
            local.check(checked)
        facts.append(local.facts(checked))
        models.append(checked.model if checked else None)
    diagnostics = capped(sink.sorted())
    result = FileResult(source.sha256, source.display, diagnostics, facts, (documents, models))
    return result.attach(source, registry)


def capped(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """At most MAX_SAME_CODE diagnostics of one code per file, then one that counts the rest
    (at the first one left out): 100,000 duplicate keys must not print 26 MB. Secrets are
    never capped: each one is masked where it is reported."""
    counts: Counter[str] = Counter(d.code for d in diagnostics)
    if all(n <= MAX_SAME_CODE for n in counts.values()):
        return diagnostics
    kept: list[Diagnostic] = []
    seen: Counter[str] = Counter()
    for d in diagnostics:
        seen[d.code] += 1
        if seen[d.code] <= MAX_SAME_CODE or d.code in UNCAPPED:
            kept.append(d)
        elif seen[d.code] == MAX_SAME_CODE + 1:
            more = counts[d.code] - MAX_SAME_CODE
            kept.append(d._replace(
                message=f"{more:,} more {d.code} in this file from here on, not shown (the "
                f"first {MAX_SAME_CODE} are): {d.message}",
                notes=(),
            ))  # fmt: skip
    return kept
