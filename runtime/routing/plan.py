"""Plans: what the router decided for one request. Evaluating a normalized config tree:
fallback lists attempts in order, loadbalance picks one target by weight, conditional picks
the branch its first matching query names."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runtime.bundle.errors import InvalidConfig, NoBranch
from runtime.bundle.load import Counter, Prices
from runtime.bundle.price_tables import RateCard
from runtime.bundle.values import value
from runtime.limits.spec import ChainSpec
from runtime.routing.configs import regex_search, weight_of


@value
class Attempt:
    """One upstream call the plan may make, with everything needed to make and charge it."""

    workspace: str
    provider: str | None  # catalog provider slug; None for an ungoverned raw service
    model: str
    service: str
    api: str
    auth: str
    url: str | None
    credentials: Mapping[str, str]  # references only: "env:NAME" / "file:PATH"
    params: Mapping[str, Any]  # the request body to send (model included)
    retry: Mapping[str, Any] | None
    timeout_ms: int | None
    # Where to go after an answer, innermost fallback group first: (statuses that move on
    # at that level, None meaning any non-2xx; the index of the attempt to move to).
    fallback: tuple[Rule, ...]
    prices: Prices | None
    rates: RateCard
    chain: tuple[Counter, ...]
    max_output_tokens: int | None
    carried: Mapping[str, Any] = field(default_factory=dict)
    limits: ChainSpec | None = None  # the chain compiled for admission
    option: str | None = None  # where in the config it came from: "config.targets[1]"
    catalog_rates: RateCard | None = None  # the catalog's price (rates: the workspace's)
    mode: str | None = None  # the model's mode (runtime/routing/modes.py); None: a raw service
    context_window: int | None = None  # the model's, when the catalog says (None: unknown)

    @property
    def target(self) -> str:
        return f"@{self.provider}/{self.model}" if self.provider else f"{self.service}/{self.model}"

    @property
    def fallback_on(self) -> frozenset[int] | None:
        """The statuses that move on from this attempt's own fallback group."""
        return self.fallback[0][0] if self.fallback else frozenset()

    def next_after(self, status: int) -> int | None:
        """The attempt to try after this answer, or None: the answer is final.

        As Portkey's request handler does it: the answer goes up the tree, and the first
        fallback group (innermost first) that lists its status, and has a target after
        this one, moves on to it. A listed status moves on whatever its range (a
        guardrail's 246 is a 2xx); a group with no list moves on from any non-2xx."""
        for codes, then in self.fallback:
            if (status in codes) if codes is not None else not 200 <= status < 300:
                return then
        return None

    def moves_on(self, status: int) -> bool:
        return self.next_after(status) is not None


@value
class Plan:
    workspace: str
    mode: str  # single | fallback | loadbalance | conditional
    attempts: tuple[Attempt, ...]
    config: str | None = None
    branch: str | None = None  # the target a conditional strategy selected
    alias: str | None = None  # the model alias the request named (runtime/bundle/aliases.py)


Rule = tuple[frozenset[int] | None, int]


@value
class Choice:
    """A leaf of the tree to try, and where to go after its answer."""

    leaf: Mapping[str, Any]
    fallback: tuple[Rule, ...] = ()  # innermost group first (Attempt.fallback)
    option: str = "config"  # the JSON path of the leaf, as Portkey reports it


@dataclass
class Context:
    """What conditions and sticky load balancing look at."""

    metadata: Mapping[str, Any]
    params: Mapping[str, Any]
    path: str | None = None  # None: a library caller named none, and `url.pathname` is absent
    seed: int | None = None
    branch: str | None = None


def expand(
    node: Mapping[str, Any], ctx: Context, at: str = "config", first: int = 0
) -> list[Choice]:
    """The leaves to try, in order, each with its fallback rules; `first` is the index the
    first of them will have in the plan. `at` is the node's JSON path
    (`config.targets[1]`), reported to clients."""
    mode = node["mode"]
    if mode == "target":
        return [Choice(node, (), at)]
    targets: Sequence[Mapping[str, Any]] = node["targets"]
    strategy = node.get("strategy") or {}
    if mode != "fallback":
        if mode == "loadbalance":
            picked = pick_weighted(targets, strategy, ctx)
        elif mode == "conditional":
            picked = pick_branch(targets, strategy, ctx)
        else:  # single
            picked = targets[0]
        index = next(i for i, t in enumerate(targets) if t is picked)
        return expand(picked, ctx, f"{at}.targets[{index}]", first)
    codes = strategy.get("on_status_codes")
    group: frozenset[int] | None = frozenset(codes) if codes is not None else None
    kept: list[list[Choice]] = []
    start = first
    for i, child in enumerate(targets):
        try:
            choices = expand(child, ctx, f"{at}.targets[{i}]", start)
        except NoBranch:
            if not kept:
                raise
            # As Portkey reads a later target's conditions only when the fallback reaches
            # it: the targets before it serve, and if they fail, their answer stands.
            break
        kept.append(choices)
        start += len(choices)
    out: list[Choice] = []
    for i, choices in enumerate(kept):
        if i < len(kept) - 1:
            then = first + len(out) + len(choices)  # the next target's first leaf
            choices = [_then(c, group, then) for c in choices]
        out.extend(choices)
    return out


def _then(choice: Choice, codes: frozenset[int] | None, then: int) -> Choice:
    """`choice` moves on to attempt `then` on this group's statuses. Only the strategy's
    `on_status_codes` count: a target's own are carried, not used (as in Portkey's
    handler; the compiler warns, W0504)."""
    return Choice(choice.leaf, (*choice.fallback, (codes, then)), choice.option)


def pick_weighted(
    targets: Sequence[Mapping[str, Any]], strategy: Mapping[str, Any], ctx: Context
) -> Mapping[str, Any]:
    """A weighted pick, exact in decimals; deterministic given a seed or a sticky key."""
    weights = [weight_of(t) for t in targets]
    exponents = [w.as_tuple().exponent for w in weights]
    scale = max([-e for e in exponents if isinstance(e, int) and e < 0], default=0)
    ints = [int(w.scaleb(scale)) for w in weights]
    total = sum(ints)
    if total <= 0:
        raise InvalidConfig(["every target of a loadbalance has weight 0"])
    sticky = strategy.get("sticky") or {}
    values = [lookup(f, ctx) for f in sticky.get("hash_fields") or ()]
    if sticky.get("enabled", True) and any(v is not _MISSING for v in values):
        # a field the request lacks hashes as a fixed mark (an object's `str` is its memory
        # address: another pick in every process); a request with none of them is not
        # sticky, so the weights hold for such requests too
        key = "|".join(_ABSENT if v is _MISSING else str(v) for v in values)
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        point = int.from_bytes(digest[:8], "big") % total
    elif ctx.seed is not None:
        point = random.Random(ctx.seed).randrange(total)
    else:
        point = random.SystemRandom().randrange(total)
    for target, weight in zip(targets, ints, strict=True):
        if point < weight:
            return target
        point -= weight
    raise AssertionError("unreachable: the point lies below the total")  # pragma: no cover


def pick_branch(
    targets: Sequence[Mapping[str, Any]], strategy: Mapping[str, Any], ctx: Context
) -> Mapping[str, Any]:
    by_name: dict[Any, Mapping[str, Any]] = {}
    for t in targets:  # the first target of a name, as Portkey's `findIndex`
        by_name.setdefault(t.get("name"), t)
    for condition in strategy.get("conditions") or ():
        if matches(condition["query"], ctx):
            ctx.branch = condition["then"]
            return by_name[condition["then"]]
    default = strategy.get("default")
    if default is None:
        raise NoBranch
    ctx.branch = default
    return by_name[default]


_MISSING = object()
_ABSENT = "\x00absent"  # a sticky key's mark for a field the request lacks


def lookup(name: str, ctx: Context) -> Any:
    """`metadata.user.tier`, `params.max_tokens` or `url.pathname` in the request."""
    if name == "url.pathname":
        return _MISSING if ctx.path is None else ctx.path
    head, _, rest = name.partition(".")
    node: Any = {"metadata": ctx.metadata, "params": ctx.params}.get(head, _MISSING)
    for step in rest.split(".") if rest else ():
        node = node.get(step, _MISSING) if isinstance(node, Mapping) else _MISSING
    return node


def matches(query: Mapping[str, Any], ctx: Context) -> bool:
    for key, cond in query.items():
        if key == "$and":
            if not all(matches(q, ctx) for q in cond):
                return False
        elif key == "$or":
            if not any(matches(q, ctx) for q in cond):
                return False
        elif not _holds(lookup(key, ctx), cond):
            return False
    return True


def _holds(value: Any, cond: Any) -> bool:
    if not isinstance(cond, Mapping):
        return value is not _MISSING and _same(value, cond)
    return all(_test(op, value, arg) for op, arg in cond.items())


def _test(op: str, value: Any, arg: Any) -> bool:
    if op == "$eq":
        return value is not _MISSING and _same(value, arg)
    if op == "$ne":
        return value is _MISSING or not _same(value, arg)
    if op == "$in":
        return value is not _MISSING and isinstance(arg, (list, tuple)) and _among(value, arg)
    if op == "$nin":
        return value is _MISSING or not isinstance(arg, (list, tuple)) or not _among(value, arg)
    if op == "$regex":
        text = _as_text(value)
        return text is not None and isinstance(arg, str) and regex_search(arg, text)
    if value is _MISSING or not _comparable(value, arg):
        return False
    if op == "$gt":
        return bool(value > arg)
    if op == "$gte":
        return bool(value >= arg)
    if op == "$lt":
        return bool(value < arg)
    if op == "$lte":
        return bool(value <= arg)
    return False


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values are (JavaScript's `===` for what conditions compare): `true` is
    not `1` (Python's `True == 1` is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _among(value: Any, options: Sequence[Any]) -> bool:
    return any(_same(value, option) for option in options)


def _as_text(value: Any) -> str | None:
    """What `$regex` tests: a string as it is, a number or boolean as JavaScript writes it
    (Portkey's `regex.test(value)`: `max_tokens` 100 is "100"); nothing else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return None


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float, Decimal)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (
        isinstance(a, str) and isinstance(b, str)
    )
