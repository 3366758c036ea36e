"""Who may use what, as the bundle writes it: a `models:` block as allow/deny lists, a
selection (`workspaces:`, `providers:`) as a sorted list or `*`, and a provider's
`allowed_hosts`, its integration's narrowed by its own (E0509 where it would widen them).
Each entry's position is remembered for the diagnostics of later checks."""

from __future__ import annotations

from typing import Any

from catalog_compiler.model.common import ModelAccess
from catalog_compiler.model.documents import Provider
from catalog_compiler.resolve.context import Context, Located, Path
from runtime.bundle.hosts import HostPattern, parse_host_pattern


def selection(items: tuple[str, ...] | None) -> list[str] | None:
    if items is None:
        return None
    return ["*"] if "*" in items else sorted(set(items))


def access_json(
    ctx: Context, models: ModelAccess | None, located: Located, path: Path, key: str
) -> Any:
    """A `models:` block as the bundle's allow/deny lists; each entry remembered."""
    if models is None:
        return {"allow": None, "deny": []}
    for name in ("allow", "deny"):
        for i, text in enumerate(getattr(models, name) or ()):
            ctx.remember(f"{key}/{name}/{text}", located, (*path, name, i))
    if models.allow is not None:
        ctx.remember(f"{key}/allow", located, (*path, "allow"))
    return {
        "allow": None if models.allow is None else sorted(set(models.allow)),
        "deny": sorted(set(models.deny)),
    }


def allowed_hosts(ctx: Context, slug: str) -> list[str]:
    """The integration's `allowed_hosts`, narrowed by the provider's (never widened)."""
    located = ctx.providers[slug]
    prov: Provider = located.model
    integ_at = ctx.integrations[prov.integration]
    outer = [parse_host_pattern(h) for h in integ_at.model.allowed_hosts or ()]
    if prov.allowed_hosts is None:
        if integ_at.model.allowed_hosts is not None:
            element = f"providers/{slug}/allowed_hosts"
            ctx.remember(element, integ_at, ("allowed_hosts",))
        return sorted({str(p) for p in outer})
    ctx.remember(f"providers/{slug}/allowed_hosts", located, ("allowed_hosts",))
    chosen: set[str] = set()
    for i, text in enumerate(prov.allowed_hosts):
        inner = parse_host_pattern(text)
        if any(o.covers(inner) for o in outer):
            chosen.add(str(inner))
        else:
            _widens(ctx, located, i, inner, prov.integration, outer)
    return sorted(chosen)


def _widens(
    ctx: Context, located: Located, i: int, entry: HostPattern, integration: str,
    outer: list[HostPattern],
) -> None:  # fmt: skip
    allows = ", ".join(f"`{o}`" for o in outer) if outer else "no hosts"
    ctx.sink.emit(
        "E0509",
        f"`{entry}` is not allowed by integration `{integration}` (it allows {allows}): "
        "a provider's `allowed_hosts` can only narrow its integration's",
        ctx.span(located, ("allowed_hosts", i)),
        help=f"add `{entry}` to `allowed_hosts` of integration `{integration}`, or remove it here",
    )
