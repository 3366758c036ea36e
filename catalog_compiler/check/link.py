"""Link stage: one Organization, unique slugs, and every reference pointing somewhere real.

It reads only `Facts` (see facts.py), never YAML or typed models. Slugs of documents that
failed the structure check still count as defined, so one typo does not cascade into
dangling-reference noise; their references are still checked. A name that only a broken
file (or a document without a slug) could define is reported once, there (E0510), not at
every reference; see gaps.py for what else broken documents leave unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from catalog_compiler.check.facts import Facts, Ref, TargetRef, split_model_string
from catalog_compiler.check.gaps import BrokenFile, Gaps
from catalog_compiler.diagnostics import Note, Sink, Span
from catalog_compiler.registry import Registry
from runtime.bundle.suggest import did_you_mean

SLUGGED = ("Integration", "Provider", "Workspace", "Config")
Holder = BrokenFile | Facts  # a broken file, or a document without a slug
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
        self, registry: Registry, root_file: str, sink: Sink, gaps: Gaps | None = None
    ) -> None:
        self.registry = registry
        self.root_file = root_file
        self.sink = sink
        self.gaps = gaps or Gaps()
        self.unparsed = [f.display for f in self.gaps.files]
        self.index = Index()
        self.waiting: dict[int, list[Ref]] = {}  # id of a holder -> the references it may hold
        # Broken files, then documents without a slug: where an undefined name may live.
        anonymous = {id(f): f for docs in self.gaps.anonymous.values() for f in docs}
        slugless = sorted(anonymous.values(), key=lambda f: f.span or Span(f.file))
        self.holders: list[Holder] = [*self.gaps.files, *slugless]
        self.dangling_integrations = False  # then "unused integration" may be a typo's echo
        self._exposed: dict[str, set[str]] = {}
        self._custom: dict[tuple[str, str], set[str]] = {}
        self.orphans: set[str] = set()

    # -- index ------------------------------------------------------------------------
    def build_index(self, facts: Sequence[Facts]) -> None:
        firsts: dict[tuple[str, str], Facts] = {}
        for f in facts:
            if f.kind == "Organization":
                self.organization(f)
            if f.slug is None:
                continue
            for kind in f.kinds if not f.valid else ():  # a broken document still defines
                if kind in SLUGGED:
                    self.index.defined[kind].update((f.slug, f.slug.strip().lower()))
            if f.kind not in SLUGGED:
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
            if "Model" in f.kinds and f.model_home and f.model_name:
                self._custom.setdefault(f.model_home, set()).add(f.model_name)
        # Models whose home is not a valid document: declared, somewhere we cannot tell.
        for (kind, slug), names in self._custom.items():
            if slug not in self.index.valid.get(kind, {}):
                self.orphans.update(names)

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

    def require_organization(self, facts: Iterable[Facts]) -> None:
        maybe = any(f.file == self.root_file and "Organization" in f.could_be for f in facts)
        if self.index.organization is None and self.root_file not in self.unparsed and not maybe:
            self.sink.emit(
                "E0209",
                "catalog.yaml has no Organization document",
                Span(self.root_file, 1, 1, 1, 1),
                help="add `kind: Organization` with `version: 1` and `name:`",
            )

    # -- references -------------------------------------------------------------------
    def dangling(self, ref: Ref) -> None:
        self.gaps.undefined.add((ref.kind, ref.name))
        holder = self.may_hold(ref.kind, ref.name)
        if holder is not None:  # reported once, at the broken file or document
            self.waiting.setdefault(id(holder), []).append(ref)
            return
        known = self.index.defined.get(ref.kind, set())
        guess = did_you_mean(ref.name, known)
        what = ref.kind.lower()
        self.sink.emit(
            CODE_FOR[ref.kind],
            f"unknown {what} `{ref.prefix}{ref.name}`",
            ref.span,
            help=f"did you mean `{ref.prefix}{guess}`?" if guess else f"no {what} is named so",
        )

    def may_hold(self, kind: str, name: str) -> Holder | None:
        """The first broken file whose text defines `name`, or document of `kind` without a
        readable slug: where an undefined name may really be defined."""
        for holder in self.holders:
            if isinstance(holder, BrokenFile):
                if holder.may_define(kind, name):
                    return holder
            elif kind in holder.kinds and kind in SLUGGED:
                return holder
        return None

    def report_waiting(self) -> None:
        """One E0510 per broken file or document: the names it may define, and where used."""
        for holder in self.holders:
            refs = self.waiting.get(id(holder))
            if refs:
                self.waiting_on(holder, refs)

    def waiting_on(self, holder: Holder, refs: list[Ref]) -> None:
        first: dict[tuple[str, str], Ref] = {}
        for ref in sorted(refs, key=lambda r: r.span):
            first.setdefault((ref.kind, ref.name), ref)
        shown = _named(list(first.values()))
        one = len(first) == 1
        used = f"({len(refs)} use{'s' if len(refs) != 1 else ''}) " + ("is" if one else "are")
        uses = sorted(refs, key=lambda r: r.span)
        notes = [Note(r.span, f"`{r.prefix}{r.name}` is used here") for r in uses]
        if isinstance(holder, BrokenFile):
            found = ((holder.position(name), name) for _, name in first)
            (line, column), name = next((p for p in found if p[0][0]), ((0, 0), ""))
            span = Span(holder.display, line, column, line, column + len(name))
            message = (f"{shown} {used} defined nowhere else: only this file, which could not "
                       f"be read, may define {'it' if one else 'them'}")  # fmt: skip
            help_text = "fix this file first: what it defines cannot be known until it parses"
        else:
            kind = next(k for k in holder.kinds if k in SLUGGED).lower()
            span = holder.span or Span(holder.file)
            message = f"this {kind} has no valid slug, and {shown} {used} defined nowhere else"
            help_text = "give it the slug the references use, or correct the references"
        self.sink.emit("E0510", message, span if span.line else Span(span.file), help=help_text,
                       notes=notes[:6])  # fmt: skip

    def exists(self, kind: str, name: str) -> bool:
        return name in self.index.defined.get(kind, ())

    def refs(self, facts: Iterable[Facts]) -> None:
        for f in facts:
            if f.could_be:
                continue  # a document of unknown kind: what its fields mean is a guess
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
        integ = self.index.provider_integration.get(provider, "")
        homes = [("Integration", integ), ("Provider", provider)]
        if model in self.orphans or model in self.gaps.extra_models(homes):
            return  # a Model document with an error declares it
        if self.gaps.models_unknown(homes):
            return  # a broken Model document whose name is unreadable may declare it
        holder = self.may_hold("Model", model)
        if holder is not None and exposed and model not in exposed:
            self.waiting.setdefault(id(holder), []).append(
                Ref("Model", model, t.span, f"@{provider}/")
            )
            return
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
        if None in self.gaps.broken_provider_integrations or "Provider" in self.gaps.unknown_kinds:
            return  # a provider we cannot read may use any of them
        used = {r.name for f in facts if "Provider" in f.kinds for r in f.refs
                if r.kind == "Integration"}  # fmt: skip
        for slug, f in sorted(self.index.valid["Integration"].items()):
            if slug not in used:
                self.sink.emit(
                    "W0300",
                    f"integration `{slug}` has no provider: nothing can route through it",
                    f.span or Span(f.file),
                    help=f"add a Provider with `integration: {slug}`, or remove the integration",
                )


def _named(refs: list[Ref], most: int = 6) -> str:
    """ "providers `@a`, `@b` and config `c`": the names, by kind, in order of first use."""
    by_kind: dict[str, list[str]] = {}
    for r in refs[:most]:
        by_kind.setdefault(r.kind.lower(), []).append(f"`{r.prefix}{r.name}`")
    parts = [f"{kind}{'s' if len(names) > 1 else ''} {_and(names)}"
             for kind, names in by_kind.items()]  # fmt: skip
    return _and(parts + ([f"{len(refs) - most} more"] if len(refs) > most else []))


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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
    gaps: Gaps | None = None,
) -> Index:
    """Check every cross-document rule; `root_file` is how catalog.yaml is displayed, `gaps`
    what broken files and documents leave unknown."""
    linker = Linker(registry, root_file, sink, gaps)
    linker.build_index(facts)
    linker.require_organization(facts)
    linker.refs(facts)
    linker.targets(facts)
    linker.report_waiting()
    linker.models(facts)
    linker.epoch(facts)
    linker.unused_integrations(facts)
    return linker.index
