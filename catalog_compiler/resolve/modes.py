"""W0505: a routing config whose targets are models of different modes.

A request reaches one endpoint, which serves some modes only (runtime/routing/modes.py): the
gateway refuses the whole request when any attempt of its plan has another mode, so a
fallback to an embedding model from a chat model never helps, it fails every call that
reaches it. Targets that take the request's model are not counted (their mode is the
request's)."""

from __future__ import annotations

from catalog_compiler.diagnostics import Note
from catalog_compiler.resolve.context import Context
from catalog_compiler.resolve.routing import Leaf
from runtime.bundle.load import Bundle


def mixed_modes(ctx: Context, bundle: Bundle, leaves: list[Leaf]) -> None:
    first: dict[str, tuple[Leaf, str, str]] = {}  # config -> its first leaf, target, mode
    for leaf in leaves:
        found = _mode(bundle, leaf)
        if found is None:
            continue
        target, mode = found
        seen = first.setdefault(leaf.config, (leaf, target, mode))
        if seen[2] == mode:
            continue
        located = ctx.configs[leaf.config]
        ctx.sink.emit(
            "W0505",
            f"config `{leaf.config}` mixes modes: `{target}` is {_a(mode)} model, `{seen[1]}` "
            f"{_a(seen[2])} model; no endpoint serves both, and the gateway refuses a request "
            "whose targets include a model its endpoint does not serve",
            ctx.span(located, leaf.path),
            help="keep one mode per config (make a config per endpoint)",
            notes=[Note(ctx.span(located, seen[0].path), f"the first {seen[2]} target")],
        )
        first[leaf.config] = (leaf, target, mode)  # one warning per change of mode


def _mode(bundle: Bundle, leaf: Leaf) -> tuple[str, str] | None:
    provider, model = leaf.node.get("provider"), leaf.node.get("model")
    p = bundle.providers.get(provider) if isinstance(provider, str) else None
    info = p.models.get(model) if p is not None and isinstance(model, str) else None
    return (f"@{provider}/{model}", info.mode) if info is not None else None


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"
