"""The model gallery: what every page shows, assembled from the runtime's index of a bundle,
then rendered with jinja2 into a static, offline site.

Everything comes from `runtime.bundle.load.Bundle`, so the gallery shows what the router does:
the routes a workspace may use (`Bundle.routes`), their prices with workspace overrides
(`Bundle.price`), the counter chain and its effective limits (`Bundle.chain`, `effective`).
Credentials are never read: pages hold no secret values and no references to them.
Everything is sorted and nothing depends on the clock, so the same bundle gives the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import Decimal
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from catalog_compiler.load.fsutil import FileId, OutputRefused, check_output, write_atomic
from catalog_compiler.load.sources import would_be_catalog_file
from catalog_compiler.tools.gallery.routes import config_views, pick_config
from catalog_compiler.tools.gallery.snippets import (
    FORM_TITLES,
    Gateway,
    Request,
    snippets,
)
from catalog_compiler.tools.gallery.usage import UsageBar
from catalog_compiler.tools.gallery.views import (
    ConfigRoute,
    ConfigView,
    CounterView,
    FormView,
    GroupView,
    Limit,
    ModelView,
    PriceCell,
    ProviderView,
    Site,
    WorkspaceView,
    page_name,
)
from catalog_compiler.tools.price_words import variant_lines
from runtime.bundle.aliases import usable_aliases
from runtime.bundle.load import (
    Bundle,
    Counter,
    Prices,
    budget_words,
    counter_label,
    effective,
    rate_words,
)

PRICE_LABELS = {
    "input": "Input",
    "output": "Output",
    "cache_read": "Cache read",
    "cache_write": "Cache write",
    "per_request": "Per request",
}


# -- small helpers --------------------------------------------------------------------------
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


def write_site(
    site: Site, out_dir: Path, protected: Collection[FileId] = (), root: Path | None = None
) -> list[Path]:
    """Render and write every page atomically; returns the paths written. A page never
    replaces a file in `protected` (the catalog's, by any name a link gives it) nor becomes
    a file of the catalog at `root`; each is checked before any page is written."""
    pages = render_site(site)
    for rel in pages:
        path = out_dir / rel
        check_output(path, protected, OF_THE_CATALOG)
        if root is not None and would_be_catalog_file(root, path):
            raise OutputRefused("E0006", path, f"`{path}` would be read as a file of the catalog",
                                "write the site outside the catalog")  # fmt: skip
    written = []
    for rel, data in pages.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data, protected=protected, what=OF_THE_CATALOG)
        written.append(path)
    return written


OF_THE_CATALOG = "a file of the catalog being read"
