"""Aliases at compile time: each workspace's effective map for the bundle (the
Organization's, overridden by the Workspace's of the same name), and the checks that need
the resolved catalog (E0520 an alias shadowing a model, E0521 a workspace alias whose
target the workspace may not use). Unknown targets are reported by the link stage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from catalog_compiler.diagnostics import Note
from catalog_compiler.model.aliases import ConfigTarget
from catalog_compiler.resolve.context import Context, Located
from runtime.bundle.access import Refusal
from runtime.bundle.aliases import Alias
from runtime.bundle.errors import RequestError
from runtime.bundle.load import Bundle, Workspace

Exposes = Callable[[str], set[str]]  # provider slug -> the model names it exposes


def effective(ctx: Context, slug: str, exposes: Exposes) -> dict[str, Any]:
    """The workspace's aliases for the bundle, sorted; a target that does not resolve
    (already an error) is left out so the rest of the catalog is still checked."""
    sources: list[tuple[str, Located, str]] = [
        ("organization", ctx.organization, "organization"),
        ("workspace", ctx.workspaces[slug], f"workspaces/{slug}"),
    ]
    out: dict[str, Any] = {}
    for source, located, prefix in sources:
        for name, target in (located.model.aliases or {}).items():
            ctx.remember(f"{prefix}/aliases/{name}", located, ("aliases", name), key=True)
            entry = _resolved(ctx, target, exposes)
            if entry is None:
                out.pop(name, None)
            else:
                out[name] = {**entry, "from": source}
    return dict(sorted(out.items()))


def _resolved(ctx: Context, target: str | ConfigTarget, exposes: Exposes) -> dict[str, str] | None:
    if isinstance(target, ConfigTarget):
        return {"config": target.config} if target.config in ctx.configs else None
    provider, _, model = target[1:].partition("/")
    if provider not in ctx.providers or model not in exposes(provider):
        return None
    return {"provider": provider, "model": model}


class AliasChecks:
    def __init__(self, ctx: Context, bundle: Bundle) -> None:
        self.ctx = ctx
        self.bundle = bundle
        self.reported: set[str] = set()  # an Organization alias is reported once

    def run(self) -> None:
        for slug in sorted(self.bundle.workspaces):
            ws = self.bundle.workspaces[slug]
            for alias in ws.aliases.values():
                self.shadowing(ws, alias)
                if alias.source == "workspace":
                    self.usable(ws, alias)

    def declared(self, ws: Workspace, alias: Alias) -> tuple[Located, str]:
        if alias.source == "organization":
            return self.ctx.organization, "the organization's"
        return self.ctx.workspaces[ws.slug], f"workspace `{ws.slug}`'s"

    # -- E0520: `model: fast` must mean one thing ---------------------------------------
    def shadowing(self, ws: Workspace, alias: Alias) -> None:
        element = alias.origin_element(ws.slug)
        if element in self.reported:
            return
        clash = next(
            (p for p in self.bundle.usable_providers(ws.slug) if alias.name in p.exposed), None
        )
        if clash is None:
            return
        self.reported.add(element)
        located, whose = self.declared(ws, alias)
        self.ctx.sink.emit(
            "E0520",
            f"{whose} alias `{alias.name}` has the name of model `@{clash.slug}/{alias.name}`, "
            f"which workspace `{ws.slug}` can use: `model: {alias.name}` would be ambiguous",
            self.ctx.span(located, ("aliases", alias.name), key=True),
            help=f"rename the alias (e.g. `{alias.name}-alias`); aliases may not reuse the "
            "name of a model the workspace's providers expose",
        )

    # -- E0521: a workspace's own alias must be usable by it ---------------------------
    def usable(self, ws: Workspace, alias: Alias) -> None:
        refusal, rule_element = self.refusal(ws, alias)
        if refusal is None or rule_element in self.ctx.incomplete:
            return
        located = self.ctx.workspaces[ws.slug]
        where = ("aliases", alias.name, "config") if alias.config else ("aliases", alias.name)
        span = self.ctx.span(located, where)
        origin = self.ctx.origins.get(rule_element)
        self.ctx.sink.emit(
            "E0521",
            f"alias `{alias.name}` of workspace `{ws.slug}` names {alias.described}, which the "
            f"workspace may not use: {refusal}",
            span,
            help=f"point the alias at a target `{ws.slug}` may use, or grant it {alias.described}",
            notes=[Note(origin, "the rule that blocks it")] if origin is not None else [],
        )

    def refusal(self, ws: Workspace, alias: Alias) -> tuple[str | None, str]:
        """Why `ws` may not use the alias's target (in words), and the rule's element."""
        b = self.bundle
        if alias.config is not None:
            cfg = b.configs[alias.config]
            if cfg.workspaces is None or ws.slug in cfg.workspaces:
                return None, ""
            return f"config `{cfg.slug}` is not offered to it", f"configs/{cfg.slug}"
        assert alias.provider is not None and alias.model is not None
        why: Refusal | None = b.provisioning(ws, b.providers[alias.provider])
        if why is None:
            try:
                why = b.decide(ws.slug, alias.provider, alias.model).refusal
            except RequestError:
                return None, ""  # an unknown model is reported by the link stage
        if why is None:
            return None, ""
        return f"{why.level} {why.rule}", why.element
