"""Link stage: one Organization, unique slugs, and every reference pointing somewhere real.

It reads only `Facts` (see facts.py), never YAML or typed models. Slugs of documents that
failed the structure check still count as defined, so one typo does not cascade into
dangling-reference noise; their references are still checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from catalog_compiler.diagnostics import Note, Sink, Span
from catalog_compiler.facts import Facts, Ref, TargetRef, split_model_string
from catalog_compiler.registry import Registry
from runtime.suggest import did_you_mean

SLUGGED = ("Integration", "Provider", "Workspace", "Config")
CODE_FOR = {"Integration": "E0301", "Provider": "E0302", "Workspace": "E0303", "Config": "E0305"}


@dataclass
class Index:
    """Slugs per kind, and which provider runs on which integration."""

    defined: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in SLUGGED})
    valid: dict[str, dict[str, Facts]] = field(default_factory=lambda: {k: {} for k in SLUGGED})
    provider_integration: dict[str, str] = field(default_factory=dict)
    organization: Facts | None = None


class Linker:
    def __init__(
        self, registry: Registry, root_file: str, sink: Sink, unparsed: Sequence[str] = ()
    ) -> None:
        self.registry = registry
        self.root_file = root_file
        self.sink = sink
        self.unparsed = list(unparsed)
        self.index = Index()
        self.dangling_integrations = False  # then "unused integration" may be a typo's echo
        self._exposed: dict[str, set[str]] = {}
        self._custom: dict[tuple[str, str], set[str]] = {}

    # -- index ------------------------------------------------------------------------
    def build_index(self, facts: Sequence[Facts]) -> None:
        firsts: dict[tuple[str, str], Facts] = {}
        for f in facts:
            if f.kind == "Organization":
                self.organization(f)
            if f.kind not in SLUGGED or f.slug is None:
                continue
            self.index.defined[f.kind].add(f.slug)
            if not f.valid:
                continue
            first = firsts.setdefault((f.kind, f.slug), f)
            if first is not f:
                self.sink.emit(
                    "E0300",
                    f"duplicate {f.kind.lower()} slug `{f.slug}`",
                    f.span or Span(f.file),
                    help="slugs are unique per kind: rename one",
                    notes=[Note(first.span or Span(first.file), "first defined here")],
                )
                continue
            self.index.valid[f.kind][f.slug] = f
        for f in facts:
            if f.kind == "Provider" and f.valid and f.slug:
                for ref in f.refs:
                    if ref.kind == "Integration":
                        self.index.provider_integration.setdefault(f.slug, ref.name)
            if f.kind == "Model" and f.valid and f.model_home and f.model_name:
                self._custom.setdefault(f.model_home, set()).add(f.model_name)

    def organization(self, f: Facts) -> None:
        span = f.span or Span(f.file)
        if f.file != self.root_file:
            self.sink.emit(
                "E0211",
                "the Organization document belongs in the root catalog.yaml",
                span,
                help="move it to catalog.yaml",
            )
        if self.index.organization is not None:
            first = self.index.organization
            self.sink.emit(
                "E0210",
                "a catalog has exactly one Organization",
                span,
                notes=[Note(first.span or Span(first.file), "first defined here")],
            )
            return
        self.index.organization = f

    def require_organization(self) -> None:
        if self.index.organization is None and self.root_file not in self.unparsed:
            self.sink.emit(
                "E0209",
                "catalog.yaml has no Organization document",
                Span(self.root_file, 1, 1, 1, 1),
                help="add `kind: Organization` with `version: 1` and `name:`",
            )

    # -- references -------------------------------------------------------------------
    def dangling(self, ref: Ref) -> None:
        known = self.index.defined.get(ref.kind, set())
        guess = did_you_mean(ref.name, known)
        notes = [
            Note(Span(f), "this file could not be parsed; it may define the name")
            for f in self.unparsed
        ]
        what = ref.kind.lower()
        self.sink.emit(
            CODE_FOR[ref.kind],
            f"unknown {what} `{ref.prefix}{ref.name}`",
            ref.span,
            help=f"did you mean `{ref.prefix}{guess}`?" if guess else f"no {what} is named so",
            notes=notes,
        )

    def exists(self, kind: str, name: str) -> bool:
        return name in self.index.defined.get(kind, ())

    def refs(self, facts: Iterable[Facts]) -> None:
        for f in facts:
            for ref in f.refs:
                if not self.exists(ref.kind, ref.name):
                    self.dangling(ref)
                    if ref.kind == "Integration":
                        self.dangling_integrations = True

    def service_of(self, provider: str) -> str | None:
        integ = self.index.provider_integration.get(provider)
        facts = self.index.valid["Integration"].get(integ) if integ else None
        return facts.service if facts else None

    def exposed_models(self, provider: str) -> set[str]:
        """Every model name the provider's integration exposes (registry ∪ custom), memoized."""
        found = self._exposed.get(provider)
        if found is None:
            found = set()
            integ = self.index.provider_integration.get(provider)
            integ_facts = self.index.valid["Integration"].get(integ) if integ else None
            if integ and integ_facts and integ_facts.service:
                found.update(self.registry.models(integ_facts.service))
                found.update(integ_facts.custom_models)
                found.update(self._custom.get(("Integration", integ), ()))
                found.update(self._custom.get(("Provider", provider), ()))
            self._exposed[provider] = found
        return found

    def targets(self, facts: Iterable[Facts]) -> None:
        for f in facts:
            for t in f.targets:
                if t.what == "bare-provider":
                    self.bare_provider(t)
                elif t.provider is not None:
                    self.target_model(t)

    def bare_provider(self, t: TargetRef) -> None:
        if self.exists("Provider", t.text):
            self.sink.emit(
                "E0205",
                f"catalog providers are written with `@`: `@{t.text}`",
                t.span,
                help=f'write `provider: "@{t.text}"`',
            )
        else:
            self.dangling(Ref("Provider", t.text, t.span, "@"))

    def target_model(self, t: TargetRef) -> None:
        provider = t.provider or ""
        if provider not in self.index.valid["Provider"]:
            return  # unknown providers are reported as references
        exposed = self.exposed_models(provider)
        _, model = split_model_string(t.text)
        if exposed and model not in exposed:
            guess = did_you_mean(model, exposed)
            self.sink.emit(
                "E0304",
                f"`{model}` is not a model of `@{provider}` "
                f"(service `{self.service_of(provider) or '?'}`)",
                t.span,
                help=f"did you mean `{guess}`?"
                if guess
                else "declare it as a custom model (a Model document) if it really exists",
            )

    def models(self, facts: Iterable[Facts]) -> None:
        seen: dict[tuple[tuple[str, str], str], Facts] = {}
        for f in facts:
            if f.kind != "Model" or not f.valid or not f.model_home or not f.model_name:
                continue
            first = seen.setdefault((f.model_home, f.model_name), f)
            home = f"{f.model_home[0].lower()} `{'@' if f.model_home[0] == 'Provider' else ''}" \
                f"{f.model_home[1]}`"  # fmt: skip
            if first is not f:
                self.sink.emit(
                    "E0300",
                    f"model `{f.model_name}` is declared twice on {home}",
                    f.span or Span(f.file),
                    notes=[Note(first.span or Span(first.file), "first declared here")],
                )
            if f.base_model:
                kind, slug = f.model_home
                service = self.service_of(slug) if kind == "Provider" else None
                if kind == "Integration":
                    integ = self.index.valid["Integration"].get(slug)
                    service = integ.service if integ else None
                if service:
                    check_base_model(self.registry, service, f.base_model[0], f.base_model[1],
                                     self.sink)  # fmt: skip

    def epoch(self, facts: Iterable[Facts]) -> None:
        org = self.index.organization
        if org is None or not org.valid or org.has_epoch:
            return
        for f in facts:
            for span in f.day_periods:
                self.sink.emit(
                    "E0203",
                    "an `<N>d` budget period counts from the Organization's `epoch`, "
                    "which is not set",
                    span,
                    help='add `epoch: "2026-01-01"` (any UTC date) to the Organization',
                )

    def unused_integrations(self, facts: Iterable[Facts]) -> None:
        if self.unparsed or self.dangling_integrations:
            return
        used = {r.name for f in facts if f.kind == "Provider" for r in f.refs
                if r.kind == "Integration"}  # fmt: skip
        for slug, f in sorted(self.index.valid["Integration"].items()):
            if slug not in used:
                self.sink.emit(
                    "W0300",
                    f"integration `{slug}` has no provider: nothing can route through it",
                    f.span or Span(f.file),
                    help=f"add a Provider with `integration: {slug}`, or remove the integration",
                )


def check_base_model(registry: Registry, service: str, name: str, span: Span, sink: Sink) -> None:
    models = registry.models(service)
    if name not in models:
        guess = did_you_mean(name, models)
        sink.emit(
            "E0304",
            f"`{name}` is not a built-in model of service `{service}`",
            span,
            help=f"did you mean `{guess}`?"
            if guess
            else "`base_model` names a built-in model; omit it for a wholly custom model",
        )


def link(
    facts: Sequence[Facts],
    registry: Registry,
    root_file: str,
    sink: Sink,
    unparsed: Sequence[str] = (),
) -> Index:
    """Check every cross-document rule; `root_file` is how catalog.yaml is displayed."""
    linker = Linker(registry, root_file, sink, unparsed)
    linker.build_index(facts)
    linker.require_organization()
    linker.refs(facts)
    linker.targets(facts)
    linker.models(facts)
    linker.epoch(facts)
    linker.unused_integrations(facts)
    return linker.index
