"""What broken documents leave unknown, so that later checks skip exactly what depends on them.

A document that failed its structure check still says something: its slug, its kind, a
Model's name and home. A file that could not be parsed (or read) says less: only what its
text mentions. A check that would conclude from absence ("matches nothing", "reaches no
model", "is not a model of") must not run where a broken document may fill the gap; a check
that concludes from presence (a rule that refuses, a limit that is tighter) still runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from catalog_compiler.check.facts import Facts
from runtime.bundle.suggest import did_you_mean

SLUGGED = ("Integration", "Provider", "Workspace", "Config")
ALL_KINDS = ("Organization", "Integration", "Provider", "Workspace", "Model", "Config")
Home = tuple[str, str]  # ("Integration" | "Provider", slug)

_KIND_WORD = re.compile(r"""["']?\bkind["']?[ \t]*:[ \t]*["']?([A-Za-z][A-Za-z0-9_-]*)""")
_SLUG_WORD = re.compile(r"""["']?\bslug["']?[ \t]*:[ \t]*["']?([a-zA-Z0-9][a-zA-Z0-9-]*)""")


@dataclass
class BrokenFile:
    """A file (or directory) whose documents are unknown: it could not be parsed or read.
    `text` is what could be read of it (None: nothing), scanned for what it would define."""

    display: str
    text: str | None = None
    kinds: frozenset[str] = frozenset(ALL_KINDS)
    slugs: dict[str, int] = field(default_factory=dict)  # slug -> offset of its first mention

    @classmethod
    def scan(cls, display: str, text: str | None) -> BrokenFile:
        if text is None:
            return cls(display)
        kinds: set[str] = set()
        for word in {m.group(1) for m in _KIND_WORD.finditer(text)}:
            known = next((k for k in ALL_KINDS if k.lower() == word.lower()), None)
            known = known or did_you_mean(word, ALL_KINDS)
            kinds.update((known,) if known else ALL_KINDS)
        slugs: dict[str, int] = {}
        for match in _SLUG_WORD.finditer(text):
            slugs.setdefault(match.group(1), match.start(1))
            slugs.setdefault(match.group(1).lower(), match.start(1))
        return cls(display, text, frozenset(kinds or ALL_KINDS), slugs)

    def may_define(self, kind: str, name: str) -> bool:
        if self.text is None:
            return True
        return kind in self.kinds and (name in self.slugs if kind in SLUGGED else name in self.text)

    def position(self, name: str) -> tuple[int, int]:
        """(line, column) of the name's first mention (as a slug if it is one), 1-based;
        (0, 0) when the text does not mention it."""
        if self.text is None:
            return 0, 0
        offset = self.slugs.get(name, self.text.find(name))
        if offset < 0:
            return 0, 0
        line_start = self.text.rfind("\n", 0, offset) + 1
        return self.text.count("\n", 0, offset) + 1, offset - line_start + 1


@dataclass
class Gaps:
    """The unknowns of one catalog, from the link stage's facts and the unparsed files."""

    files: list[BrokenFile] = field(default_factory=list)
    broken: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in SLUGGED})
    anonymous: dict[str, list[Facts]] = field(default_factory=dict)  # kind -> slugless docs
    unknown_kinds: set[str] = field(default_factory=set)  # documents of these may be unseen
    model_names: dict[Home | None, set[str]] = field(default_factory=dict)  # None: any home
    unnamed_models: set[Home | None] = field(default_factory=set)  # broken Models, no name
    broken_provider_integrations: set[str | None] = field(default_factory=set)
    undefined: set[tuple[str, str]] = field(default_factory=set)  # (kind, name) referenced
    # Filled by the resolve stage: valid documents left out because what they need is broken.
    blocked: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in SLUGGED})

    @classmethod
    def of(cls, facts: Sequence[Facts], files: Iterable[BrokenFile] = ()) -> Gaps:
        gaps = cls(files=list(files))
        for broken in gaps.files:
            gaps.unknown_kinds.update(broken.kinds)
        for f in facts:
            if not f.valid:
                gaps.add_broken(f)
        return gaps

    def add_broken(self, f: Facts) -> None:
        for kind in f.kinds:
            if kind in SLUGGED:
                if f.slug is not None:
                    self.broken[kind].add(f.slug)
                else:
                    self.anonymous.setdefault(kind, []).append(f)
                    self.unknown_kinds.add(kind)
            if kind == "Provider":
                integ = next((r.name for r in f.refs if r.kind == "Integration"), None)
                self.broken_provider_integrations.add(integ)
            if kind == "Model":
                if f.model_name is None:
                    self.unnamed_models.add(f.model_home)
                else:
                    self.model_names.setdefault(f.model_home, set()).add(f.model_name)

    # -- questions the checks ask -------------------------------------------------------
    @property
    def any(self) -> bool:
        return bool(
            self.files or self.unknown_kinds or self.model_names or self.unnamed_models
            or any(self.broken.values()) or any(self.blocked.values())
        )  # fmt: skip

    def missing(self, kind: str) -> set[str]:
        """Slugs of `kind` that exist but are not in the resolved catalog."""
        return self.broken.get(kind, set()) | self.blocked.get(kind, set())

    def models_unknown(self, homes: Iterable[Home]) -> bool:
        """May a broken Model document add a model we cannot name to one of these homes?"""
        if "Model" in self.unknown_kinds or None in self.unnamed_models:
            return True
        return any(h in self.unnamed_models for h in homes)

    def extra_models(self, homes: Iterable[Home]) -> set[str]:
        """Names broken Model documents declare on these homes (or on a home we cannot read)."""
        out = set(self.model_names.get(None, ()))
        for home in homes:
            out.update(self.model_names.get(home, ()))
        return out

    def providers_unknown(self, integration: str | None = None) -> bool:
        """May a provider we cannot see exist (on `integration`, or anywhere)?"""
        if "Provider" in self.unknown_kinds:
            return True
        if self.missing("Provider"):
            if integration is None:
                return True
            on = self.broken_provider_integrations
            return None in on or integration in on
        return False
