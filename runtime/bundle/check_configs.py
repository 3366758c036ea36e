"""The bundle's checks of routing configs: node modes, strategies, conditions and their
queries, leaves and the fields they carry (the part of `Checker` that reads configs).
"""

from __future__ import annotations

import marshal
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from runtime.bundle.canonical import MAX_SAFE_INTEGER
from runtime.bundle.check_values import (
    _DROP_STEP,
    BRANCH,
    CACHE,
    CONDITION,
    CONFIG,
    LEAF,
    MAX_DROP_PATH,
    MAX_JSON_DEPTH,
    MAX_RETRY_ATTEMPTS,
    MAX_TREE_DEPTH,
    MAX_WEIGHT,
    PARAMS,
    RETRY,
    STICKY,
    STRATEGY,
    Bad,
    array,
    decimal,
    flag,
    integer,
    json_object,
    json_value,
    mapping,
    obj,
    secret_ref,
    section,
    status_codes,
    text,
    texts,
    url,
)
from runtime.bundle.config_syntax import (
    CARRIED,
    MODES,
    QUERY_LOGIC,
    QUERY_OPS,
    SECRET_FIELDS,
    query_field,
)
from runtime.bundle.config_syntax import compile_regex as _compile_regex


class ConfigChecks:
    """The routing configs of a bundle, checked as part of `Checker` (a base class of it):
    node modes, strategies, conditions and their queries, leaves and what they carry. Reads
    the checker's `routing` switch, its `providers` and its `passed` values."""

    routing: bool
    providers: dict[str, Any]
    passed: set[tuple[str, bytes]]

    def once(self, kind: str, value: Any, check: Callable[[], None]) -> None:
        """Run `check` unless an identical value of this kind passed it before. Bundles
        repeat themselves (leaves of one shape, models priced alike, default limits), and
        `marshal` gives an exact key at C speed: it tells 1 from True and 1.0, "1" from 1."""
        try:
            key = (kind, marshal.dumps(value))
        except ValueError:  # too deep to marshal: checked (and refused) the long way
            check()
            return
        if key not in self.passed:
            check()
            self.passed.add(key)

    def config(self, slug: str, value: Any) -> None:
        cfg = obj(value, CONFIG)
        if cfg["workspaces"] is not None:
            texts(cfg["workspaces"], "workspaces")
        section("tree", self.node, cfg["tree"], 0)

    def node(self, value: Any, depth: int) -> None:
        if depth > MAX_TREE_DEPTH:
            raise Bad(f"strategies nested deeper than {MAX_TREE_DEPTH} levels")
        mode = mapping(value).get("mode")
        if mode == "target":
            self.leaf(obj(value, LEAF))
        elif type(mode) is str and mode in MODES:
            self.branch(obj(value, BRANCH), depth)
        else:
            raise Bad(f"a node's mode is `target` or one of {', '.join(MODES)}", "mode")
        if "name" in value and value["name"] is not None:
            text(value["name"], "name")
        if "weight" in value:  # absent means 1; null has no weight
            decimal(value["weight"], MAX_WEIGHT, None, "weight")
        if value.get("on_status_codes") is not None:
            status_codes(value["on_status_codes"], "on_status_codes")

    def branch(self, node: dict[str, Any], depth: int) -> None:
        targets = array(node["targets"], "targets", nonempty=True)
        for i, child in enumerate(targets):
            try:
                self.node(child, depth + 1)
            except Bad as bad:
                raise bad.within(i).within("targets") from None
        mode = node["mode"]
        names = {t.get("name") for t in targets}
        section("strategy", self.strategy, obj(node["strategy"], STRATEGY, "strategy"), mode,
                names)  # fmt: skip
        if (
            mode == "loadbalance"
            and self.routing
            and all(Decimal(t.get("weight", "1")) == 0 for t in targets)
        ):
            raise Bad("every target has weight 0: no request could be routed", "targets")

    def strategy(self, s: dict[str, Any], mode: str, names: set[Any]) -> None:
        if s.get("on_status_codes") is not None:
            status_codes(s["on_status_codes"], "on_status_codes")
        conditions = s.get("conditions")
        if conditions is not None:
            for i, cond in enumerate(array(conditions, "conditions")):
                c = obj(cond, CONDITION, "conditions", i)
                try:
                    query(c["query"], 0) if self.routing else mapping(c["query"])
                except Bad as bad:
                    raise bad.within("query").within(i).within("conditions") from None
                then = text(c["then"], "conditions", i, "then")
                if mode == "conditional" and self.routing and then not in names:
                    raise Bad(f"no target is named `{then}`", "conditions", i, "then")
        default = s.get("default")
        if (
            mode == "conditional"
            and self.routing
            and default is not None
            and (type(default) is not str or default not in names)
        ):
            raise Bad("a conditional's `default` names one of its targets", "default")
        if default is not None:
            text(default, "default")
        if s.get("sticky") is not None:
            sticky = obj(s["sticky"], STICKY, "sticky")
            if sticky.get("enabled") is not None:
                flag(sticky["enabled"], "sticky", "enabled")
            if sticky.get("hash_fields") is not None:
                texts(sticky["hash_fields"], "sticky", "hash_fields")
            if sticky.get("ttl") is not None:
                integer(sticky["ttl"], 1, MAX_SAFE_INTEGER, "sticky", "ttl")
        if s.get("cb_config") is not None:
            json_object(s["cb_config"], "cb_config")

    def leaf(self, node: dict[str, Any]) -> None:
        """Leaves differ mostly in their provider and model: those are checked each time
        (the provider must exist), the rest once per shape."""
        for name in ("provider", "model"):
            if node.get(name) is not None:
                _LEAF_FIELDS[name](self, node[name], name)
        rest = {k: v for k, v in node.items() if k != "provider" and k != "model"}
        self.once("leaf", rest, lambda: self.leaf_rest(rest))

    def leaf_rest(self, node: dict[str, Any]) -> None:
        params = obj(node["params"], PARAMS, "params")
        json_object(params["override"], "params", "override")
        json_object(params["default"], "params", "default")
        for i, step in enumerate(texts(params["drop"], "params", "drop", limit=MAX_DROP_PATH)):
            if not _DROP_STEP.search(step):
                raise Bad("a drop path names no field", "params", "drop", i)
        for name, value in node.items():
            check = _LEAF_FIELDS.get(name)
            if check is not None and value is not None:
                check(self, value, name)

    def leaf_provider(self, value: Any, name: str) -> None:
        if type(value) is not str:
            raise Bad("expected a provider slug", name)
        if self.routing and value not in self.providers:  # else the compiler reports it
            raise Bad(f"names provider `@{value}`, which does not exist", name)


def query(value: Any, depth: int) -> None:
    """A conditional's query, as runtime/routing/plan.py evaluates it."""
    if depth > MAX_JSON_DEPTH:
        raise Bad(f"queries nested deeper than {MAX_JSON_DEPTH} levels")
    for key, cond in mapping(value).items():
        try:
            if key in QUERY_LOGIC:
                for i, sub in enumerate(array(cond, nonempty=True)):
                    section(i, query, sub, depth + 1)
            elif key.startswith("$") or not query_field(key):
                raise Bad("not a query field (`metadata.<key>`, `params.<key>`, `url.pathname`)")
            elif type(cond) is not dict:
                json_value(cond)  # a bare value means $eq
            else:
                condition(cond)
        except Bad as bad:
            raise bad.within(key) from None


def condition(cond: dict[str, Any]) -> None:
    if not cond:
        raise Bad("an empty condition matches nothing")
    for op, arg in cond.items():
        if op not in QUERY_OPS:
            raise Bad(f"unknown operator; operators: {', '.join(QUERY_OPS)}", op)
        if op in ("$in", "$nin"):
            section(op, json_value, array(arg, op))
        elif op == "$regex":
            regex(arg, op)
        else:
            section(op, json_value, arg)


def regex(value: Any, step: str) -> None:
    pattern = text(value, step, empty=True)
    try:
        _compile_regex(pattern)
    except Exception as exc:  # whatever the router's regex engine refuses, it refuses here
        raise Bad(f"a regular expression the router cannot compile ({exc})", step) from None


def _optional_text(checker: ConfigChecks, value: Any, name: str) -> None:
    text(value, name)


def _secret(checker: ConfigChecks, value: Any, name: str) -> None:
    secret_ref(value, name)


def _retry(checker: ConfigChecks, value: Any, name: str) -> None:
    r = obj(value, RETRY, name)
    integer(r["attempts"], 0, MAX_RETRY_ATTEMPTS, name, "attempts")
    if r.get("on_status_codes") is not None:
        status_codes(r["on_status_codes"], name, "on_status_codes")
    for field in ("use_retry_after_headers", "use_retry_after_header"):
        if r.get(field) is not None:
            flag(r[field], name, field)


def _cache(checker: ConfigChecks, value: Any, name: str) -> None:
    cache = obj(value, CACHE, name)
    if cache["mode"] not in ("simple", "semantic"):
        raise Bad("a cache mode is simple or semantic", name, "mode")
    if cache.get("max_age") is not None:
        integer(cache["max_age"], 0, MAX_SAFE_INTEGER, name, "max_age")


def _timeout(checker: ConfigChecks, value: Any, name: str) -> None:
    integer(value, 1, MAX_SAFE_INTEGER, name)


def _host(checker: ConfigChecks, value: Any, name: str) -> None:
    url(value, name)


def _carried(checker: ConfigChecks, value: Any, name: str) -> None:
    for field, v in mapping(value, name).items():
        if field not in CARRIED:
            raise Bad("not a field the router carries", name, field)
        if field in SECRET_FIELDS:
            if v is not None:
                secret_ref(v, name, field)
        else:
            section(name, section, field, json_value, v)


def _leaf_provider(checker: ConfigChecks, value: Any, name: str) -> None:
    checker.leaf_provider(value, name)


# The optional members of a leaf (its required `mode` and `params` are checked apart).
_LEAF_FIELDS: dict[str, Callable[[ConfigChecks, Any, str], None]] = {
    "provider": _leaf_provider, "service": _optional_text, "model": _optional_text,
    "api_key": _secret, "retry": _retry, "cache": _cache, "request_timeout": _timeout,
    "custom_host": _host, "carried": _carried,
}  # fmt: skip
