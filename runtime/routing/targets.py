"""Where a request's names point (`@provider/model`, a bare model with a provider header, a
config leaf's own target) and the checks on names a client or a Python caller sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.bundle.errors import InvalidConfig, InvalidRequestInput
from runtime.routing.bounds import Bounds, plain_json

MAX_NAME = 1_024  # a workspace, model, provider or config slug in a request


def takes_request_provider(leaf: Mapping[str, Any]) -> bool:
    """A target with no provider of its own, or with `passthrough: true`, routes to the
    provider the request names (`x-portkey-provider`, or `@provider/model`)."""
    if leaf.get("service") is not None:
        return False
    return leaf.get("provider") is None or (leaf.get("carried") or {}).get("passthrough") is True


def leaf_target(leaf: Mapping[str, Any], name: str, provider: str | None) -> tuple[str | None, str]:
    """(provider slug, model) of one leaf; the slug is None for a raw service."""
    own = leaf.get("provider")
    if not takes_request_provider(leaf):
        # the target's provider wins; a request's `@provider/model` still names the model
        return own, (name[1:].partition("/")[2] or name) if own and name[:1] == "@" else name
    if name.startswith("@") or provider is not None or own is None:
        return split_target(name, provider)
    return own, name  # passthrough, but the request names no provider: the target's


def split_target(model: str, provider: str | None) -> tuple[str, str]:
    """`@p/m` alone, or a bare model with `provider="@p"`: (provider slug, model)."""
    if model.startswith("@"):
        named, _, bare = model[1:].partition("/")
        if not bare:
            raise InvalidConfig([f"`{model}` is not a model string: write `@provider/model`"])
        if provider is not None and provider.removeprefix("@") != named:
            raise InvalidConfig(
                [f"the model names `@{named}` but the provider header `{provider}`"]
            )
        return named, bare
    if provider is None:
        raise InvalidConfig([f"`{model}` names no provider: write `@provider/{model}` or send "
                             "a provider"])  # fmt: skip
    return provider.removeprefix("@"), model


def bounded_object(value: Any, bounds: Bounds, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidRequestInput([f"{what}: expected an object"])
    try:
        copy: dict[str, Any] = plain_json(value, bounds, what)
    except InvalidConfig as exc:  # the client's values, not a config
        raise InvalidRequestInput(exc.problems) from None
    return copy


def check_names(workspace: Any, model: Any, provider: Any, config: Any, seed: Any) -> None:
    """The request's names are short strings (a Python caller may pass anything)."""
    named = {"workspace": workspace, "model": model, "provider": provider}
    if isinstance(config, str):
        named["config"] = config
    elif config is not None and not isinstance(config, Mapping):
        raise InvalidRequestInput(["config: a config slug or a config object"])
    for what, value in named.items():
        if value is None and what != "workspace":
            continue
        if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
            raise InvalidRequestInput([f"{what}: expected a name of 1-{MAX_NAME} characters"])
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequestInput(["seed: expected an integer"])
