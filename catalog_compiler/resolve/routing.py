"""Routing configs compiled to the runtime's normalized tree (SPEC §5).

The structure was checked by the typed models; the tree and its semantic checks come from
the runtime's own normalizer (runtime/routing/configs.py), so the router validating an inline config
and the compiler applying a catalog's config follow one set of rules. Here its problems get
their source positions, and each leaf's destination is checked against where its provider's
credentials may go (`allowed_hosts`, the same test the router applies to inline configs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from catalog_compiler.resolve.context import Context, Located, Path
from catalog_compiler.services import ALIASES, SERVICES
from runtime.bundle.hosts import (
    DEFAULT_PORTS,
    HostError,
    Origin,
    credential_header,
    host_allowed,
    parse_origin,
)
from runtime.routing.configs import normalize
from runtime.routing.targets import takes_request_provider


@dataclass
class Leaf:
    """A compiled leaf and where it was written, for per-workspace reachability checks."""

    config: str
    node: dict[str, Any]
    path: Path


@dataclass(frozen=True)
class Destination:
    """Where a provider's credentials may be sent."""

    base_url: str | None
    allowed_hosts: tuple[str, ...]  # effective: the integration's, narrowed by the provider's
    integration: str
    integration_hosts: tuple[str, ...]
    narrowed: bool  # the provider declares its own list
    base_ref: str | None = None  # a reference-valued base URL: its host is known at start


class ConfigCompiler:
    def __init__(self, ctx: Context, slug: str, located: Located) -> None:
        self.ctx = ctx
        self.slug = slug
        self.located = located
        self.leaves: list[Leaf] = []
        self._reported: set[tuple[Path, str]] = set()

    def compile(self, destinations: Mapping[str, Destination]) -> dict[str, Any]:
        raw = self.located.doc.data["config"]
        result = normalize(raw)
        for problem in result.problems:
            span = self.ctx.span(self.located, ("config", *problem.path), key=problem.at_key)
            self.ctx.sink.emit(problem.code, problem.message, span, help=problem.help)
        for node, path in result.leaves:
            where = ("config", *path)
            self.leaves.append(Leaf(self.slug, node, where))
            self.ctx.remember(f"configs/{self.slug}/tree{tree_key(path)}", self.located, where)
            self.check_governed(node, path)
            provider = node.get("provider")
            if isinstance(provider, str) and provider in destinations:
                self.check_host(node, path, provider, destinations[provider])
                self.check_headers(node, path, provider)
        return result.tree

    def check_host(self, node: dict[str, Any], path: Path, slug: str, dest: Destination) -> None:
        """E0507: `custom_host` (here or inherited) sends `@slug`'s credentials elsewhere."""
        host = node.get("custom_host")
        at = self.nearest(path, "custom_host")
        if host is None or at is None or not self.first((*at, "custom_host"), slug):
            return
        try:
            origin = parse_origin(host)
        except HostError as exc:
            self.host_error(
                at,
                f"`custom_host` of `@{slug}` is not a plain http(s) URL: {exc}",
                "write `https://host[:port]/path`, without user, query or fragment",
            )
            return
        if host_allowed(origin, dest.base_url, dest.allowed_hosts):
            return
        default = origin.port == DEFAULT_PORTS[origin.scheme]
        entry = origin.host if default else f"{origin.host}:{origin.port}"
        where = f"integration `{dest.integration}`"
        if dest.narrowed and host_allowed(origin, None, dest.integration_hosts):
            where = f"provider `@{slug}`"  # the integration allows it; the provider narrowed
        elif dest.narrowed:
            where += f" and provider `@{slug}`"
        fix = f"add `{entry}` to `allowed_hosts` of {where}, or remove `custom_host`"
        base = own_origin(dest.base_url)
        if base is not None and base.host == origin.host:
            fix = f"the provider's own base URL is `{base}`: use its scheme and port"
        elif dest.base_ref is not None:
            fix = (f"the provider's base URL is the reference `{dest.base_ref}`, read only at "
                   f"start: to send its credentials there, add `{entry}` to `allowed_hosts` "
                   f"of {where}")  # fmt: skip
        self.host_error(
            at,
            f"`custom_host` sends the credentials of `@{slug}` to `{origin.scheme}://{entry}`, "
            "which the catalog does not allow",
            fix,
        )

    def check_governed(self, node: dict[str, Any], path: Path) -> None:
        """E0516: a raw service (`provider: openai` and an `api_key`) is no catalog provider,
        so no access rule, price, budget or secret of the catalog would apply to it. E0507:
        `custom_host` on a target whose provider comes from the request (`passthrough`, or
        none of its own) would send whichever provider a client names there."""
        service = node.get("service")
        at = self.nearest(path, "provider")
        raw = service in SERVICES or service in ALIASES  # else not a service: E0205
        if raw and at is not None and self.first((*at, "provider"), "raw"):
            self.ctx.sink.emit(
                "E0516",
                f"`provider: {service}` is a raw service, which the catalog does not govern "
                "(no access rules, prices, budgets or credentials of the catalog apply)",
                self.ctx.span(self.located, ("config", *at, "provider")),
                help=f"define an Integration of service `{service}` and a Provider for it, "
                "and target `@provider` here",
            )
        at = self.nearest(path, "custom_host")
        from_request = service is None and takes_request_provider(node)
        if from_request and at is not None and self.first((*at, "custom_host"), "request"):
            passthrough = node.get("provider") is not None
            why = "is `passthrough`" if passthrough else "names no provider"
            fix = "remove `passthrough`" if passthrough else "name the provider (`@slug`)"
            self.host_error(
                at,
                f"`custom_host` on a target that {why} sends the credentials of "
                "whichever provider a request names to this host",
                f"{fix}: then the target's own provider's base URL or `allowed_hosts` must "
                "include this host",
            )

    def host_error(self, at: Path, message: str, help: str) -> None:
        span = self.ctx.span(self.located, ("config", *at, "custom_host"))
        self.ctx.sink.emit("E0507", message, span, help=help)

    def check_headers(self, node: dict[str, Any], path: Path, slug: str) -> None:
        """W0501: forwarding a client's credential header to a catalog provider."""
        names = (node.get("carried") or {}).get("forward_headers") or ()
        at = self.nearest(path, "forward_headers")
        if at is None or not self.first((*at, "forward_headers"), slug):
            return
        for i, name in enumerate(names):
            if isinstance(name, str) and credential_header(name):
                self.ctx.sink.emit(
                    "W0501",
                    f"`forward_headers` names the client's `{name}` header for `@{slug}`: "
                    "a credential (perhaps the gateway key); the gateway never forwards it",
                    self.ctx.span(self.located, ("config", *at, "forward_headers", i)),
                    help=f"remove `{name}`: the catalog's credentials authenticate `@{slug}`",
                )

    def nearest(self, path: Path, key: str) -> Path | None:
        """The node at or above `path` (a leaf) that writes `key`, as a path."""
        raw = self.located.doc.data["config"]
        nodes: list[tuple[Path, Any]] = [((), raw)]
        for depth in range(0, len(path), 2):
            parent = nodes[-1][1]
            step, index = path[depth], path[depth + 1]
            children = parent.get(step) if isinstance(parent, Mapping) else None
            if not isinstance(children, list) or not isinstance(index, int):
                break
            nodes.append((path[: depth + 2], children[index]))
        for found, node in reversed(nodes):
            if isinstance(node, Mapping) and node.get(key) is not None:
                return tuple(found)
        return None

    def first(self, at: Path, slug: str) -> bool:
        """True once per (place, provider): a parent's field reaches many leaves."""
        key = (at, slug)
        if key in self._reported:
            return False
        self._reported.add(key)
        return True


def own_origin(base_url: str | None) -> Origin | None:
    try:
        return parse_origin(base_url) if base_url else None
    except HostError:
        return None


def tree_key(path: Path) -> str:
    """`("targets", 1, "targets", 0)` -> "/1/0": a leaf's place in the tree."""
    return "".join(f"/{step}" for step in path if isinstance(step, int))
