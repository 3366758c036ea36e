"""The model gallery: what every page shows, assembled from the runtime's index of a bundle,
then rendered with jinja2 into a static, offline site.

Everything comes from `runtime.bundle.Bundle`, so the gallery shows what the router does:
the routes a workspace may use (`Bundle.routes`), their prices with workspace overrides
(`Bundle.price`), the counter chain and its effective limits (`Bundle.chain`, `effective`).
Credentials are never read: pages hold no secret values and no references to them.
Everything is sorted and nothing depends on the clock, so the same bundle gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from catalog_compiler.load.fsutil import write_atomic
from catalog_compiler.tools.gallery.snippets import (
    FORM_TITLES,
    IDENTIFIER,
    RESERVED_PARAMS,
    Gateway,
    Request,
    Scalar,
    Snippet,
    snippets,
)
from catalog_compiler.tools.gallery.usage import UsageBar
from catalog_compiler.tools.price_words import variant_lines
from runtime.aliases import usable_aliases
from runtime.bundle import (
    Bundle,
    Counter,
    Prices,
    budget_words,
    counter_label,
    effective,
    rate_words,
)
from runtime.plan import Context, matches

PRICE_LABELS = {
    "input": "Input",
    "output": "Output",
    "cache_read": "Cache read",
    "cache_write": "Cache write",
    "per_request": "Per request",
}
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")


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


# The order modes are shown in: the endpoints' order (runtime/modes.py), then the rest.
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


# -- small helpers --------------------------------------------------------------------------
def page_name(slug: str) -> str:
    """A file name for a slug: the slug itself (catalog slugs are `[a-z0-9-]`), else a hash."""
    if _SAFE_NAME.match(slug):
        return slug
    return "x-" + hashlib.sha256(slug.encode()).hexdigest()[:16]


def anchor(target: str) -> str:
    readable = re.sub(r"[^a-z0-9]+", "-", target.lower()).strip("-")[:60]
    return f"m-{readable}-{hashlib.sha256(target.encode()).hexdigest()[:6]}"


def usd(value: Decimal | None) -> str | None:
    """Exact, at least two decimals: 2.5 -> $2.50, 0.075 -> $0.075, 10 -> $10.00."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def percent(value: Decimal) -> str:
    return format((value * 100).normalize(), "f") + "%"


def counter_limits(counter: Counter, bundle: Bundle) -> tuple[Limit, ...]:
    def origin(tail: str) -> str | None:
        return bundle.origin(f"counters/{counter.id}/{tail}")

    out = []
    for b in sorted(counter.budgets, key=lambda b: b.key):
        alert = f" (alert at {percent(b.alert_threshold)})" if b.alert_threshold else ""
        out.append(Limit(budget_words(b) + alert, origin(f"budgets/{b.key}")))
    for r in sorted(counter.rate_limits, key=lambda r: r.key):
        out.append(Limit(rate_words(r), origin(f"rate_limits/{r.key}")))
    if counter.concurrency is not None:
        out.append(Limit(f"{counter.concurrency} requests in flight", origin("concurrency")))
    return tuple(out)


def counter_view(counter: Counter, bundle: Bundle) -> CounterView:
    return CounterView(counter.id, counter_label(counter.id), counter_limits(counter, bundle))


def effective_limits(chain: tuple[Counter, ...], bundle: Bundle) -> tuple[Limit, ...]:
    eff = effective(chain)
    out = [
        Limit(budget_words(b), bundle.origin(f"counters/{cid}/budgets/{key}"), counter_label(cid))
        for key, (b, cid) in eff.budgets.items()
    ]
    out += [
        Limit(rate_words(r), bundle.origin(f"counters/{cid}/rate_limits/{key}"), counter_label(cid))
        for key, (r, cid) in eff.rate_limits.items()
    ]
    if eff.concurrency is not None:
        limit, cid = eff.concurrency
        out.append(
            Limit(
                f"{limit} requests in flight",
                bundle.origin(f"counters/{cid}/concurrency"),
                counter_label(cid),
            )
        )
    return tuple(out)


def _source_words(source: str | None, provider: str, as_of: str | None) -> str | None:
    if source is None:
        return None
    if source == "registry":
        return f"built-in registry, as of {as_of}" if as_of else "built-in registry"
    if source == "model":
        return "the model's definition"
    if source == "provider":
        return f"provider `@{provider}` pricing"
    return source  # "workspace `research`"


def price_cells(
    prices: Prices,
    sources: Mapping[str, str],
    elements: Mapping[str, str],
    provider: str,
    bundle: Bundle,
) -> tuple[PriceCell, ...]:
    as_of = bundle.provenance.get("registry_as_of")
    cells = []
    for name in PRICE_LABELS:  # the table's columns; the other fields are notes
        value = prices.get(name)
        source = sources.get(name, "registry") if value is not None else None
        element = elements.get(name)
        cells.append(
            PriceCell(
                name,
                PRICE_LABELS[name],
                usd(value),
                _source_words(source, provider, as_of if isinstance(as_of, str) else None),
                bundle.origin(element) if element and value is not None else None,
            )
        )
    return tuple(cells)


def price_notes(prices: Prices) -> tuple[str, ...]:
    """The price's variants in words (the table has a column per base field only)."""
    notes = []
    if prices.cache_write_1h is not None:
        notes.append(f"Cache write, 1-hour TTL: {usd(prices.cache_write_1h)}")
    return (*notes, *variant_lines(prices, lambda d: usd(d) or ""))


# -- configs: which targets each one can reach, and with what request -----------------------
def _query_text(query: Any) -> str:
    return json.dumps(_plain(query), sort_keys=True, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


Shape = tuple[dict[str, str], dict[str, Scalar]]  # request metadata, request parameters


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _candidates(cond: Any) -> list[Scalar]:
    """Values that may satisfy one condition; each is checked with the router's matcher."""
    if not isinstance(cond, Mapping):
        return [cond] if _scalar(cond) else []
    out: list[Scalar] = []
    for op, arg in cond.items():
        whole = isinstance(arg, int) and not isinstance(arg, bool)
        if op == "$eq" and _scalar(arg):
            out.append(arg)
        elif op == "$in" and isinstance(arg, Sequence) and not isinstance(arg, str):
            out += [a for a in arg if _scalar(a)]
        elif op in ("$lte", "$gte") and _scalar(arg) and not isinstance(arg, bool):
            out.append(arg)
        elif op == "$lt" and whole:
            out.append(arg - 1)
        elif op == "$gt" and whole:
            out.append(arg + 1)
    return out


def shape_for(query: Mapping[str, Any]) -> Shape | None:
    """Request metadata and parameters that satisfy a condition, when it only tests flat
    `metadata.<key>` strings and `params.<name>` values; None when no request shape is found."""
    meta: dict[str, str] = {}
    params: dict[str, Scalar] = {}
    for key, cond in query.items():
        if key in ("$and", "$or") and isinstance(cond, Sequence):
            parts = [shape_for(q) if isinstance(q, Mapping) else None for q in cond]
            if key == "$and" and any(p is None for p in parts):
                return None
            chosen = [p for p in parts if p is not None][: None if key == "$and" else 1]
            if not chosen:
                return None
            for m, ps in chosen:
                meta.update(m)
                params.update(ps)
            continue
        head, _, name = key.partition(".")
        if not name or "." in name:
            return None
        if head == "metadata":
            value = next(
                (
                    c
                    for c in _candidates(cond)
                    if isinstance(c, str) and matches({key: cond}, Context({name: c}, {}))
                ),
                None,
            )
            if not isinstance(value, str):
                return None
            meta[name] = value
        elif head == "params" and IDENTIFIER.match(name) and name not in RESERVED_PARAMS:
            found = [c for c in _candidates(cond) if matches({key: cond}, Context({}, {name: c}))]
            if not found:
                return None
            params[name] = found[0]
        else:
            return None
    return meta, params


def config_routes(slug: str, tree: Mapping[str, Any]) -> list[ConfigRoute]:
    """Every governed target the config can pick, in tree order, with how it gets there.

    Targets a request can never reach are left out: weight 0 in a loadbalance, targets no
    condition names, all but the first of a `single` strategy. Conditional branches get the
    request metadata that selects them, checked with the router's own matcher."""
    out: list[ConfigRoute] = []

    def walk(node: Mapping[str, Any], how: tuple[str, ...], shape: Shape, ok: bool) -> None:
        mode = node.get("mode")
        if mode == "target":
            provider = node.get("provider")
            if isinstance(provider, str):
                model = node.get("model")
                out.append(
                    ConfigRoute(
                        slug,
                        provider,
                        model if isinstance(model, str) else None,
                        ", ".join(how) or "its only target",
                        tuple(sorted(shape[0].items())),
                        tuple(sorted(shape[1].items())),
                        ok,
                    )
                )
            return
        targets: Sequence[Mapping[str, Any]] = node.get("targets") or ()
        strategy: Mapping[str, Any] = node.get("strategy") or {}
        if mode == "fallback":
            for i, child in enumerate(targets, start=1):
                walk(child, (*how, f"fallback {i} of {len(targets)}"), shape, ok)
        elif mode == "loadbalance":
            weights = [Decimal(str(t.get("weight", "1"))) for t in targets]
            total = sum(weights, Decimal(0))
            for child, weight in zip(targets, weights, strict=True):
                if weight > 0:
                    share = f"load-balanced, weight {weight} of {total}"
                    walk(child, (*how, share), shape, ok)
        elif mode == "conditional":
            by_name = {t.get("name"): t for t in targets}
            conditions: Sequence[Mapping[str, Any]] = strategy.get("conditions") or ()
            seen: set[str] = set()
            for i, cond in enumerate(conditions):
                name = cond.get("then")
                if not isinstance(name, str) or name in seen or name not in by_name:
                    continue
                seen.add(name)
                query = cond.get("query") or {}
                hint = shape_for(query)
                merged = ({**shape[0], **hint[0]}, {**shape[1], **hint[1]}) if hint else shape
                ctx = Context(*merged)
                taken = (
                    hint is not None
                    and matches(query, ctx)
                    and not any(matches(c.get("query") or {}, ctx) for c in conditions[:i])
                )
                step = f"branch `{name}` when {_query_text(query)}"
                walk(by_name[name], (*how, step), merged if taken else shape, ok and taken)
            default = strategy.get("default")
            if isinstance(default, str) and default in by_name:
                ctx = Context(*shape)
                taken = not any(matches(c.get("query") or {}, ctx) for c in conditions)
                walk(by_name[default], (*how, f"default branch `{default}`"), shape, ok and taken)
        elif targets:  # single
            walk(targets[0], (*how, "single target"), shape, ok)

    walk(tree, (), ({}, {}), True)
    return out


def config_views(bundle: Bundle) -> tuple[ConfigView, ...]:
    views = []
    for slug in sorted(bundle.configs):
        info = bundle.configs[slug]
        tree = info.tree
        views.append(
            ConfigView(
                slug,
                str(tree.get("mode")),
                tuple(sorted(info.workspaces)) if info.workspaces is not None else None,
                tuple(config_routes(slug, tree)),
                bundle.origin(f"configs/{slug}"),
            )
        )
    return tuple(views)


def pick_config(
    configs: Iterable[ConfigView], provider: str, model: str, default_config: str | None
) -> tuple[ConfigRoute | None, tuple[str, ...]]:
    """The config route to show for a model (ready ones first, then the workspace's default
    config, then by slug and tree order), and the other configs that reach it too."""
    found: list[tuple[tuple[bool, bool, str, int], ConfigRoute]] = []
    for cfg in configs:
        for i, route in enumerate(cfg.routes):
            if route.provider == provider and route.model in (model, None):
                key = (not route.ready, cfg.slug != default_config, cfg.slug, i)
                found.append((key, route))
    if not found:
        return None, ()
    found.sort(key=lambda pair: pair[0])
    best = found[0][1]
    others = tuple(sorted({r.config for _, r in found} - {best.config}))
    return best, others


# -- assembly -------------------------------------------------------------------------------
def requests_for(
    provider: str,
    model: str,
    mode: str,
    workspace: str | None,
    config: ConfigRoute | None,
) -> list[Request]:
    """The requests of the three forms for one model (the config form when one reaches it)."""
    out = [
        Request(provider, model, "model", mode, workspace=workspace),
        Request(provider, model, "provider", mode, workspace=workspace),
    ]
    if config is not None:
        out.append(
            Request(
                provider,
                model,
                "config",
                mode,
                config=config.config,
                metadata=config.metadata,
                params=config.params,
                how=config.how,
                ready=config.ready,
                workspace=workspace,
            )
        )
    return out


def route_forms(
    requests: list[Request], gateway: Gateway, also: tuple[str, ...] = ()
) -> tuple[FormView, ...]:
    by_form = {r.form: r for r in requests}
    forms = []
    for form, title in FORM_TITLES.items():
        req = by_form.get(form)
        if req is None:
            forms.append(FormView(form, title, None))
            continue
        extra = also if form == "config" else ()
        forms.append(FormView(form, title, req, tuple(snippets(req, gateway)), extra))
    return tuple(forms)


def workspace_view(
    bundle: Bundle,
    slug: str,
    configs: tuple[ConfigView, ...],
    gateway: Gateway,
    usage: Mapping[str, list[UsageBar]] | None = None,
) -> WorkspaceView:
    ws = bundle.workspace(slug)
    offered = tuple(c for c in configs if c.workspaces is None or slug in c.workspaces)
    by_provider: dict[str, list[str]] = {}
    for p_slug, model in bundle.routes(slug):
        by_provider.setdefault(p_slug, []).append(model)
    groups = []
    for provider_slug in sorted(by_provider):
        provider = bundle.providers[provider_slug]
        chain = bundle.chain(slug, provider_slug)
        routes = []
        for model in sorted(by_provider[provider_slug]):
            info = provider.models[model]
            quote = bundle.price(slug, provider_slug, model)
            config, also = pick_config(offered, provider_slug, model, ws.default_config)
            reqs = requests_for(provider_slug, model, info.mode, slug, config)
            routes.append(
                ModelView(
                    provider_slug,
                    model,
                    info.mode,
                    info.context_window,
                    info.max_output_tokens,
                    price_cells(quote.prices, quote.sources, quote.elements, provider_slug, bundle),
                    forms=route_forms(reqs, gateway, also),
                    price_notes=price_notes(quote.prices),
                )
            )
        groups.append(
            GroupView(
                provider_slug,
                provider.integration.service,
                tuple(counter_view(c, bundle) for c in chain),
                effective_limits(chain, bundle),
                tuple(routes),
            )
        )
    charged = {"organization", ws.counter}
    for group in groups:
        charged.update(c.id for c in group.chain)
    bars = tuple(
        bar for cid in sorted(charged) for bar in (usage or {}).get(cid, ())
        if bar.kind == "budget"
    )  # fmt: skip
    return WorkspaceView(
        slug,
        ws.counter,
        ws.default_config,
        bundle.origin(f"workspaces/{slug}"),
        offered,
        tuple(groups),
        bars,
        tuple((a.name, a.target, bundle.origin(a.origin_element(slug)))
              for a in usable_aliases(bundle, slug)),
    )  # fmt: skip


def provider_view(
    bundle: Bundle, slug: str, routes: Mapping[str, set[tuple[str, str]]]
) -> ProviderView:
    provider = bundle.providers[slug]
    chain = tuple(bundle.counters[c] for c in provider.chain)
    users = tuple(sorted(ws for ws in bundle.workspaces if any(p == slug for p, _ in routes[ws])))
    models = []
    for name in sorted(provider.models):
        info = provider.models[name]
        elements = {k: f"prices/{slug}/{name}/{k}" for k in info.sources}
        models.append(
            ModelView(
                slug,
                name,
                info.mode,
                info.context_window,
                info.max_output_tokens,
                price_cells(info.prices, info.sources, elements, slug, bundle),
                workspaces=tuple(ws for ws in users if (slug, name) in routes[ws]),
                price_notes=price_notes(info.prices),
            )
        )
    return ProviderView(
        slug,
        provider.integration.service,
        provider.integration.slug,
        bundle.origin(f"providers/{slug}"),
        tuple(counter_view(c, bundle) for c in chain),
        effective_limits(chain, bundle),
        tuple(models),
        users,
    )


def build_site(
    bundle: Bundle,
    gateway: Gateway | None = None,
    usage: Mapping[str, list[UsageBar]] | None = None,
    usage_source: str | None = None,
) -> Site:
    """The site's data; with `usage` (bars per counter id), each workspace page shows its
    spend now against every budget its requests are charged to."""
    gateway = gateway or Gateway()
    configs = config_views(bundle)
    routes = {ws: set(bundle.routes(ws)) for ws in sorted(bundle.workspaces)}
    as_of = bundle.provenance.get("registry_as_of")
    return Site(
        organization=str(bundle.organization.get("name") or "Organization"),
        digest=bundle.digest,
        registry_as_of=as_of if isinstance(as_of, str) else None,
        gateway=gateway,
        org=counter_view(bundle.counters["organization"], bundle),
        providers=tuple(provider_view(bundle, s, routes) for s in sorted(bundle.providers)),
        workspaces=tuple(
            workspace_view(bundle, s, configs, gateway, usage) for s in sorted(bundle.workspaces)
        ),
        configs=configs,
        usage_source=usage_source if usage is not None else None,
    )


# -- rendering ------------------------------------------------------------------------------
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("catalog_compiler.tools.gallery", "templates"),
        autoescape=True,  # everything from the catalog is text, never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["provider_page"] = lambda slug: f"providers/{page_name(slug)}.html"
    env.globals["workspace_page"] = lambda slug: f"workspaces/{page_name(slug)}.html"
    env.filters["number"] = lambda n: "—" if n is None else f"{n:,}"
    env.filters["ticks"] = ticks
    return env


def ticks(text: str | None) -> Markup:
    """Escaped text whose `backticked` parts become <code>."""
    escaped = str(escape(text or ""))
    return Markup(re.sub(r"`([^`<>]+)`", r"<code>\1</code>", escaped))


def render_site(site: Site) -> dict[str, bytes]:
    """Every page of the site: relative path -> bytes (UTF-8 HTML), sorted by path."""
    env = environment()
    pages: dict[str, str] = {
        "index.html": env.get_template("index.html.j2").render(
            site=site, root="", title="Model gallery"
        )
    }
    provider_tpl = env.get_template("provider.html.j2")
    for p in site.providers:
        pages[p.page] = provider_tpl.render(
            site=site, root="../", provider=p, title=f"Provider @{p.slug}"
        )
    workspace_tpl = env.get_template("workspace.html.j2")
    for w in site.workspaces:
        pages[w.page] = workspace_tpl.render(
            site=site, root="../", workspace=w, title=f"Workspace {w.slug}"
        )
    return {path: pages[path].encode("utf-8") for path in sorted(pages)}


def write_site(site: Site, out_dir: Path) -> list[Path]:
    """Render and write every page atomically; returns the paths written."""
    written = []
    for rel, data in render_site(site).items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        written.append(path)
    return written
