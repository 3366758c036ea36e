"""A workspace's bundle entry (its providers, access, pricing overrides, counter, keys and
effective aliases), and E0514: one API key hash listed by two callers."""

from __future__ import annotations

from typing import Any

from catalog_compiler.diagnostics import Note
from catalog_compiler.resolve.access import access_json, selection
from catalog_compiler.resolve.aliases import Exposes
from catalog_compiler.resolve.aliases import effective as effective_aliases
from catalog_compiler.resolve.context import Context, Located, Path
from catalog_compiler.resolve.counters import counter_id
from catalog_compiler.resolve.price_variants import resolved
from catalog_compiler.resolve.values import dec


def workspace_json(ctx: Context, slug: str, exposes: Exposes) -> dict[str, Any]:
    located = ctx.workspaces[slug]
    ws = located.model
    ctx.remember(f"workspaces/{slug}", located, ("slug",))
    if ws.providers is not None:
        ctx.remember(f"workspaces/{slug}/providers", located, ("providers",))
    pricing = []
    for i, override in enumerate(ws.pricing):
        ctx.remember(f"workspaces/{slug}/pricing/{override.model}", located, ("pricing", i))
        entry: dict[str, Any] = {"model": override.model}
        if override.free:
            entry["free"] = True
        else:
            fields, variants = resolved(override, None)  # no regions here (E0406)
            prices = {**{k: dec(v) for k, v in fields.items()}, **variants}
            entry["prices"] = dict(sorted(prices.items()))
        pricing.append(entry)
    out = {
        "providers": selection(ws.providers),
        "access": access_json(ctx, ws.models, located, ("models",), f"workspaces/{slug}/access"),
        "pricing": sorted(pricing, key=lambda e: e["model"]),
        "counter": counter_id("workspace", slug),
        "default_config": ws.default_config,
        "api_keys": sorted(
            ({"name": k.name, "sha256": k.sha256, "disabled": k.disabled} for k in ws.api_keys),
            key=lambda k: k["name"],
        ),
    }
    aliases = effective_aliases(ctx, slug, exposes)
    if aliases:  # only when present: bundles without them stay byte-identical
        out["aliases"] = aliases
    return out


def check_key_hashes(ctx: Context) -> None:
    """E0514: one key hash listed twice (two workspaces, or a workspace and an admin):
    the gateway could not tell who is calling, and refuses such a bundle at load."""
    seen: dict[str, tuple[str, Located, Path]] = {}
    owners: list[tuple[str, Located, Path, str]] = []
    org = ctx.organization
    if org is not None:
        for i, k in enumerate(ctx.org.admin_keys):
            owners.append(("the organization's `admin_keys`", org, ("admin_keys", i), k.sha256))
    for slug in sorted(ctx.workspaces):
        located = ctx.workspaces[slug]
        for i, k in enumerate(located.model.api_keys):
            owners.append((f"workspace `{slug}`", located, ("api_keys", i), k.sha256))
    for who, located, path, digest in owners:
        first = seen.get(digest)
        if first is None:
            seen[digest] = (who, located, path)
            continue
        ctx.sink.emit(
            "E0514",
            f"this key's sha256 is already listed by {first[0]}: a key must name one caller",
            ctx.span(located, (*path, "sha256")),
            help="give each workspace (and each admin) its own key",
            notes=[Note(ctx.span(first[1], (*first[2], "sha256")), "first listed here")],
        )
