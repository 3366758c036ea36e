"""The bundle being served and everything derived from it (keys, secrets, model lists),
swapped whole on reload so a request never sees half of two bundles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from runtime.bundle.load import Bundle
from runtime.gateway.auth import KeyIndex
from runtime.gateway.endpoints import Endpoints, resolve_endpoints
from runtime.gateway.secrets import MissingSecrets, Secrets, load_secrets
from runtime.routing.plan import Attempt

_NONE: Mapping[str, str] = MappingProxyType({})
MAX_UPSTREAMS = 4_096  # remembered targets (an inline custom_host is a client's string)


@dataclass(frozen=True, slots=True)
class Upstream:
    """What calling one target needs from the bundle served now, read once per target."""

    missing_secret: str | None  # the credential reference that could not be read
    unavailable: str | None  # the endpoint reference (base_url, header) that could not
    base_url: str | None  # None: nowhere to call
    secrets: Mapping[str, str]  # credentials, and header values from references (`hidden`)
    settings: Mapping[str, str]
    headers: Mapping[str, str]


@dataclass(eq=False)
class Live:
    bundle: Bundle
    keys: KeyIndex
    secrets: Secrets
    # workspace -> /v1/models: its body, and each model object's by id (/v1/models/{id})
    _models: dict[str, tuple[bytes, dict[str, bytes]]] = field(default_factory=dict)
    _upstreams: dict[tuple[str | None, str, str | None], Upstream] = field(default_factory=dict)
    endpoints: Endpoints | None = None  # what endpoint references could not be read
    _missing: Mapping[str, list[dict[str, Any]]] | None = None  # missing(), once made

    @classmethod
    def of(cls, bundle: Bundle, allow_missing_secrets: bool) -> Live:
        """Raises MissingSecrets when a credential or an endpoint reference (base_url,
        header) cannot be read, or reads as no usable URL, and that is not allowed. `bundle`
        is served with its endpoint references' values (gateway/endpoints.py)."""
        ends = resolve_endpoints(bundle)
        try:
            secrets = load_secrets(ends.bundle, allow_missing_secrets)
        except MissingSecrets as exc:  # one report names every reference
            raise MissingSecrets({**exc.missing, **ends.failures}) from None
        if ends.failures and not allow_missing_secrets:
            raise MissingSecrets(ends.failures)
        return cls(ends.bundle, KeyIndex(ends.bundle), secrets, endpoints=ends)

    def missing(self) -> Mapping[str, list[dict[str, Any]]]:
        """What `--allow-missing-secrets` let serve unread, by name only (never a value):
        per integration its first unread credential reference and the providers that answer
        503 for it; per target (a provider, or `provider/model`) its endpoint reference.
        Made once: /readyz, which a probe calls often, says it."""
        if self._missing is None:
            users: dict[str, list[str]] = {}
            for slug, provider in sorted(self.bundle.providers.items()):
                users.setdefault(provider.integration.slug, []).append(slug)
            ends = self.endpoints.missing if self.endpoints is not None else {}
            self._missing = MappingProxyType({
                "credentials_missing": [
                    {"integration": slug, "reference": ref, "providers": users.get(slug, [])}
                    for slug, ref in sorted(self.secrets.missing.items())
                ],
                "endpoints_missing": [{"target": target, "reference": ref}
                                      for target, ref in sorted(ends.items())],
            })  # fmt: skip
        return self._missing

    def upstream(self, attempt: Attempt) -> Upstream:
        """Everything below about `attempt`'s target, remembered (a plan's attempts are
        made again and again; the bundle and secrets of one Live never change)."""
        key = (attempt.provider, attempt.model, attempt.url)
        found = self._upstreams.get(key)
        if found is None:
            integ = self.integration_of(attempt)
            url = attempt.url
            if url is None and attempt.provider is not None:
                url = self.bundle.providers[attempt.provider].integration.base_url
            headers = self.headers(attempt)
            found = Upstream(
                self.secrets.missing.get(integ) if integ else None,
                self.unavailable(attempt), url or None,
                self.hidden(attempt, integ, headers), self.settings(attempt), headers,
            )  # fmt: skip
            if len(self._upstreams) >= MAX_UPSTREAMS:
                self._upstreams.clear()
            self._upstreams[key] = found
        return found

    def unavailable(self, attempt: Attempt) -> str | None:
        """The endpoint reference (base_url, header) that keeps `attempt` from being made."""
        if self.endpoints is None or attempt.provider is None:
            return None
        return self.endpoints.unavailable(attempt.provider, attempt.model)

    def hidden(self, attempt: Attempt, integ: str | None,
               headers: Mapping[str, str]) -> Mapping[str, str]:  # fmt: skip
        """The credentials, and the header values read from references (secrets too, under
        `header:NAME`, a name no credential has): what an upstream's answer is scrubbed of."""
        credentials = self.secrets.of(integ) if integ else _NONE
        if attempt.provider is None:
            return credentials
        provider = self.bundle.providers[attempt.provider]
        info = provider.models.get(attempt.model)
        named = {key.removeprefix("header:").lower()
                 for entry in (provider.integration, provider, info) if entry is not None
                 for key in entry.refs if key.startswith("header:")}  # fmt: skip
        if not named:
            return credentials
        read = {f"header:{name}": headers[name] for name in sorted(named) if name in headers}
        return {**credentials, **read}

    def headers(self, attempt: Attempt) -> Mapping[str, str]:
        """The catalog's custom headers for `attempt`: the integration's, then the
        provider's, then the model's, each over the one before (values may be secrets)."""
        if attempt.provider is None:
            return _NONE
        provider = self.bundle.providers[attempt.provider]
        info = provider.models.get(attempt.model)
        layers = (provider.integration.headers, provider.headers, info.headers if info else _NONE)
        if not any(layers):
            return _NONE
        return {k.lower(): v for layer in layers for k, v in layer.items()}

    def integration_of(self, attempt: Attempt) -> str | None:
        if attempt.provider is None:
            return None
        provider = self.bundle.providers.get(attempt.provider)
        return provider.integration.slug if provider is not None else None

    def settings(self, attempt: Attempt) -> Mapping[str, str]:
        if attempt.provider is None:
            return _NONE
        return self.bundle.providers[attempt.provider].integration.settings

    def models(self, workspace: str) -> list[tuple[str, str]]:
        """(`@provider/model`, mode) of the models the workspace may use, sorted."""
        bundle = self.bundle
        found = []
        for slug, provider in sorted(bundle.providers.items()):
            for model, info in sorted(provider.models.items()):
                if bundle.decide(workspace, slug, model).allowed:
                    found.append((f"@{slug}/{model}", info.mode))
        return found
