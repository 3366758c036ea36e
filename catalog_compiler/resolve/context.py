"""What the resolve stage works on: the typed, linked documents and where they came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from catalog_compiler.check.schema import Checked
from catalog_compiler.diagnostics import Sink, Span
from catalog_compiler.model.documents import (
    Config,
    Integration,
    Model,
    Organization,
    Provider,
    Workspace,
)
from catalog_compiler.positions import key_pos, value_pos
from catalog_compiler.registry import Registry
from catalog_compiler.yamlparse import Document

Path = tuple[str | int, ...]


@dataclass
class Located:
    """A typed document and its source document, for positions."""

    model: Any
    doc: Document


@dataclass
class Context:
    registry: Registry
    sink: Sink
    rel_of: dict[str, str]  # display path -> path relative to the catalog root
    organization: Located
    integrations: dict[str, Located] = field(default_factory=dict)
    providers: dict[str, Located] = field(default_factory=dict)
    workspaces: dict[str, Located] = field(default_factory=dict)
    models: list[Located] = field(default_factory=list)
    configs: dict[str, Located] = field(default_factory=dict)
    origins: dict[str, Span] = field(default_factory=dict)  # provenance element -> source
    defaulted: set[str] = field(default_factory=set)  # limits filled in from *_defaults
    _models_by_home: dict[tuple[str, str], dict[str, list[Located]]] | None = None

    @classmethod
    def build(
        cls, checked: Sequence[Checked], registry: Registry, sink: Sink, rel_of: dict[str, str]
    ) -> Context:
        org = next(c for c in checked if c.kind == "Organization")
        ctx = cls(registry, sink, rel_of, Located(org.model, org.doc))
        tables: dict[str, dict[str, Located]] = {
            "Integration": ctx.integrations,
            "Provider": ctx.providers,
            "Workspace": ctx.workspaces,
            "Config": ctx.configs,
        }
        for c in checked:
            if c.kind == "Model":
                ctx.models.append(Located(c.model, c.doc))
            elif c.kind in tables:
                tables[c.kind].setdefault(cast(Any, c.model).slug, Located(c.model, c.doc))
        return ctx

    @property
    def org(self) -> Organization:
        return cast(Organization, self.organization.model)

    def integration(self, slug: str) -> Integration:
        return cast(Integration, self.integrations[slug].model)

    def provider(self, slug: str) -> Provider:
        return cast(Provider, self.providers[slug].model)

    def workspace(self, slug: str) -> Workspace:
        return cast(Workspace, self.workspaces[slug].model)

    def config(self, slug: str) -> Config:
        return cast(Config, self.configs[slug].model)

    def model_docs(self) -> list[tuple[Model, Document]]:
        return [(cast(Model, m.model), m.doc) for m in self.models]

    def models_on(self, home: str, slug: str) -> dict[str, list[Located]]:
        """Model documents living on one integration or provider, by name (indexed once)."""
        if self._models_by_home is None:
            self._models_by_home = {}
            for located in self.models:
                m = cast(Model, located.model)
                key = ("integration", m.integration) if m.integration else ("provider", m.provider)
                by_name = self._models_by_home.setdefault(cast(tuple[str, str], key), {})
                by_name.setdefault(m.name, []).append(located)
        return self._models_by_home.get((home, slug), {})

    # -- positions ----------------------------------------------------------------------
    def span(self, located: Located, path: Path, key: bool = False) -> Span:
        pos = key_pos(located.doc.pos, path) if key else value_pos(located.doc.pos, path)
        return Span.at(located.doc.file, pos)

    def remember(self, element: str, located: Located, path: Path, key: bool = False) -> None:
        """Where `element` was written; the first place, when a list repeats an entry."""
        if element not in self.origins:
            self.origins[element] = self.span(located, path, key)

    def provenance_origins(self) -> dict[str, str]:
        """Element -> `rel/path.yaml:line:col`: positions live here so the body never moves."""
        out = {}
        for element, span in self.origins.items():
            rel = self.rel_of.get(span.file, span.file)
            out[element] = f"{rel}:{span.line}:{span.column}" if span.line else rel
        return out
