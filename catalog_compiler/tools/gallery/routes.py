"""Which targets each routing config can reach, and with what request: the gallery shows a
model's snippet through a config only when a request of that shape would really take it
there (conditions are evaluated with the router's own `matches`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from catalog_compiler.tools.gallery.snippets import IDENTIFIER, RESERVED_PARAMS, Scalar
from catalog_compiler.tools.gallery.views import ConfigRoute, ConfigView
from runtime.bundle.load import Bundle
from runtime.routing.plan import Context, matches

CHAT_PATH = "/v1/chat/completions"  # the routes shown are a chat request's (the snippets')


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
                ctx = Context(*merged, CHAT_PATH)
                taken = (
                    hint is not None
                    and matches(query, ctx)
                    and not any(matches(c.get("query") or {}, ctx) for c in conditions[:i])
                )
                step = f"branch `{name}` when {_query_text(query)}"
                walk(by_name[name], (*how, step), merged if taken else shape, ok and taken)
            default = strategy.get("default")
            if isinstance(default, str) and default in by_name:
                ctx = Context(*shape, CHAT_PATH)
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
