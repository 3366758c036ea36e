"""Link stage: one Organization, unique slugs, and every reference pointing somewhere real.

Works on the documents that passed the structure check; slugs of documents that failed it
still count as defined, so one typo does not cascade into dangling-reference noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from catalog_compiler.check.schema import Checked
from catalog_compiler.diagnostics import Note, Sink, Span
from catalog_compiler.model.common import Limits
from catalog_compiler.model.documents import (
    Config,
    Integration,
    Model,
    Organization,
    Provider,
)
from catalog_compiler.model.routing import Target
from catalog_compiler.model.types import PERIOD_RE, SLUG_RE
from catalog_compiler.positions import key_pos, value_pos
from catalog_compiler.registry import Registry
from catalog_compiler.services import ALIASES, SERVICES
from catalog_compiler.suggest import did_you_mean
from catalog_compiler.yamlparse import Document

SLUGGED = ("Integration", "Provider", "Workspace", "Config")
# kind -> (field, kind it names, "@" when written as a provider reference)
REF_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "Integration": (("workspaces", "Workspace", ""),),
    "Provider": (("integration", "Integration", ""), ("workspaces", "Workspace", "")),
    "Workspace": (("providers", "Provider", "@"), ("default_config", "Config", "")),
    "Model": (("integration", "Integration", ""), ("provider", "Provider", "@")),
    "Config": (("workspaces", "Workspace", ""),),
}
URL_ONLY_SETTINGS = frozenset({"resource_name"})


@dataclass
class Catalog:
    """The linked catalog: valid documents indexed by slug."""

    organization: Checked | None = None
    integrations: dict[str, Checked] = field(default_factory=dict)
    providers: dict[str, Checked] = field(default_factory=dict)
    workspaces: dict[str, Checked] = field(default_factory=dict)
    configs: dict[str, Checked] = field(default_factory=dict)
    models: list[Checked] = field(default_factory=list)
    defined: dict[str, set[str]] = field(default_factory=dict)  # incl. invalid documents

    def table(self, kind: str) -> dict[str, Checked]:
        tables = {
            "Integration": self.integrations,
            "Provider": self.providers,
            "Workspace": self.workspaces,
            "Config": self.configs,
        }
        return tables[kind]

    def integration_of(self, provider: str) -> Integration | None:
        entry = self.providers.get(provider)
        if entry is None:
            return None
        integ = self.integrations.get(cast(Provider, entry.model).integration)
        return cast(Integration, integ.model) if integ else None


def split_model_string(text: str) -> tuple[str | None, str]:
    """`@vertex/claude@2025` -> ("vertex", "claude@2025"); a bare model -> (None, model)."""
    if text.startswith("@") and "/" in text:
        provider, _, model = text[1:].partition("/")
        return provider, model
    return None, text


class Linker:
    def __init__(
        self, registry: Registry, root_file: str, sink: Sink, unparsed: Sequence[str] = ()
    ) -> None:
        self.unparsed = list(unparsed)
        self.used_integrations: set[str] = set()  # named by any Provider, valid or not
        self.registry = registry
        self.root_file = root_file
        self.sink = sink
        self.cat = Catalog()

    # -- helpers ----------------------------------------------------------------------
    def at(self, doc: Document, path: Sequence[str | int], key: bool = False) -> Span:
        pos = key_pos(doc.pos, path) if key else value_pos(doc.pos, path)
        return Span.at(doc.file, pos)

    def dangling(
        self, code: str, what: str, name: str, known: Iterable[str], span: Span, prefix: str = ""
    ) -> None:
        guess = did_you_mean(name, known)
        notes = [Note(Span(f), "this file could not be parsed; it may define the name")
                 for f in self.unparsed]  # fmt: skip
        self.sink.emit(
            code,
            f"unknown {what} `{prefix}{name}`",
            span,
            help=f"did you mean `{prefix}{guess}`?" if guess else f"no {what} is named so",
            notes=notes,
        )

    def check_ref(
        self, kind: str, name: str, doc: Document, path: Sequence[str | int], prefix: str = ""
    ) -> bool:
        if name in self.cat.defined.get(kind, set()):
            return True
        code = {"Integration": "E0301", "Provider": "E0302", "Workspace": "E0303",
                "Config": "E0305"}[kind]  # fmt: skip
        self.dangling(code, kind.lower(), name, self.cat.defined.get(kind, set()),
                      self.at(doc, path), prefix)  # fmt: skip
        return False

    # -- stages -----------------------------------------------------------------------
    def index(self, checked: list[Checked], invalid: list[Document]) -> None:
        cat = self.cat
        firsts: dict[tuple[str, str], Document] = {}
        for kind in SLUGGED:
            cat.defined[kind] = set()
        for doc in invalid:  # still defines its slug, if it has a usable one
            data = doc.data if isinstance(doc.data, dict) else {}
            raw_kind, slug = data.get("kind"), data.get("slug")
            if raw_kind in SLUGGED and isinstance(slug, str):
                cat.defined[raw_kind].add(slug)
        for entry in checked:
            if entry.kind == "Organization":
                self.organization(entry)
            elif entry.kind == "Model":
                cat.models.append(entry)
            else:
                slug = cast(Any, entry.model).slug
                first = firsts.get((entry.kind, slug))
                if first is not None:
                    self.sink.emit(
                        "E0300",
                        f"duplicate {entry.kind.lower()} slug `{slug}`",
                        self.at(entry.doc, ("slug",)),
                        help="slugs are unique per kind: rename one",
                        notes=[Note(self.at(first, ("slug",)), "first defined here")],
                    )
                    continue
                firsts[(entry.kind, slug)] = entry.doc
                cat.table(entry.kind)[slug] = entry
                cat.defined[entry.kind].add(slug)

    def organization(self, entry: Checked) -> None:
        doc = entry.doc
        if doc.file != self.root_file:
            self.sink.emit(
                "E0211",
                "the Organization document belongs in the root catalog.yaml",
                self.at(doc, ("kind",)),
                help="move it to catalog.yaml",
            )
        if self.cat.organization is not None:
            self.sink.emit(
                "E0210",
                "a catalog has exactly one Organization",
                self.at(doc, ("kind",)),
                notes=[Note(self.at(self.cat.organization.doc, ("kind",)), "first defined here")],
            )
            return
        self.cat.organization = entry

    def require_organization(self, org_invalid: bool) -> None:
        if self.cat.organization is None and not org_invalid:
            self.sink.emit(
                "E0209",
                "catalog.yaml has no Organization document",
                Span(self.root_file, 1, 1, 1, 1),
                help="add `kind: Organization` with `version: 1` and `name:`",
            )

    def integrations(self) -> None:
        for slug, entry in self.cat.integrations.items():
            integ = cast(Integration, entry.model)
            doc = entry.doc
            service = SERVICES.get(integ.service)
            if service is None:
                guess = ALIASES.get(integ.service) or did_you_mean(integ.service, SERVICES)
                self.sink.emit(
                    "E0306",
                    f"unknown service `{integ.service}` in integration `{slug}`",
                    self.at(doc, ("service",)),
                    help=f"did you mean `{guess}`?"
                    if guess
                    else f"supported services: {', '.join(sorted(SERVICES))}",
                )
                continue
            self.credentials(integ, doc)
            seen: dict[str, int] = {}
            for i, custom in enumerate(integ.models.custom if integ.models else ()):
                if custom.name in seen:
                    self.sink.emit(
                        "E0300",
                        f"custom model `{custom.name}` is declared twice on `{slug}`",
                        self.at(doc, ("models", "custom", i, "name")),
                        notes=[Note(self.at(doc, ("models", "custom", seen[custom.name], "name")),
                                    "first declared here")],
                    )  # fmt: skip
                seen.setdefault(custom.name, i)
                self.base_model(integ.service, custom.base_model, doc,
                                ("models", "custom", i, "base_model"))  # fmt: skip

    def credentials(self, integ: Integration, doc: Document) -> None:
        service = SERVICES[integ.service]
        known_creds = service.credentials + service.optional_credentials
        for name in integ.credentials:
            if name not in known_creds:
                guess = did_you_mean(name, known_creds)
                self.sink.emit(
                    "E0307",
                    f"`{name}` is not a credential of service `{service.id}`",
                    self.at(doc, ("credentials", name), key=True),
                    help=f"did you mean `{guess}`?"
                    if guess
                    else f"{service.id} takes: {', '.join(known_creds) or 'no credentials'}",
                )
        for name in service.credentials:
            if name not in integ.credentials:
                self.sink.emit(
                    "E0307",
                    f"service `{service.id}` needs credential `{name}`",
                    self.at(doc, ("credentials",) if "credentials" in doc.data else ("service",)),
                    help=f"add `{name}: {{env: {name.upper()}}}` under `credentials`",
                )
        known_settings = service.settings + service.optional_settings
        for name in integ.settings:
            if name not in known_settings:
                guess = did_you_mean(name, known_settings)
                self.sink.emit(
                    "E0307",
                    f"`{name}` is not a setting of service `{service.id}`",
                    self.at(doc, ("settings", name), key=True),
                    help=f"did you mean `{guess}`?"
                    if guess
                    else f"{service.id} takes: {', '.join(known_settings) or 'no settings'}",
                )
        for name in service.settings:
            if name in integ.settings or (name in URL_ONLY_SETTINGS and integ.base_url):
                continue
            self.sink.emit(
                "E0307",
                f"service `{service.id}` needs setting `{name}`",
                self.at(doc, ("settings",) if "settings" in doc.data else ("service",)),
                help=f"add `settings: {{{name}: …}}`",
            )
        if service.base_url is None and integ.base_url is None:
            self.sink.emit(
                "E0203",
                f"service `{service.id}` is self-hosted: the integration needs `base_url`",
                self.at(doc, ("service",)),
                help="add `base_url: https://…/v1`",
            )

    def base_model(
        self, service: str, name: str | None, doc: Document, path: Sequence[str | int]
    ) -> None:
        if name is None or service not in SERVICES:
            return
        models = self.registry.models(service)
        if name not in models:
            guess = did_you_mean(name, models)
            self.sink.emit(
                "E0304",
                f"`{name}` is not a built-in model of service `{service}`",
                self.at(doc, path),
                help=f"did you mean `{guess}`?"
                if guess
                else "`base_model` names a built-in model; omit it for a wholly custom model",
            )

    def simple_refs(self, docs: Iterable[Document]) -> None:
        """Top-level references, read from the raw data so invalid documents are checked too."""
        for doc in docs:
            data = doc.data if isinstance(doc.data, dict) else {}
            for field_name, target, prefix in REF_FIELDS.get(data.get("kind"), ()):  # type: ignore[arg-type]
                value = data.get(field_name)
                items = enumerate(value) if isinstance(value, list) else [(None, value)]
                for i, item in items:
                    if not isinstance(item, str) or item == "*":
                        continue
                    name = item.removeprefix("@") if prefix else item
                    if not SLUG_RE.match(name):
                        continue  # reported as an invalid slug by the structure check
                    path = (field_name,) if i is None else (field_name, i)
                    if target == "Integration" and data.get("kind") == "Provider":
                        self.used_integrations.add(name)
                    self.check_ref(target, name, doc, path, prefix)

    def models(self) -> None:
        seen: dict[tuple[str, str], Document] = {}
        for entry in self.cat.models:
            model = cast(Model, entry.model)
            doc = entry.doc
            if model.integration is not None:
                home = f"integration `{model.integration}`"
                integ = self.cat.integrations.get(model.integration)
            else:
                home = f"provider `@{model.provider}`"
                integ_model = self.cat.integration_of(cast(str, model.provider))
                integ = self.cat.integrations.get(integ_model.slug) if integ_model else None
            key = (home, model.name)
            if key in seen:
                self.sink.emit(
                    "E0300",
                    f"model `{model.name}` is declared twice on {home}",
                    self.at(doc, ("name",)),
                    notes=[Note(self.at(seen[key], ("name",)), "first declared here")],
                )
            seen.setdefault(key, doc)
            if integ is not None:
                service = cast(Integration, integ.model).service
                self.base_model(service, model.base_model, doc, ("base_model",))

    def exposed_models(self, provider: str) -> set[str]:
        """Every model name the provider's integration exposes (registry ∪ custom)."""
        integ = self.cat.integration_of(provider)
        if integ is None:
            return set()
        names = set(self.registry.models(integ.service))
        names.update(c.name for c in (integ.models.custom if integ.models else ()))
        for entry in self.cat.models:
            m = cast(Model, entry.model)
            if m.integration == integ.slug or m.provider == provider:
                names.add(m.name)
        return names

    def configs(self) -> None:
        for entry in self.cat.configs.values():
            cfg = cast(Config, entry.model)
            self.target(cfg.config, None, entry.doc, ("config",))

    def target(
        self, t: Target, inherited: str | None, doc: Document, path: tuple[str | int, ...]
    ) -> None:
        provider = inherited
        if t.provider is not None:
            provider = self.target_provider(t, doc, (*path, "provider"))
        elif t.virtual_key is not None:
            name = t.virtual_key.removeprefix("@")
            provider = name if self.check_ref("Provider", name, doc, (*path, "virtual_key"),
                                              prefix="@") else None  # fmt: skip
        model = (t.override_params or {}).get("model")
        if isinstance(model, str):
            self.target_model(model, provider, doc, (*path, "override_params", "model"))
        for i, child in enumerate(t.targets or ()):
            self.target(child, provider, doc, (*path, "targets", i))

    def target_provider(self, t: Target, doc: Document, path: tuple[str | int, ...]) -> str | None:
        ref = cast(str, t.provider)
        if ref.startswith("@"):
            return ref[1:] if self.check_ref("Provider", ref[1:], doc, path, prefix="@") else None
        if ref in SERVICES or ref in ALIASES:
            return None  # a raw service with its own (referenced) credentials: not governed
        if ref in self.cat.defined["Provider"]:
            self.sink.emit(
                "E0205",
                f"catalog providers are written with `@`: `@{ref}`",
                self.at(doc, path),
                help=f'write `provider: "@{ref}"`',
            )
            return None
        self.check_ref("Provider", ref, doc, path, prefix="@")
        return None

    def target_model(
        self, text: str, provider: str | None, doc: Document, path: tuple[str | int, ...]
    ) -> None:
        named, model = split_model_string(text)
        if named is not None:
            if not self.check_ref("Provider", named, doc, path, prefix="@"):
                return
            provider = named
        if provider is None or provider not in self.cat.providers:
            return
        exposed = self.exposed_models(provider)
        if exposed and model not in exposed:
            integ = self.cat.integration_of(provider)
            guess = did_you_mean(model, exposed)
            self.sink.emit(
                "E0304",
                f"`{model}` is not a model of `@{provider}` "
                f"(service `{integ.service if integ else '?'}`)",
                self.at(doc, path),
                help=f"did you mean `{guess}`?"
                if guess
                else "declare it as a custom model (a Model document) if it really exists",
            )

    def unused_integrations(self) -> None:
        for slug, entry in self.cat.integrations.items():
            if slug not in self.used_integrations and not self.unparsed:
                self.sink.emit(
                    "W0300",
                    f"integration `{slug}` has no provider: nothing can route through it",
                    self.at(entry.doc, ("slug",)),
                    help=f"add a Provider with `integration: {slug}`, or remove the integration",
                )

    def limits(self) -> None:
        everything = [*self.cat.integrations.values(), *self.cat.providers.values(),
                      *self.cat.workspaces.values()]  # fmt: skip
        if self.cat.organization is not None:
            everything.append(self.cat.organization)
        for entry in everything:
            self.duplicate_limits(cast(Limits, entry.model), entry.doc, ())
            for block in ("provider_defaults", "workspace_defaults"):
                nested = getattr(entry.model, block, None)
                if nested is not None:
                    self.duplicate_limits(nested, entry.doc, (block,))

    def duplicate_limits(self, limits: Limits, doc: Document, path: tuple[str, ...]) -> None:
        seen: dict[tuple[str, str], int] = {}
        for i, b in enumerate(limits.budgets):
            key = (b.unit, b.period)
            if key in seen:
                self.sink.emit(
                    "E0212",
                    f"two `{b.unit}` budgets for period `{b.period}` at one level",
                    self.at(doc, (*path, "budgets", i)),
                    help="keep one: a level has one pool per unit and period",
                    notes=[Note(self.at(doc, (*path, "budgets", seen[key])), "first one here")],
                )
            seen.setdefault(key, i)
            if PERIOD_RE.match(b.period):
                self.require_epoch(doc, (*path, "budgets", i, "period"))
        rseen: dict[tuple[str, str], int] = {}
        for i, r in enumerate(limits.rate_limits):
            key = (r.unit, r.per)
            if key in rseen:
                self.sink.emit(
                    "E0212",
                    f"two `{r.unit}` rate limits per `{r.per}` at one level",
                    self.at(doc, (*path, "rate_limits", i)),
                    help="keep one: a level has one bucket per unit and interval",
                    notes=[
                        Note(self.at(doc, (*path, "rate_limits", rseen[key])), "first one here")
                    ],
                )
            rseen.setdefault(key, i)

    def require_epoch(self, doc: Document, path: tuple[str | int, ...]) -> None:
        org = self.cat.organization
        if org is not None and cast(Organization, org.model).epoch is None:
            self.sink.emit(
                "E0203",
                "an `<N>d` budget period counts from the Organization's `epoch`, which is not set",
                self.at(doc, path),
                help='add `epoch: "2026-01-01"` (any UTC date) to the Organization',
            )


def link(
    checked: list[Checked],
    invalid: list[Document],
    registry: Registry,
    root_file: str,
    sink: Sink,
    unparsed: Sequence[str] = (),
) -> Catalog:
    """Index valid documents and check every reference; `root_file` names catalog.yaml."""
    linker = Linker(registry, root_file, sink, unparsed)
    linker.index(checked, invalid)
    org_invalid = any(isinstance(d.data, dict) and d.data.get("kind") == "Organization"
                      for d in invalid)  # fmt: skip
    linker.require_organization(org_invalid)
    linker.simple_refs([*(c.doc for c in checked), *invalid])
    linker.integrations()
    linker.models()
    linker.configs()
    linker.limits()
    linker.unused_integrations()
    return linker.cat
