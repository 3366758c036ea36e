"""The semantic difference between two bundles, for a pull request: who gains and loses
which models, which limits and prices change, which configs change, and what breaks
clients outside the catalog (a provider or config slug removed or renamed, a model removed
that a config used).

Some changes are *notable* for a reviewer although they break no client: a price that moves
by 2x or more (or to or from free: a billing-scale mistake looks like this), and the host an
integration's or provider's credentials go to (`base_url`, and the `allowed_hosts` a routing
config may send them to).

Provenance is ignored: reordering documents or keys is no change at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from catalog_compiler.diagnostics.redact import mask
from catalog_compiler.tools.diff_aliases import alias_changes
from catalog_compiler.tools.price_words import variants_json
from runtime.bundle.load import Bundle, Counter, Prices, budget_words, counter_label, rate_words


@dataclass
class Change:
    kind: str  # provider | config | workspace | access | limit | price | model | endpoint | alias
    subject: str
    old: str | None
    new: str | None
    breaking: bool = False
    note: str = ""
    notable: bool = False  # worth a reviewer's eye: a price moved 2x+, credentials' host

    def json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "old": self.old, "new": self.new,
                "breaking": self.breaking, "notable": self.notable,
                "note": self.note}  # fmt: skip


@dataclass
class Diff:
    old_digest: str
    new_digest: str
    changes: list[Change] = field(default_factory=list)
    gained: dict[str, list[str]] = field(default_factory=dict)  # workspace -> @p/m
    lost: dict[str, list[str]] = field(default_factory=dict)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def notable(self) -> list[Change]:
        return [c for c in self.changes if c.notable and not c.breaking]

    @property
    def empty(self) -> bool:
        return not (self.changes or self.gained or self.lost)

    def json(self) -> dict[str, Any]:
        return {
            "format_version": "1.1",
            "old": self.old_digest,
            "new": self.new_digest,
            "changed": not self.empty,
            "breaking": [c.json() for c in self.breaking],
            "notable": [c.json() for c in self.notable],
            "changes": [c.json() for c in self.changes],
            "access": {"gained": self.gained, "lost": self.lost},
        }


def _body(bundle: Bundle, raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in ("provenance", "digest")}


def semantic_diff(
    old: Bundle, new: Bundle, old_raw: Mapping[str, Any], new_raw: Mapping[str, Any]
) -> Diff:
    diff = Diff(old.digest, new.digest)
    if _body(old, old_raw) == _body(new, new_raw):
        return diff
    _slugs(diff, "provider", old_raw["providers"], new_raw["providers"], _provider_twin)
    _slugs(diff, "config", old_raw["configs"], new_raw["configs"], _config_twin)
    _workspaces(diff, old, new)
    _access(diff, old, new)
    _limits(diff, old, new)
    _prices(diff, old, new)
    integrations = (old_raw["integrations"], new_raw["integrations"])
    _endpoints(diff, "integration", *integrations)
    _endpoints(diff, "provider", old_raw["providers"], new_raw["providers"], integrations)
    _configs(diff, old_raw["configs"], new_raw["configs"])
    _models_used(diff, old, new)
    _api_keys(diff, old_raw["workspaces"], new_raw["workspaces"])
    alias_changes(old, new, lambda *a, **kw: diff.changes.append(Change(*a, **kw)))
    if diff.empty:  # the bodies differ: never "no semantic change"
        _other(diff, _body(old, old_raw), _body(new, new_raw))
    diff.changes.sort(key=lambda c: (not c.breaking, not c.notable, c.kind, c.subject))
    return diff


def _api_keys(diff: Diff, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Gateway keys of each workspace (by name; only the hash is in the bundle): a key
    added or re-enabled is notable, it can spend the workspace's budget from now on."""
    for ws in sorted(set(old) & set(new)):
        a = {k["name"]: k for k in old[ws].get("api_keys") or () if isinstance(k, Mapping)}
        b = {k["name"]: k for k in new[ws].get("api_keys") or () if isinstance(k, Mapping)}
        for name in sorted(set(a) | set(b)):
            before, after = _key_state(a.get(name)), _key_state(b.get(name))
            if before != after:
                usable = after is not None and after.startswith("active")
                diff.changes.append(Change(
                    "workspace", f"`{ws}` api key `{name}`", before, after,
                    note="this key can now call the gateway as the workspace" * usable,
                    notable=usable,
                ))  # fmt: skip


def _key_state(key: Mapping[str, Any] | None) -> str | None:
    if key is None:
        return None
    state = "disabled" if key.get("disabled") else "active"
    return f"{state} (sha256 {str(key.get('sha256'))[:12]}…)" if state == "active" else state


MAX_OTHER = 20


def _other(diff: Diff, old: Any, new: Any) -> None:
    """What no rule above describes, by path: the bundles differ, so something changed."""
    paths: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if a == b:
            return
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        else:
            paths.append(path)

    walk(old, new, "")
    note = "changed (no rule above describes it: compare the bundles)"
    for path in paths[:MAX_OTHER]:
        diff.changes.append(Change("other", mask(path), None, None, note=note))
    if len(paths) > MAX_OTHER:
        diff.changes.append(Change("other", f"and {len(paths) - MAX_OTHER} more", None, None,
                                   note=note))  # fmt: skip


def _provider_twin(data: Mapping[str, Any]) -> Any:
    return (data["integration"], sorted(data["models"]))


def _config_twin(data: Mapping[str, Any]) -> Any:
    return data["tree"]


def _slugs(
    diff: Diff, kind: str, old: Mapping[str, Any], new: Mapping[str, Any], twin: Any
) -> None:
    """Removed and added slugs; a removal with an identical addition is a rename."""
    removed = sorted(set(old) - set(new))
    added = sorted(set(new) - set(old))
    for slug in removed:
        shown = f"@{slug}" if kind == "provider" else slug
        renamed = next((a for a in added if twin(new[a]) == twin(old[slug])), None)
        if renamed is not None:
            added.remove(renamed)
            target = f"@{renamed}" if kind == "provider" else renamed
            note = f"renamed to `{target}`: {kind} slugs are public and immutable"
            diff.changes.append(Change(kind, shown, shown, target, True, note))
        else:
            diff.changes.append(Change(kind, shown, shown, None, True,
                                       f"removed: clients naming `{shown}` will fail"))  # fmt: skip
    for slug in added:
        shown = f"@{slug}" if kind == "provider" else slug
        diff.changes.append(Change(kind, shown, None, shown, False, "added"))


def _workspaces(diff: Diff, old: Bundle, new: Bundle) -> None:
    for slug in sorted(set(old.workspaces) - set(new.workspaces)):
        diff.changes.append(Change("workspace", slug, slug, None, False, "removed"))
    for slug in sorted(set(new.workspaces) - set(old.workspaces)):
        diff.changes.append(Change("workspace", slug, None, slug, False, "added"))


def _routes(bundle: Bundle, workspace: str) -> set[str]:
    if workspace not in bundle.workspaces:
        return set()
    return {f"@{p}/{m}" for p, m in bundle.routes(workspace)}


def _access(diff: Diff, old: Bundle, new: Bundle) -> None:
    for ws in sorted(set(old.workspaces) | set(new.workspaces)):
        before, after = _routes(old, ws), _routes(new, ws)
        if after - before:
            diff.gained[ws] = sorted(after - before)
        if before - after:
            diff.lost[ws] = sorted(before - after)


def _limit_lines(counter: Counter | None) -> dict[str, str]:
    if counter is None:
        return {}
    lines = {f"budget {b.key}": budget_words(b) for b in counter.budgets}
    lines.update({f"rate {r.key}": rate_words(r) for r in counter.rate_limits})
    if counter.concurrency is not None:
        lines["concurrency"] = f"{counter.concurrency} in flight"
    return lines


def _limits(diff: Diff, old: Bundle, new: Bundle) -> None:
    for cid in sorted(set(old.counters) | set(new.counters)):
        before, after = _limit_lines(old.counters.get(cid)), _limit_lines(new.counters.get(cid))
        if not before and not after:
            continue
        if cid not in old.counters or cid not in new.counters:
            continue  # the level itself came or went: reported above
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                subject = f"{counter_label(cid)} {key}"
                diff.changes.append(Change("limit", subject, before.get(key), after.get(key)))


def _price_change(a: Mapping[str, str], b: Mapping[str, str]) -> tuple[str, str]:
    """Only the fields that changed: "input 2.7" -> "input 2.6"."""
    fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return (", ".join(f"{k} {a.get(k, 'none')}" for k in fields),
            ", ".join(f"{k} {b.get(k, 'none')}" for k in fields))  # fmt: skip


NOTABLE_FACTOR = 2


def _price_jumps(a: Mapping[str, str], b: Mapping[str, str]) -> str:
    """The fields that moved by 2x or more, or to or from free: "input 1,000x lower"."""
    jumps = []
    for name in sorted(set(a) & set(b)):
        before, after = _decimal(a[name]), _decimal(b[name])
        if before is None or after is None or before == after:
            continue
        if before == 0 or after == 0:
            jumps.append(f"{name} {'now free' if after == 0 else 'no longer free'}")
            continue
        ratio = max(before, after) / min(before, after)
        if ratio >= NOTABLE_FACTOR:
            jumps.append(f"{name} {_times(ratio)} {'higher' if after > before else 'lower'}")
    return ", ".join(jumps)


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError):
        return None
    return value if value.is_finite() else None


def _times(ratio: Decimal) -> str:
    return f"{ratio.to_integral_value():,f}x" if ratio >= 10 else f"{ratio:.2g}x"


def _price(diff: Diff, subject: str, a: Mapping[str, str], b: Mapping[str, str]) -> None:
    before, after = _price_change(a, b)
    jumps = _price_jumps(a, b)
    note = f"{jumps}: check the unit (USD per 1M tokens)" if jumps else ""
    diff.changes.append(Change("price", subject, before, after, note=note, notable=bool(jumps)))


Override = tuple[bool, dict[str, str]]


def _price_text(prices: Prices) -> dict[str, str]:
    """Each field's text; a variant (tiers, batch, service tiers) as compact JSON."""
    variants = {k: json.dumps(v, sort_keys=True, separators=(",", ":"))
                for k, v in variants_json(prices).items()}  # fmt: skip
    return {**prices.as_json(), **variants}


def _prices(diff: Diff, old: Bundle, new: Bundle) -> None:
    for slug in sorted(set(old.providers) & set(new.providers)):
        po, pn = old.providers[slug], new.providers[slug]
        for model in sorted(set(po.models) & set(pn.models)):
            a, b = _price_text(po.models[model].prices), _price_text(pn.models[model].prices)
            if a != b:
                _price(diff, f"@{slug}/{model}", a, b)
    for ws in sorted(set(old.workspaces) & set(new.workspaces)):
        olds: dict[str, Override] = {
            r.pattern.text: (r.free, _price_text(r.prices)) for r in old.workspaces[ws].pricing
        }
        news: dict[str, Override] = {
            r.pattern.text: (r.free, _price_text(r.prices)) for r in new.workspaces[ws].pricing
        }
        for pattern in sorted(set(olds) | set(news)):
            if olds.get(pattern) != news.get(pattern):
                subject = f"workspace `{ws}` override `{pattern}`"
                before, after = olds.get(pattern), news.get(pattern)
                jumps = ""
                if before is not None and after is not None:
                    jumps = _price_jumps(_as_prices(before), _as_prices(after))
                note = f"{jumps}: check the unit (USD per 1M tokens)" if jumps else ""
                change = Change("price", subject, _override(before), _override(after),
                                note=note, notable=bool(jumps))  # fmt: skip
                diff.changes.append(change)


def _as_prices(value: Override) -> dict[str, str]:
    """An override's prices, `free` as zeros (so going free is a notable change)."""
    free, prices = value
    return dict.fromkeys(("input", "output", "cache_read", "cache_write"), "0") if free else prices


def _url_text(url: Any) -> str | None:
    """A base URL (credentials in it masked: a bundle is sealed, not trusted), or its
    reference as `env:NAME`/`file:PATH` (never resolved)."""
    return str(url.get("ref")) if isinstance(url, Mapping) else mask(url) if url else url


def _host(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        return parts.hostname and (
            f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
        )
    except ValueError:
        return url


def _endpoints(
    diff: Diff,
    level: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    parents: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> None:
    """Where each integration's or provider's credentials go: `base_url` (a new host is
    notable; a provider's that only follows its integration's is reported there) and
    `allowed_hosts` (hosts added are notable: they widen where an inline config may send the
    catalog's credentials; absent in old bundles = none)."""
    for slug in sorted(set(old) & set(new)):
        shown = f"@{slug}" if level == "provider" else f"`{slug}`"
        a, b = _url_text(old[slug].get("base_url")), _url_text(new[slug].get("base_url"))
        if a != b and not _inherited(old[slug], new[slug], parents):
            moved = _host(a) != _host(b) or not _host(b)  # a reference's host is known at start
            note = f"credentials now go to `{_host(b) or b or 'no host'}`" if moved else "same host"
            diff.changes.append(Change("endpoint", f"{level} {shown} base_url", a or None,
                                       b or None, note=note, notable=moved))  # fmt: skip
        hosts_a = set(old[slug].get("allowed_hosts") or ())
        hosts_b = set(new[slug].get("allowed_hosts") or ())
        if hosts_a != hosts_b:
            added, removed = sorted(hosts_b - hosts_a), sorted(hosts_a - hosts_b)
            parts = [f"added {', '.join(added)}: configs may send its credentials there"] * bool(
                added
            ) + [f"removed {', '.join(removed)}"] * bool(removed)
            diff.changes.append(Change(
                "endpoint", f"{level} {shown} allowed_hosts", ", ".join(sorted(hosts_a)) or None,
                ", ".join(sorted(hosts_b)) or None, note="; ".join(parts), notable=bool(added),
            ))  # fmt: skip


def _inherited(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    parents: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
) -> bool:
    """Did a provider's base_url only follow its integration's (reported there)?"""
    if parents is None:
        return False
    pa = parents[0].get(str(a.get("integration")))
    pb = parents[1].get(str(b.get("integration")))
    if not isinstance(pa, Mapping) or not isinstance(pb, Mapping):
        return False
    return a.get("base_url") == pa.get("base_url") and b.get("base_url") == pb.get("base_url")


def _override(value: Override | None) -> str | None:
    if value is None:
        return None
    free, prices = value
    return "free" if free else (", ".join(f"{k} {v}" for k, v in sorted(prices.items())))


def _configs(diff: Diff, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    for slug in sorted(set(old) & set(new)):
        if old[slug] != new[slug]:
            a, b = _targets(old[slug]["tree"]), _targets(new[slug]["tree"])
            note = "targets unchanged" if a == b else f"targets {', '.join(a)} -> {', '.join(b)}"
            if old[slug]["workspaces"] != new[slug]["workspaces"]:
                note += f"; workspaces {old[slug]['workspaces']} -> {new[slug]['workspaces']}"
            diff.changes.append(Change("config", slug, "changed", "changed", False, note))


def _targets(node: Mapping[str, Any]) -> list[str]:
    if node["mode"] == "target":
        provider, model = node.get("provider") or node.get("service"), node.get("model") or "*"
        return [f"@{provider}/{model}"]
    return [t for child in node.get("targets", ()) for t in _targets(child)]


def _leaves(bundle: Bundle) -> Iterable[tuple[str, str, str]]:
    for slug, cfg in bundle.configs.items():
        for target in _targets(cfg.tree):
            provider, _, model = target[1:].partition("/")
            if model != "*":
                yield slug, provider, model


def _models_used(diff: Diff, old: Bundle, new: Bundle) -> None:
    """A model a config used that its provider no longer offers: that traffic breaks."""
    seen = set()
    for slug, provider, model in _leaves(old):
        p = new.providers.get(provider)
        if p is None or model in p.exposed or (provider, model) in seen:
            continue
        seen.add((provider, model))
        note = f"removed, but config `{slug}` routed to it"
        diff.changes.append(Change("model", f"@{provider}/{model}", "offered", None, True, note))
