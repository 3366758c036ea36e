"""What the resolve stage works on: the typed, linked documents and where they came from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from catalog_compiler.check.gaps import Gaps
from catalog_compiler.check.schema import Checked
from catalog_compiler.diagnostics import Sink, Span
from catalog_compiler.load.positions import key_pos, value_pos
from catalog_compiler.load.yamlparse import Document
from catalog_compiler.model.documents import (
    Config,
    Integration,
    Model,
    Organization,
    Provider,
    Workspace,
)
from catalog_compiler.model.types import PERIOD_RE
from catalog_compiler.registry import Registry
from catalog_compiler.services import SERVICES

Path = tuple[str | int, ...]
# Only in a catalog that already has errors (no bundle is written): lets `<N>d` budgets
# resolve when the Organization's `epoch` is missing or the Organization is broken.
STAND_IN_EPOCH = "2000-01-01"


def organization_or_stand_in(org: Checked | None, root_file: str) -> Located:
    """The Organization, or, when it is broken or missing, one without limits or rules:
    what it would have declared is unknown, so no check may conclude from its absence."""
    if org is not None:
        return Located(org.model, org.doc)
    stand_in = Organization(kind="Organization", version=1, name="?")
    return Located(stand_in, Document(root_file, 0, {}, None))


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
    # Selections (`workspaces:`, `providers:`) naming something undefined, broken or left out:
    # who is *not* in them is uncertain (a misspelt entry may have meant anyone).
    incomplete: set[str] = field(default_factory=set)
    _models_by_home: dict[tuple[str, str], dict[str, list[Located]]] | None = None

    @classmethod
    def build(
        cls,
        checked: Sequence[Checked],
        registry: Registry,
        sink: Sink,
        rel_of: dict[str, str],
        gaps: Gaps | None = None,
        root_file: str = "catalog.yaml",
    ) -> Context:
        """The documents to resolve: those that passed their checks and whose own
        dependencies did (a provider needs its integration, a Model its home). What is left
        out is recorded in `gaps.blocked`; the checks that depend on it are skipped."""
        gaps = gaps if gaps is not None else Gaps()
        org = next((c for c in checked if c.kind == "Organization"), None)
        ctx = cls(registry, sink, rel_of, organization_or_stand_in(org, root_file))
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
        ctx.drop_unresolvable(gaps)
        return ctx

    def drop_unresolvable(self, gaps: Gaps) -> None:
        """Leave out what cannot be resolved, and references to what was left out."""
        for slug, located in list(self.integrations.items()):
            if located.model.service not in SERVICES:  # E0306 said so
                del self.integrations[slug]
                gaps.blocked["Integration"].add(slug)
        for slug, located in list(self.providers.items()):
            if located.model.integration not in self.integrations:
                del self.providers[slug]
                gaps.blocked["Provider"].add(slug)
        for located in self.models:
            if self.home_of(located.model) is None:  # its home is broken or misspelt
                gaps.model_names.setdefault(None, set()).add(located.model.name)
        self.models = [m for m in self.models if self.home_of(m.model) is not None]
        for table, prefix in ((self.integrations, "integrations"), (self.providers, "providers"),
                              (self.configs, "configs")):  # fmt: skip
            for slug, located in table.items():
                listed = located.model.workspaces or ()
                if any(("Workspace", w) in gaps.undefined for w in listed):
                    self.incomplete.add(f"{prefix}/{slug}/workspaces")  # may miss a misspelt one
        for slug, located in self.workspaces.items():
            ws: Workspace = located.model
            update: dict[str, Any] = {}
            if ws.providers is not None:
                kept = tuple(p for p in ws.providers if p in self.providers)
                if kept != ws.providers:
                    update["providers"] = kept
                    self.incomplete.add(f"workspaces/{slug}/providers")
            if ws.default_config is not None and ws.default_config not in self.configs:
                update["default_config"] = None
            if update:
                located.model = ws.model_copy(update=update)
        if self.org.epoch is None and any(self.day_periods()):
            self.organization.model = self.org.model_copy(update={"epoch": STAND_IN_EPOCH})

    def home_of(self, model: Model) -> Located | None:
        if model.integration is not None:
            return self.integrations.get(model.integration)
        return self.providers.get(model.provider or "")

    def day_periods(self) -> Iterator[str]:
        """Budget periods counted from the epoch, anywhere in the catalog."""
        located = [self.organization, *self.integrations.values(), *self.providers.values(),
                   *self.workspaces.values()]  # fmt: skip
        for loc in located:
            for name in ("", "provider_defaults", "workspace_defaults"):
                limits = getattr(loc.model, name, None) if name else loc.model
                for budget in getattr(limits, "budgets", ()):
                    if PERIOD_RE.match(budget.period):
                        yield budget.period

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
