"""E0502: a routing config that sends a workspace where it may not go, asked of the
runtime's index of the bundle: a target (provider, or provider and model) the workspace
may not use, or a workspace whose `default_config` is not offered to it. A refusal by a
rule that names something broken is left unreported (the broken document's error is)."""

from __future__ import annotations

from typing import Any

from catalog_compiler.diagnostics import Note
from catalog_compiler.resolve.context import Context
from catalog_compiler.resolve.routing import Leaf
from runtime.bundle.errors import RequestError
from runtime.bundle.load import Bundle


def config_targets(ctx: Context, bundle: Bundle, leaves: list[Leaf]) -> None:
    b = bundle
    for leaf in leaves:
        provider = leaf.node.get("provider")
        if provider is None or provider not in b.providers:
            continue
        cfg = b.configs[leaf.config]
        model = leaf.node.get("model")
        members = (
            sorted(b.workspaces)
            if cfg.workspaces is None
            else sorted(cfg.workspaces.intersection(b.workspaces))
        )
        for ws in members:
            why = _unreachable(b, ws, provider, model)
            if why is not None and why[1] not in ctx.incomplete:
                _leaf_error(ctx, leaf, ws, provider, model, why)


def default_configs(ctx: Context, bundle: Bundle) -> None:
    for ws in bundle.workspaces.values():
        cfg = bundle.configs.get(ws.default_config or "")
        if f"configs/{ws.default_config}/workspaces" in ctx.incomplete:
            continue  # the config's list names a workspace that does not exist
        if cfg is not None and cfg.workspaces is not None and ws.slug not in cfg.workspaces:
            span = ctx.span(ctx.workspaces[ws.slug], ("default_config",))
            ctx.sink.emit(
                "E0502",
                f"workspace `{ws.slug}` defaults to config `{cfg.slug}`, "
                "which is not offered to it",
                span,
                help=f"add `{ws.slug}` to the workspaces of config `{cfg.slug}`",
                notes=_note(ctx, f"configs/{cfg.slug}", "the config"),
            )


def _unreachable(b: Bundle, ws: str, provider: str, model: str | None) -> tuple[str, str] | None:
    """(the refusing rule in words, its element), or None when the workspace may go there."""
    p = b.providers[provider]
    refusal = b.provisioning(b.workspaces[ws], p)
    if refusal is None and model is not None:
        try:
            decision = b.decide(ws, provider, model)
        except RequestError:
            return None  # an unknown model is reported by the reference check
        refusal = decision.refusal
    if refusal is None:
        return None
    return f"{refusal.level} {refusal.rule}", refusal.element


def _leaf_error(
    ctx: Context, leaf: Leaf, ws: str, provider: str, model: str | None, why: tuple[str, str]
) -> None:
    rule, element = why
    target = f"@{provider}/{model}" if model else f"@{provider}"
    path = leaf.path
    raw = _raw(ctx, leaf)
    if model and "model" in (raw.get("override_params") or {}):
        where: tuple[str | int, ...] = (*path, "override_params", "model")
    elif "provider" in raw or "virtual_key" in raw:
        where = (*path, "provider" if "provider" in raw else "virtual_key")
    else:
        where = path  # provider and model both come from an enclosing target
    span = ctx.span(ctx.configs[leaf.config], where)
    ctx.sink.emit(
        "E0502",
        f"config `{leaf.config}` sends workspace `{ws}` to `{target}`, which it may not use: "
        f"{rule}",
        span,
        help=f"remove `{ws}` from the config's workspaces, or grant it `{target}`",
        notes=_note(ctx, element, "the rule that blocks it"),
    )


def _note(ctx: Context, element: str, message: str) -> list[Note]:
    span = ctx.origins.get(element)
    return [Note(span, message)] if span is not None else []


def _raw(ctx: Context, leaf: Leaf) -> dict[str, Any]:
    """The config's own mapping at the leaf (before inheritance), to point at its keys."""
    node: Any = ctx.configs[leaf.config].doc.data
    for step in leaf.path:
        if isinstance(node, dict):
            node = node.get(step, {})
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            node = {}
    return node if isinstance(node, dict) else {}
