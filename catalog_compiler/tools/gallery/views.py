"""The data the gallery's templates show: frozen views of a bundle's workspaces, providers,
models, prices, limits and configs, built by site.py and never read back from the bundle."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from catalog_compiler.tools.gallery.snippets import Gateway, Request, Scalar, Snippet
from catalog_compiler.tools.gallery.usage import UsageBar

_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")


def page_name(slug: str) -> str:
    """A file name for a slug: the slug itself (catalog slugs are `[a-z0-9-]`), else a hash."""
    if _SAFE_NAME.match(slug):
        return slug
    return "x-" + hashlib.sha256(slug.encode()).hexdigest()[:16]


def anchor(target: str) -> str:
    readable = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-")[:60]
    return f"m-{readable}-{hashlib.sha256(target.encode()).hexdigest()[:6]}"


# -- the data the templates show ------------------------------------------------------------
@dataclass(frozen=True)
class Limit:
    text: str  # "2000 USD a month"
    origin: str | None = None  # file:line:column where it is set
    by: str | None = None  # for effective limits: which level sets the tightest value


@dataclass(frozen=True)
class CounterView:
    id: str
    label: str
    limits: tuple[Limit, ...]


@dataclass(frozen=True)
class PriceCell:
    name: str  # input | output | cache_read | cache_write | per_request
    label: str
    value: str | None  # "$2.50" (per 1M tokens; per request for per_request), None: no price
    source: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class ConfigRoute:
    """A target a config can send a request to; `model` None: the request's model."""

    config: str
    provider: str
    model: str | None
    how: str
    metadata: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, Scalar], ...] = ()
    ready: bool = True  # the snippet can reach it (no condition it cannot satisfy)

    @property
    def target(self) -> str:
        return f"@{self.provider}/{self.model}" if self.model else f"@{self.provider}/*"


@dataclass(frozen=True)
class ConfigView:
    slug: str
    mode: str
    workspaces: tuple[str, ...] | None  # None: every workspace
    routes: tuple[ConfigRoute, ...]
    origin: str | None


@dataclass(frozen=True)
class FormView:
    form: str
    title: str
    request: Request | None  # None: no config of the workspace reaches the model
    snippets: tuple[Snippet, ...] = ()
    also: tuple[str, ...] = ()  # other configs that reach the model too


@dataclass(frozen=True)
class ModelView:
    provider: str
    name: str
    mode: str
    context_window: int | None
    max_output_tokens: int | None
    prices: tuple[PriceCell, ...]
    workspaces: tuple[str, ...] = ()  # provider pages: who may use it
    price_notes: tuple[str, ...] = ()  # 1-hour cache writes, long-context tiers, batch, …
    forms: tuple[FormView, ...] = ()  # workspace pages: how to call it

    @property
    def target(self) -> str:
        return f"@{self.provider}/{self.name}"

    @property
    def anchor(self) -> str:
        return anchor(self.target)

    @property
    def search(self) -> str:
        return " ".join((self.target, self.mode)).lower()


# The order modes are shown in: the endpoints' order (runtime/routing/modes.py), then the rest.
MODE_ORDER = ("chat", "responses", "completion", "embedding", "image", "audio", "rerank")


def by_mode(models: tuple[ModelView, ...]) -> tuple[tuple[str, tuple[ModelView, ...]], ...]:
    """Models grouped by mode, each group in its given order; an unknown mode sorts last."""
    modes = sorted({m.mode for m in models}, key=lambda x: ((*MODE_ORDER, x).index(x), x))
    return tuple((mode, tuple(m for m in models if m.mode == mode)) for mode in modes)


@dataclass(frozen=True)
class GroupView:
    """One provider's models on a workspace page, with the chain they are charged to."""

    provider: str
    service: str
    chain: tuple[CounterView, ...]
    effective: tuple[Limit, ...]
    routes: tuple[ModelView, ...]

    @property
    def by_mode(self) -> tuple[tuple[str, tuple[ModelView, ...]], ...]:
        return by_mode(self.routes)


@dataclass(frozen=True)
class WorkspaceView:
    slug: str
    counter: str
    default_config: str | None
    origin: str | None
    configs: tuple[ConfigView, ...]
    groups: tuple[GroupView, ...]
    usage: tuple[UsageBar, ...] = ()  # spend now against each budget of its chains
    aliases: tuple[tuple[str, str, str | None], ...] = ()  # usable: name, target, origin

    @property
    def route_count(self) -> int:
        return sum(len(g.routes) for g in self.groups)

    @property
    def page(self) -> str:
        return f"workspaces/{page_name(self.slug)}.html"


@dataclass(frozen=True)
class ProviderView:
    slug: str
    service: str
    integration: str
    origin: str | None
    chain: tuple[CounterView, ...]
    effective: tuple[Limit, ...]
    models: tuple[ModelView, ...]
    workspaces: tuple[str, ...]

    @property
    def page(self) -> str:
        return f"providers/{page_name(self.slug)}.html"

    @property
    def by_mode(self) -> tuple[tuple[str, tuple[ModelView, ...]], ...]:
        return by_mode(self.models)


@dataclass(frozen=True)
class Site:
    organization: str
    digest: str
    registry_as_of: str | None
    gateway: Gateway
    org: CounterView
    providers: tuple[ProviderView, ...]
    workspaces: tuple[WorkspaceView, ...]
    configs: tuple[ConfigView, ...]
    usage_source: str | None = None  # where the live usage came from, when shown

    @property
    def model_count(self) -> int:
        return sum(len(p.models) for p in self.providers)
