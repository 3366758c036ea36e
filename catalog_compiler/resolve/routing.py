"""Routing configs compiled to a normalized tree (SPEC §5), with their local checks.

Every node carries its effective settings after inheritance, so the runtime never walks up:
`override_params` deep-merge down the tree (child wins), `default_params` likewise, `drop_params`
accumulate, a child's `retry`/`cache` replace the parent's, the nearest timeout and host win.
`override_params.model` becomes the leaf's `model` (and its provider, when written `@p/m`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from catalog_compiler.facts import split_model_string
from catalog_compiler.model.common import SecretRef
from catalog_compiler.model.routing import Target
from catalog_compiler.resolve.context import Context, Located, Path
from catalog_compiler.resolve.values import dec, plain
from runtime.suggest import hint

QUERY_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex")
QUERY_LOGIC = ("$and", "$or")
QUERY_FIELDS = ("metadata.", "params.")
CARRIED = (
    "forward_headers", "passthrough", "strict_open_ai_compliance", "input_guardrails",
    "output_guardrails", "before_request_hooks", "after_request_hooks", "metadata", "prompt_id",
    "resource_name", "deployment_id", "api_version", "deployments", "azure_resource_name",
    "azure_deployment_id", "azure_api_version", "azure_model_name", "azure_region",
    "azure_deployment_name", "azure_deployment_type", "azure_endpoint_name", "aws_access_key_id",
    "aws_secret_access_key", "aws_session_token", "aws_region", "openai_organization",
    "openai_project", "vertex_project_id", "vertex_region", "vertex_service_account_json",
    "Authorization", "cb_config",
)  # fmt: skip


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`: scalars and lists replaced, mappings merged key by key."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def carried_value(value: Any) -> Any:
    if isinstance(value, SecretRef):
        return value.ref()
    if hasattr(value, "model_dump"):
        return plain(value.model_dump(exclude_none=True))
    if isinstance(value, tuple):
        return [carried_value(v) for v in value]
    return plain(value)


@dataclass(frozen=True)
class Inherited:
    """The effective settings at one node of the tree."""

    provider: str | None = None  # a catalog provider slug
    service: str | None = None  # a raw service id (ungoverned), with its own key reference
    api_key: str | None = None
    model: str | None = None
    override: dict[str, Any] = field(default_factory=dict)
    default: dict[str, Any] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    retry: dict[str, Any] | None = None
    cache: dict[str, Any] | None = None
    request_timeout: int | None = None
    custom_host: str | None = None
    carried: dict[str, Any] = field(default_factory=dict)

    def child(self, t: Target) -> Inherited:
        new = self
        if t.provider is not None:
            if t.provider.startswith("@"):
                new = replace(new, provider=t.provider[1:], service=None, api_key=None)
            else:
                key = t.api_key.ref() if t.api_key else None
                new = replace(new, provider=None, service=t.provider, api_key=key)
        elif t.virtual_key is not None:
            new = replace(new, provider=t.virtual_key.removeprefix("@"), service=None)
        override = plain(dict(t.override_params or {}))
        model = override.pop("model", None)
        if isinstance(model, str):
            named, bare = split_model_string(model)
            new = replace(new, model=bare)
            if named is not None:
                new = replace(new, provider=named, service=None, api_key=None)
        carried = dict(new.carried)
        for name in CARRIED:
            value = getattr(t, name)
            if value is not None:
                shown = carried_value(value)
                old = carried.get(name)
                if isinstance(shown, dict) and isinstance(old, dict):
                    shown = deep_merge(old, shown)
                carried[name] = shown
        drops = tuple(dict.fromkeys((*new.drop, *(t.drop_params or ()))))
        return replace(
            new,
            override=deep_merge(new.override, override),
            default=deep_merge(new.default, plain(dict(t.default_params or {}))),
            drop=drops,
            retry=carried_value(t.retry) if t.retry else new.retry,
            cache=carried_value(t.cache) if t.cache else new.cache,
            request_timeout=t.request_timeout or new.request_timeout,
            custom_host=t.custom_host or new.custom_host,
            carried=carried,
        )

    def leaf_json(self) -> dict[str, Any]:
        node: dict[str, Any] = {
            "mode": "target",
            "params": {"override": self.override, "default": self.default, "drop": list(self.drop)},
        }
        optional = {
            "provider": self.provider, "service": self.service, "api_key": self.api_key,
            "model": self.model, "retry": self.retry, "cache": self.cache,
            "request_timeout": self.request_timeout, "custom_host": self.custom_host,
        }  # fmt: skip
        node.update({k: v for k, v in optional.items() if v is not None})
        if self.carried:
            node["carried"] = self.carried
        return node


@dataclass
class Leaf:
    """A compiled leaf and where it was written, for per-workspace reachability checks."""

    config: str
    node: dict[str, Any]
    path: Path


class ConfigCompiler:
    def __init__(self, ctx: Context, slug: str, located: Located) -> None:
        self.ctx = ctx
        self.slug = slug
        self.located = located
        self.leaves: list[Leaf] = []

    def emit(self, code: str, message: str, path: Path, **kw: Any) -> None:
        self.ctx.sink.emit(code, message, self.ctx.span(self.located, path), **kw)

    def compile(self, target: Target) -> dict[str, Any]:
        return self.node(target, ("config",), Inherited())

    def node(self, t: Target, path: Path, parent: Inherited) -> dict[str, Any]:
        here = parent.child(t)
        self.ctx.remember(f"configs/{self.slug}/tree{_tree_key(path)}", self.located, path)
        node: dict[str, Any] = {}
        if t.strategy is None:
            node = here.leaf_json()
            self.leaves.append(Leaf(self.slug, node, path))
        else:
            node = {"mode": t.strategy.mode, "strategy": self.strategy(t, path)}
            node["targets"] = [
                self.node(child, (*path, "targets", i), here)
                for i, child in enumerate(t.targets or ())
            ]
            self.check_branches(t, path)
        if t.name is not None:
            node["name"] = t.name
        if t.weight is not None:
            node["weight"] = dec(t.weight)
        if t.on_status_codes is not None:
            node["on_status_codes"] = sorted(set(t.on_status_codes))
        return node

    def strategy(self, t: Target, path: Path) -> dict[str, Any]:
        s = t.strategy
        assert s is not None
        out: dict[str, Any] = {}
        if s.on_status_codes is not None:
            out["on_status_codes"] = sorted(set(s.on_status_codes))
        if s.conditions is not None:
            out["conditions"] = []
            for i, cond in enumerate(s.conditions):
                where = (*path, "strategy", "conditions", i, "query")
                self.check_query(cond.query, where)
                out["conditions"].append({"query": plain(cond.query), "then": cond.then})
        if s.default is not None:
            out["default"] = s.default
        if s.sticky is not None:
            out["sticky"] = carried_value(s.sticky)
        if s.cb_config is not None:
            out["cb_config"] = carried_value(s.cb_config)
        return out

    def check_branches(self, t: Target, path: Path) -> None:
        s = t.strategy
        assert s is not None
        children = t.targets or ()
        names = [c.name for c in children if c.name is not None]
        if s.mode == "conditional":
            for i, cond in enumerate(s.conditions or ()):
                self.check_name(cond.then, names, (*path, "strategy", "conditions", i, "then"))
            if s.default is not None:
                self.check_name(s.default, names, (*path, "strategy", "default"))
        if s.mode == "loadbalance" and children:
            weights = [c.weight if c.weight is not None else Decimal(1) for c in children]
            if all(w == 0 for w in weights):
                self.emit(
                    "E0504",
                    "every target of this loadbalance has weight 0: no request could be routed",
                    (*path, "strategy"),
                    help="give at least one target a positive weight (the default is 1)",
                )

    def check_name(self, name: str, names: list[str], path: Path) -> None:
        if name in names:
            return
        shown = ", ".join(f"`{n}`" for n in names) or "none (add `name:` to the targets)"
        self.emit(
            "E0503",
            f"no target of this strategy is named `{name}`",
            path,
            help=hint(name, names) or f"target names here: {shown}",
        )

    # -- conditional queries ------------------------------------------------------------
    def check_query(self, query: Any, path: Path) -> None:
        if not isinstance(query, dict):
            self.emit("E0505", "a query is a mapping of fields to conditions", path)
            return
        for key, value in query.items():
            where = (*path, key)
            if key in QUERY_LOGIC:
                if not isinstance(value, list) or not value:
                    self.emit("E0505", f"`{key}` takes a non-empty list of queries", where)
                    continue
                for i, sub in enumerate(value):
                    self.check_query(sub, (*where, i))
            elif key.startswith("$"):
                self.unknown_operator(key, where)
            elif key == "url.pathname" or (key.startswith(QUERY_FIELDS) and "." in key[6:]):
                self.check_condition(value, where)
            else:
                self.emit(
                    "E0505",
                    f"unknown query field `{key}`",
                    where,
                    help="query `metadata.<key>`, `params.<key>` or `url.pathname`",
                )

    def unknown_operator(self, op: str, path: Path) -> None:
        self.emit(
            "E0505",
            f"unknown query operator `{op}`",
            path,
            help=hint(op, (*QUERY_OPS, *QUERY_LOGIC))
            or f"operators: {', '.join((*QUERY_OPS, *QUERY_LOGIC))}",
        )

    def check_condition(self, cond: Any, path: Path) -> None:
        if not isinstance(cond, dict):
            return  # a bare value means $eq
        if not cond:
            self.emit("E0505", "an empty condition matches nothing", path)
        for op, arg in cond.items():
            where = (*path, op)
            if op not in QUERY_OPS:
                if op.startswith("$"):
                    self.unknown_operator(op, where)
                else:
                    self.emit("E0505", f"`{op}` is not an operator; compare with `$eq` & co.",
                              where, help=hint(f"${op}", QUERY_OPS))  # fmt: skip
            elif op in ("$in", "$nin") and not isinstance(arg, list):
                self.emit("E0505", f"`{op}` takes a list of values", where)
            elif op == "$regex":
                self.check_regex(arg, where)

    def check_regex(self, pattern: Any, path: Path) -> None:
        if not isinstance(pattern, str):
            self.emit("E0505", "`$regex` takes a string", path)
            return
        try:
            re.compile(pattern)
        except re.error as exc:
            where = f" at position {exc.pos}" if exc.pos is not None else ""
            self.emit("E0506", f"invalid regular expression: {exc.msg}{where}", path)


def _tree_key(path: Path) -> str:
    """`("config", "targets", 1, "targets", 0)` -> "/1/0": a leaf's place in the tree."""
    return "".join(f"/{step}" for step in path if isinstance(step, int))
