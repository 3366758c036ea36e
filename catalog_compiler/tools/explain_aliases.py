"""`explain` for model aliases: what an alias stands for, and where it was declared."""

from __future__ import annotations

from typing import Any

from runtime.bundle.aliases import Alias, usable_aliases
from runtime.bundle.load import Bundle
from runtime.bundle.suggest import did_you_mean


def alias_json(bundle: Bundle, workspace: str, alias: Alias) -> dict[str, Any]:
    declared = "Organization" if alias.source == "organization" else f"Workspace {workspace}"
    return {
        "name": alias.name,
        "target": alias.target,
        "config": alias.config,
        "from": declared,
        "origin": bundle.origin(alias.origin_element(workspace)),
    }


def find_alias(bundle: Bundle, workspace: str, name: str) -> Alias | None:
    """The workspace's alias `name` (a bare name only: `@p/m` is never an alias)."""
    if name.startswith("@"):
        return None
    return bundle.workspace(workspace).aliases.get(name)


def explain_config_alias(bundle: Bundle, workspace: str, alias: Alias) -> dict[str, Any]:
    """An alias for a config: allowed when the config is offered to the workspace."""
    assert alias.config is not None
    cfg = bundle.configs[alias.config]
    out: dict[str, Any] = {"workspace": workspace, "target": alias.target,
                           "alias": alias_json(bundle, workspace, alias)}  # fmt: skip
    out["allowed"] = cfg.workspaces is None or workspace in cfg.workspaces
    if not out["allowed"]:
        out["status"] = 403
        out["reason"] = f"config `{cfg.slug}` is not offered to workspace `{workspace}`"
    return out


def aliases_listing(bundle: Bundle, workspace: str) -> list[dict[str, Any]]:
    """Every alias of the workspace, and whether its target is usable by it."""
    usable = {a.name for a in usable_aliases(bundle, workspace)}
    ws = bundle.workspace(workspace)
    return [
        {**alias_json(bundle, workspace, ws.aliases[name]), "usable": name in usable}
        for name in sorted(ws.aliases)
    ]


def render_alias(data: dict[str, Any]) -> str:
    where = f", {data['origin']}" if data["origin"] else ""
    return f"  alias `{data['name']}` -> `{data['target']}` (from {data['from']}{where})"


def not_an_alias(bundle: Bundle, workspace: str, name: str) -> str:
    """Why a bare name cannot be explained, with the nearest alias if one is close."""
    aliases = bundle.workspace(workspace).aliases
    guess = did_you_mean(name, aliases)
    hint = f" (did you mean `{guess}`?)" if guess else ""
    return f"`{name}` is neither `@provider/model` nor an alias of workspace `{workspace}`{hint}"
