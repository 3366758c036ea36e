"""What the link stage needs to know about one document, with positions already resolved.

The per-file stages (parse, secrets, structure, local checks) produce these; they are small
and cached with the file, so a re-validation after a one-file edit links from cached facts
without loading any YAML, position tree or typed model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from catalog_compiler.diagnostics import Span


class Ref(NamedTuple):
    """A reference to another document by slug, to be resolved across the catalog."""

    kind: str  # Integration | Provider | Workspace | Config
    name: str
    span: Span
    prefix: str = ""  # "@" for providers


class TargetRef(NamedTuple):
    """Inside a routing config: a model string, or a provider written without `@`."""

    what: str  # "model" | "bare-provider"
    text: str
    provider: str | None  # the provider in effect for a bare model name
    span: Span


@dataclass  # no slots: instances pickle as a plain __dict__, the fastest to load
class Facts:
    file: str
    kind: str | None
    valid: bool = False
    slug: str | None = None
    span: Span | None = None  # where the document names itself (slug, name or kind)
    refs: tuple[Ref, ...] = ()
    service: str | None = None  # Integration with a known service
    custom_models: tuple[str, ...] = ()  # Integration: inline custom model names
    # Model: ("Integration"|"Provider", slug) and name; read from the raw data when the
    # document is invalid, so its name still counts as declared (not as an unknown model)
    model_home: tuple[str, str] | None = None
    model_name: str | None = None
    base_model: tuple[str, Span] | None = None  # Model: built-in it extends
    targets: tuple[TargetRef, ...] = ()  # Config
    has_epoch: bool = False  # Organization
    day_periods: tuple[Span, ...] = ()  # budgets counted in `<N>d`: need the epoch
    # A document whose `kind` is missing or unknown: the kinds its fields fit (all kinds when
    # none fits). Later checks treat it as a broken document of each, never as absent.
    could_be: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds this document is, or could be when its `kind` is broken."""
        return self.could_be or ((self.kind,) if self.kind else ())


def split_model_string(text: str) -> tuple[str | None, str]:
    """`@vertex/claude@2025` -> ("vertex", "claude@2025"); a bare model -> (None, model)."""
    if text.startswith("@") and "/" in text:
        provider, _, model = text[1:].partition("/")
        return provider, model
    return None, text
