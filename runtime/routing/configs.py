"""Routing configs (Portkey-compatible, SPEC §5): normalization, and validation of configs
that arrive inline with a request.

One implementation serves both sides: the compiler validates a config's structure with its
typed models (for positions), then calls `normalize` here for the tree and the semantic
checks; the router validates inline configs with `runtime.routing.inline` and the same `normalize`.

A normalized node carries its effective settings after inheritance, so the router never
walks up: `override_params` merge down the tree key by key (a child's key replaces the
parent's whole value, as Portkey's request handler does), `default_params` deep-merge,
`drop_params` accumulate, a child's `retry`/`cache` replace the parent's, the nearest
`request_timeout`/`custom_host` win, and `override_params.model` becomes the leaf's `model`
(and its provider, when written `@provider/model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from runtime.bundle.config_syntax import (
    CARRIED,
    OPERATOR_SYNONYMS,
    QUERY_LOGIC,
    QUERY_OPS,
    SECRET_FIELDS,
    RegexError,
    compile_regex,
    query_field,
)
from runtime.bundle.config_syntax import regex_search as regex_search  # re-exported for plan.py
from runtime.bundle.config_syntax import weight_of as weight_of  # re-exported for plan.py
from runtime.bundle.suggest import did_you_mean
from runtime.routing.params import deep_merge, drop_path_problem

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config; `code` is the compiler's diagnostic code."""

    code: str
    message: str
    path: Path
    help: str | None = None
    at_key: bool = False  # the problem is the key at the end of `path`, not its value


@dataclass
class Normalized:
    tree: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    leaves: list[tuple[dict[str, Any], Path]] = field(default_factory=list)  # node, where


def secret_ref(value: Any) -> str | None:
    """`{env: NAME}` -> "env:NAME"; anything else (a literal) -> None."""
    if isinstance(value, Mapping) and len(value) == 1:
        (kind, name), = value.items()  # fmt: skip
        if kind in ("env", "file") and isinstance(name, str) and name:
            return f"{kind}:{name}"
    return None


def _strings(value: Any) -> tuple[str, ...]:
    """The strings of a list (others are reported by the checks, never used)."""
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, (list, tuple)) else ()


def split_model(text: str) -> tuple[str | None, str]:
    if text.startswith("@") and "/" in text:
        provider, _, model = text[1:].partition("/")
        return provider, model
    return None, text


def number(value: Any) -> Any:
    """JSON-safe numbers for the bundle: a whole Decimal becomes an int, else a float."""
    if isinstance(value, Mapping):
        return {str(k): number(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [number(v) for v in value]
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        return float(value)
    return value


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

    def child(self, t: Mapping[str, Any]) -> Inherited:
        new = self
        provider = t.get("provider")
        if isinstance(provider, str):
            if provider.startswith("@"):
                # `@slug/model` names the model too (an override_params.model still wins)
                named, bare = split_model(provider)
                if named is not None:
                    new = replace(new, provider=named, model=bare, service=None, api_key=None)
                else:
                    new = replace(new, provider=provider[1:], service=None, api_key=None)
            else:
                new = replace(
                    new, provider=None, service=provider, api_key=secret_ref(t.get("api_key"))
                )
        elif isinstance(t.get("virtual_key"), str):
            new = replace(new, provider=t["virtual_key"].removeprefix("@"), service=None)
        override = dict(number(t.get("override_params") or {}))
        model = override.pop("model", None)
        if isinstance(model, str):
            named, bare = split_model(model)
            new = replace(new, model=bare)
            if named is not None:
                new = replace(new, provider=named, service=None, api_key=None)
        carried = dict(new.carried)
        for name in CARRIED:
            if name in t and t[name] is not None:
                shown = secret_ref(t[name]) if name in SECRET_FIELDS else number(t[name])
                old = carried.get(name)
                if isinstance(shown, dict) and isinstance(old, dict):
                    shown = deep_merge(old, shown)
                carried[name] = shown
        return replace(
            new,
            override={**new.override, **override},  # shallow: a child's key replaces
            default=deep_merge(new.default, number(t.get("default_params") or {})),
            drop=tuple(dict.fromkeys((*new.drop, *_strings(t.get("drop_params"))))),
            retry=number(t["retry"]) if t.get("retry") else new.retry,
            cache=number(t["cache"]) if t.get("cache") else new.cache,
            request_timeout=t.get("request_timeout") or new.request_timeout,
            custom_host=(t.get("custom_host") or new.custom_host),
            carried=carried,
        )

    def leaf(self) -> dict[str, Any]:
        node: dict[str, Any] = {
            "mode": "target",
            "params": {"override": self.override, "default": self.default, "drop": list(self.drop)},
        }
        optional = {
            "provider": self.provider, "service": self.service, "api_key": self.api_key,
            "model": self.model, "retry": self.retry, "cache": self.cache,
            "request_timeout": self.request_timeout,
            "custom_host": self.custom_host.rstrip("/") if self.custom_host else None,
        }  # fmt: skip
        node.update({k: v for k, v in optional.items() if v is not None})
        if self.carried:
            node["carried"] = self.carried
        return node


class _Normalizer:
    def __init__(self) -> None:
        self.result = Normalized({})

    def problem(
        self, code: str, message: str, path: Path, help: str | None = None, at_key: bool = False
    ) -> None:
        self.result.problems.append(Problem(code, message, path, help, at_key))

    def node(self, t: Mapping[str, Any], path: Path, parent: Inherited) -> dict[str, Any]:
        self.check_drops(t.get("drop_params"), (*path, "drop_params"))
        here = parent.child(t)
        strategy = t.get("strategy")
        if not isinstance(strategy, Mapping):
            node = here.leaf()
            self.result.leaves.append((node, path))
        else:
            node = {"mode": strategy.get("mode"), "strategy": self.strategy(strategy, path)}
            children = t.get("targets") or []
            node["targets"] = [
                self.node(child, (*path, "targets", i), here)
                for i, child in enumerate(children)
                if isinstance(child, Mapping)
            ]
            self.check_branches(strategy, children, path)
        if t.get("name") is not None:
            node["name"] = t["name"]
        if t.get("weight") is not None:
            node["weight"] = decimal_text(t["weight"])
        if t.get("on_status_codes") is not None:
            node["on_status_codes"] = sorted(set(t["on_status_codes"]))
            self.problem(
                "W0504",
                "a target's own `on_status_codes` do not decide its fallback: the "
                "strategy's do (as in Portkey's gateway)",
                (*path, "on_status_codes"),
                "move the list to the `on_status_codes` of the parent `strategy`",
                at_key=True,
            )
        return node

    def strategy(self, s: Mapping[str, Any], path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if s.get("on_status_codes") is not None:
            out["on_status_codes"] = sorted(set(s["on_status_codes"]))
        if s.get("conditions") is not None:
            out["conditions"] = []
            for i, cond in enumerate(s["conditions"]):
                where = (*path, "strategy", "conditions", i, "query")
                self.check_query(cond.get("query"), where)
                out["conditions"].append(
                    {"query": number(cond.get("query")), "then": cond.get("then")}
                )
        for name in ("default", "sticky", "cb_config"):
            if s.get(name) is not None:
                out[name] = number(s[name])
        return out

    def check_drops(self, paths: Any, path: Path) -> None:
        for i, text in enumerate(paths if isinstance(paths, (list, tuple)) else ()):
            found = drop_path_problem(text)
            if found is not None:
                self.problem(
                    "E0205",
                    f"`drop_params` entry: {found}",
                    (*path, i),
                    "write a path like `logprobs`, `a.b` or `tools[*].function.strict`",
                )

    def check_branches(self, s: Mapping[str, Any], children: Any, path: Path) -> None:
        names = [c["name"] for c in children if isinstance(c, Mapping) and c.get("name")]
        if s.get("mode") == "conditional":
            for i, cond in enumerate(s.get("conditions") or ()):
                self.check_name(
                    cond.get("then"), names, (*path, "strategy", "conditions", i, "then")
                )
            if s.get("default") is not None:
                self.check_name(s["default"], names, (*path, "strategy", "default"))
            else:
                self.problem(
                    "W0503",
                    "this conditional strategy has no `default`: a request that matches no "
                    "condition is refused (400)",
                    (*path, "strategy"),
                    "name a target as `default`, unless refusing such requests is the intent",
                )
        if s.get("mode") == "loadbalance" and children:
            weights = [weight_of(c) for c in children if isinstance(c, Mapping)]
            if weights and all(w == 0 for w in weights):
                self.problem(
                    "E0504",
                    "every target of this loadbalance has weight 0: no request could be routed",
                    (*path, "strategy"),
                    "give at least one target a positive weight (the default is 1)",
                )

    def check_name(self, name: Any, names: list[str], path: Path) -> None:
        if name in names:
            return
        shown = ", ".join(f"`{n}`" for n in names) or "none (add `name:` to the targets)"
        guess = did_you_mean(str(name), names)
        self.problem(
            "E0503",
            f"no target of this strategy is named `{name}`",
            path,
            f"did you mean `{guess}`?" if guess else f"target names here: {shown}",
        )

    # -- conditional queries ------------------------------------------------------------
    def check_query(self, query: Any, path: Path) -> None:
        if not isinstance(query, Mapping):
            self.problem("E0505", "a query is a mapping of fields to conditions", path)
            return
        for key, value in query.items():
            where = (*path, key)
            if key in QUERY_LOGIC:
                if not isinstance(value, list) or not value:
                    self.problem("E0505", f"`{key}` takes a non-empty list of queries", where)
                    continue
                for i, sub in enumerate(value):
                    self.check_query(sub, (*where, i))
            elif key.startswith("$"):
                self.unknown_operator(key, where)
            elif query_field(key):
                self.check_condition(value, where)
            else:
                self.problem(
                    "E0505",
                    f"unknown query field `{key}`",
                    where,
                    "query `metadata.<key>`, `params.<key>` or `url.pathname`",
                    at_key=True,
                )

    def unknown_operator(self, op: str, path: Path) -> None:
        guess = OPERATOR_SYNONYMS.get(op) or did_you_mean(op, (*QUERY_OPS, *QUERY_LOGIC))
        every = ", ".join(QUERY_OPS + QUERY_LOGIC)
        self.problem(
            "E0505",
            f"unknown query operator `{op}`",
            path,
            f"did you mean `{guess}`?" if guess else f"operators: {every}",
            at_key=True,
        )

    def check_condition(self, cond: Any, path: Path) -> None:
        if not isinstance(cond, Mapping):
            return  # a bare value means $eq
        if not cond:
            self.problem("E0505", "an empty condition matches nothing", path)
        for op, arg in cond.items():
            where = (*path, op)
            if op not in QUERY_OPS:
                if op.startswith("$"):
                    self.unknown_operator(op, where)
                else:
                    guess = did_you_mean(f"${op}", QUERY_OPS)
                    self.problem("E0505", f"`{op}` is not an operator; compare with `$eq` & co.",
                                 where, f"did you mean `{guess}`?" if guess else None,
                                 at_key=True)  # fmt: skip
            elif op in ("$in", "$nin") and not isinstance(arg, list):
                self.problem("E0505", f"`{op}` takes a list of values", where,
                             f"write `{{{op}: [{arg}]}}`")  # fmt: skip
            elif op == "$regex":
                self.check_regex(arg, where)

    def check_regex(self, pattern: Any, path: Path) -> None:
        if not isinstance(pattern, str):
            self.problem("E0505", "`$regex` takes a string", path)
            return
        try:
            compile_regex(pattern)
        except RegexError as exc:
            self.problem("E0506", f"invalid regular expression: {exc}", path, exc.help)


def decimal_text(value: Any) -> str:
    """Exact and normalized: 2.50 -> "2.5", 5E+4 -> "50000"."""
    text = format(Decimal(str(value)).normalize(), "f")
    return "0" if text in ("-0", "") else text


def normalize(config: Mapping[str, Any]) -> Normalized:
    """The normalized tree of a structurally valid config, with its semantic problems."""
    normalizer = _Normalizer()
    normalizer.result.tree = normalizer.node(config, (), Inherited())
    return normalizer.result
