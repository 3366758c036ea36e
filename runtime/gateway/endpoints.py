"""Reference-valued endpoints: an integration's, a provider's or a custom model's
`base_url` and header values may be `{"ref": "env:NAME"}` in the bundle (docs/bundle.md).
The gateway reads them at start and at each reload, exactly as credentials
(secrets.read_reference), and serves a copy of the bundle with the values filled in, so
the router, the host rules of `custom_host` (runtime/bundle/hosts.py) and the adapters see the
resolved URL. A base URL read from a reference must be a plain http(s) URL (no userinfo,
query or fragment); errors name the reference, never a value. Header values from
references are secrets: they go into upstream requests only, never into a log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from runtime.bundle.hosts import HostError, parse_origin
from runtime.bundle.load import Bundle
from runtime.gateway.secrets import read_reference

Reader = Callable[[str], str]


@dataclass(frozen=True)
class Endpoints:
    """The bundle to serve and what could not be read."""

    bundle: Bundle
    missing: Mapping[str, str]  # "provider" or "provider/model" -> the first unread reference
    failures: Mapping[str, str]  # reference -> why (never a value)

    def unavailable(self, provider: str, model: str) -> str | None:
        """The reference that keeps `@provider/model` from being called, if any."""
        return self.missing.get(provider) or self.missing.get(f"{provider}/{model}")


def resolve_endpoints(bundle: Bundle, read: Reader = read_reference) -> Endpoints:
    """`bundle` with every endpoint reference read (the same bundle when it has none)."""
    if not _has_refs(bundle):
        return Endpoints(bundle, MappingProxyType({}), MappingProxyType({}))
    reader = _Reader(read)
    integrations = {slug: reader.fill(i) for slug, i in bundle.integrations.items()}
    providers = {}
    for slug, p in bundle.providers.items():
        integ = integrations[p.integration.slug]
        failed = reader.failed(p.integration.refs) or reader.failed(p.refs)
        if failed:
            reader.missing[slug] = failed
        models = {}
        for name, info in p.models.items():
            models[name] = reader.fill(info)
            if reader.failed(info.refs):
                reader.missing[f"{slug}/{name}"] = reader.failed(info.refs) or ""
        filled = reader.fill(p)
        providers[slug] = replace(filled, integration=integ, models=MappingProxyType(models))
    served = replace(bundle, integrations=MappingProxyType(integrations),
                     providers=MappingProxyType(providers), _decisions={})  # fmt: skip
    return Endpoints(served, MappingProxyType(reader.missing),
                     MappingProxyType(reader.failures))  # fmt: skip


def _has_refs(bundle: Bundle) -> bool:
    return any(i.refs for i in bundle.integrations.values()) or any(
        p.refs or any(m.refs for m in p.models.values()) for p in bundle.providers.values()
    )


class _Reader:
    """Reads each reference once per resolution (one file read for many providers)."""

    def __init__(self, read: Reader) -> None:
        self.read = read
        self.values: dict[str, str] = {}
        self.failures: dict[str, str] = {}
        self.missing: dict[str, str] = {}

    def value(self, ref: str, url: bool) -> str | None:
        """The reference's value (checked as a base URL when `url`), None if unreadable."""
        if ref in self.failures:
            return None
        key = f"{'url' if url else 'text'}|{ref}"  # one reference may serve both roles
        if key not in self.values:
            try:
                self.values[key] = _checked_url(self.read(ref)) if url else self.read(ref)
            except LookupError as exc:
                self.failures[ref] = str(exc)
                return None
        return self.values[key]

    def failed(self, refs: Mapping[str, str]) -> str | None:
        return next((ref for ref in refs.values() if ref in self.failures), None)

    def fill(self, entry: Any) -> Any:
        """`entry` (Integration, Provider, ModelInfo) with its references' values."""
        if not entry.refs:
            return entry
        changes: dict[str, Any] = {}
        headers = dict(entry.headers)
        for key, ref in sorted(entry.refs.items()):
            value = self.value(ref, url=key == "base_url")
            if value is None:
                continue
            if key == "base_url":
                changes["base_url"] = value
            else:
                headers[key.removeprefix("header:")] = value
        return replace(entry, headers=MappingProxyType(headers), **changes)


def _checked_url(text: str) -> str:
    """A base URL as the compiler requires one: http(s), a host, no userinfo."""
    try:
        parse_origin(text)
    except HostError as exc:  # its messages never repeat the URL's path or userinfo
        raise LookupError(f"not a usable base URL: {exc}") from None
    return text.rstrip("/")
