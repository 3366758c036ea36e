"""Model aliases: a workspace's short names for `@provider/model` or a named config.

The compiler resolves them (a Workspace's alias overrides the Organization's of the same
name) and the bundle records each workspace's effective map; see docs/aliases.md. An alias
is sugar for its target: a request naming it is resolved exactly as if it had named the
target, so it never grants what the target would not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from runtime.bundle.errors import InvalidRequestInput

if TYPE_CHECKING:
    from runtime.bundle.load import Bundle

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\Z")
SOURCES = ("organization", "workspace")


@dataclass(frozen=True, slots=True)
class Alias:
    name: str
    source: str  # "organization" | "workspace": where it was declared
    provider: str | None = None  # with `model`: the alias stands for `@provider/model`
    model: str | None = None
    config: str | None = None  # or for a named routing config

    @property
    def target(self) -> str:
        """`@provider/model`, or `{config: slug}` as the catalog writes it."""
        return f"{{config: {self.config}}}" if self.config else f"@{self.provider}/{self.model}"

    @property
    def described(self) -> str:
        """The target in a sentence: "config `support`" or "`@openai-prod/gpt-4o`"."""
        return f"config `{self.config}`" if self.config else f"`{self.target}`"

    def origin_element(self, workspace: str) -> str:
        """The provenance element where it was declared."""
        if self.source == "organization":
            return f"organization/aliases/{self.name}"
        return f"workspaces/{workspace}/aliases/{self.name}"


NO_ALIASES: Mapping[str, Alias] = MappingProxyType({})


def aliases_of(data: Mapping[str, Any] | None) -> Mapping[str, Alias]:
    """A workspace's `aliases` member of a checked bundle."""
    if not data:
        return NO_ALIASES
    return MappingProxyType(
        {
            name: Alias(name, d["from"], d.get("provider"), d.get("model"), d.get("config"))
            for name, d in data.items()
        }
    )


def expand(
    alias: Alias, provider: str | None, config: str | Mapping[str, Any] | None
) -> tuple[str | None, str | None]:
    """(model, config) a request naming `alias` stands for, given the provider and config
    the request also names. A request may name the alias's own provider; an `@p/m` alias
    inside a config is the model string `@p/m` given to that config; an alias for a
    config cannot be combined with another config or a provider (InvalidRequestInput, 400:
    the request's own names disagree)."""
    if alias.config is not None:
        if provider is not None:
            raise InvalidRequestInput([f"`{alias.name}` is an alias of {alias.described}: it "
                                       "takes no provider, but the request names "
                                       f"`{provider}`"])  # fmt: skip
        if config is not None:
            raise InvalidRequestInput([f"`{alias.name}` is an alias of {alias.described}: the "
                                       "request cannot name another config too"])  # fmt: skip
        return None, alias.config
    if provider is not None and provider.removeprefix("@") != alias.provider:
        # the request's own names disagree, as `@a/m` with provider `@b` (targets.split_target)
        raise InvalidRequestInput([f"`{alias.name}` is an alias of {alias.described}, but the "
                                   f"request names provider `{provider}`"])  # fmt: skip
    return f"@{alias.provider}/{alias.model}", None


def usable_aliases(bundle: Bundle, workspace: str) -> list[Alias]:
    """The workspace's aliases whose target it may use, by name (for `GET /v1/models`)."""
    ws = bundle.workspace(workspace)
    found = []
    for name in sorted(ws.aliases):
        alias = ws.aliases[name]
        if alias.config is not None:
            usable = bundle.configs[alias.config].offered_to(workspace)
        else:
            assert alias.provider is not None and alias.model is not None
            usable = bundle.decide(workspace, alias.provider, alias.model).allowed
        if usable:
            found.append(alias)
    return found
