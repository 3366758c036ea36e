"""The six document kinds of the catalog language (SPEC §3.1)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, PlainValidator, WithJsonSchema, field_validator, model_validator
from pydantic_core import PydanticCustomError

from catalog_compiler.model.aliases import ALIASES_DESCRIPTION, Aliases
from catalog_compiler.model.common import (
    Limits,
    ModelAccess,
    ModelLimits,
    PriceOverride,
    Pricing,
    SecretRef,
    Strict,
)
from catalog_compiler.model.errors import wrong_type
from catalog_compiler.model.refs import HEADERS_DOC, Headers, UrlOrRef
from catalog_compiler.model.routing import FreeObject, RoutingConfig
from catalog_compiler.model.types import (
    Flag,
    IsoDate,
    ModelName,
    NonEmptyText,
    ProviderRef,
    Sha256Hex,
    Slug,
    Text,
    Url,
    WorkspaceSelector,
)
from runtime.bundle.hosts import HostError, parse_host_pattern

LANGUAGE_VERSIONS = (1,)
ModelMode = Literal["chat", "completion", "embedding", "image", "audio", "rerank", "responses"]


def _host_pattern(value: Any) -> str:
    if not isinstance(value, str):
        raise wrong_type("a host (`api.example.com`, `host:8443` or `*.example.com`)", value)
    try:
        return str(parse_host_pattern(value))
    except HostError as exc:
        raise PydanticCustomError(
            "E0508",
            "invalid `allowed_hosts` entry: {reason}",
            {"reason": str(exc), "hint": "write `api.example.com`, `host:8443` or `*.example.com`"},
        ) from None


HostPattern = Annotated[
    str,
    PlainValidator(_host_pattern),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(\*\.)?([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$",
            "description": "`host`, `host:port`, `*.suffix` or `*.suffix:port`, lower case",
        }
    ),
]
AllowedHosts = Field(
    None,
    description="hosts besides the base URL's to which a routing config's `custom_host` may send "
    "these credentials; absent = none (a provider's list narrows its integration's)",
)


class CustomModel(ModelLimits):
    """A model an integration exposes beyond its service's built-in registry."""

    name: ModelName
    base_model: ModelName | None = Field(
        None, description="a built-in model whose prices and limits this one starts from"
    )
    mode: ModelMode | None = Field(
        None,
        description="the API shape it answers (which gateway endpoints serve it); absent: "
        "the built-in model's (`base_model` or the same name), else `chat`",
    )
    description: Text | None = None
    pricing: Pricing | None = None
    base_url: UrlOrRef | None = None
    headers: Headers | None = Field(None, description=HEADERS_DOC)

    @model_validator(mode="after")
    def _output_fits(self) -> Self:
        if (
            self.context_window is not None
            and self.max_output_tokens is not None
            and self.max_output_tokens > self.context_window
        ):
            raise PydanticCustomError(
                "E0206",
                "`max_output_tokens` ({out}) exceeds `context_window` ({ctx})",
                {
                    "out": self.max_output_tokens,
                    "ctx": self.context_window,
                    "field": "max_output_tokens",
                },
            )
        return self


class IntegrationModels(ModelAccess):
    custom: tuple[CustomModel, ...] = ()


class ApiKey(Strict):
    name: NonEmptyText
    sha256: Sha256Hex = Field(description="hex sha256 of the key; never the key itself")
    description: Text | None = None
    disabled: Flag = False


class Alerts(Strict):
    """Where budget alerts go: a JSON POST signed with HMAC-SHA256 (docs/gateway.md)."""

    webhook: Url = Field(description="the URL that receives each alert once")
    secret: SecretRef = Field(description="the HMAC-SHA256 key that signs each alert's body")


class Organization(Limits):
    """The root of the catalog: exactly one, in catalog.yaml."""

    kind: Literal["Organization"]
    version: Any = Field(description="catalog language version", json_schema_extra={"enum": [1]})
    name: NonEmptyText
    description: Text | None = None
    currency: Literal["USD"] = "USD"
    epoch: IsoDate | None = Field(None, description="day 0 of `<N>d` budget periods (UTC)")
    models: ModelAccess | None = None
    workspace_defaults: Limits | None = Field(
        None, description="limits each workspace gets as its own pool unless it declares them"
    )
    admin_keys: tuple[ApiKey, ...] = Field(
        (), description="keys that see every workspace's usage (the gateway's /v1/catalog/usage)"
    )
    alerts: Alerts | None = Field(
        None, description="budget alerts (`alert_threshold` crossings, exhaustion): a webhook"
    )
    aliases: Aliases | None = Field(None, description=ALIASES_DESCRIPTION)

    @field_validator("version", mode="plain")
    @classmethod
    def _known_version(cls, value: Any) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            raise PydanticCustomError(
                "E0204",
                "the version is a number: write `version: {value}` without quotes",
                {"value": value.strip()},
            )
        if isinstance(value, bool) or value not in LANGUAGE_VERSIONS:
            raise PydanticCustomError(
                "E0208",
                "unsupported catalog language version `{value}`: this catalogc reads version 1",
                {"value": str(value)[:20]},
            )
        return int(value)


class Integration(Limits):
    """Credentials for one upstream service, stored once."""

    kind: Literal["Integration"]
    slug: Slug
    name: Text | None = None
    description: Text | None = None
    service: NonEmptyText
    credentials: dict[str, SecretRef] = Field(
        default_factory=dict, description="service-specific fields, each `{env:}` or `{file:}`"
    )
    settings: dict[str, Text] = Field(
        default_factory=dict, description="non-secret service settings (region, resource_name …)"
    )
    base_url: UrlOrRef | None = None
    headers: Headers | None = Field(None, description=HEADERS_DOC)
    allowed_hosts: tuple[HostPattern, ...] | None = AllowedHosts
    provider_defaults: Limits | None = Field(
        None, description="limits each provider gets as its own pool unless it declares them"
    )
    workspaces: WorkspaceSelector | None = Field(None, description='provisioning; absent = "*"')
    models: IntegrationModels | None = None
    pricing: tuple[PriceOverride, ...] = ()


class Provider(Limits):
    """A named AI provider (`@slug`) made from an integration."""

    kind: Literal["Provider"]
    slug: Slug
    integration: Slug
    name: Text | None = None
    description: Text | None = None
    workspaces: WorkspaceSelector | None = None
    models: ModelAccess | None = None
    base_url: UrlOrRef | None = None
    headers: Headers | None = Field(None, description=HEADERS_DOC)
    allowed_hosts: tuple[HostPattern, ...] | None = AllowedHosts
    default_params: FreeObject | None = Field(None, description="request params filled when absent")
    pricing: tuple[PriceOverride, ...] = ()


class Workspace(Limits):
    """A team: what it may use, and its own pools."""

    kind: Literal["Workspace"]
    slug: Slug
    name: Text | None = None
    description: Text | None = None
    providers: tuple[ProviderRef, ...] | None = Field(
        None, description="which provisioned providers it takes; absent = all"
    )
    models: ModelAccess | None = None
    pricing: tuple[PriceOverride, ...] = ()
    api_keys: tuple[ApiKey, ...] = ()
    default_config: Slug | None = Field(None, description="config used when a request names none")
    aliases: Aliases | None = Field(None, description=ALIASES_DESCRIPTION)

    @model_validator(mode="after")
    def _no_regions(self) -> Self:
        """A rule's tiers and variants reprice only what it prices itself (E0404); it spans
        providers of any region, so its price cannot depend on one (E0406)."""
        for i, rule in enumerate(self.pricing):
            for path, name in rule.unpriced(set(rule.fields())):
                raise PydanticCustomError(
                    "E0404",
                    "`{name}` is priced here but this rule's base table has no `{name}`",
                    {"name": name, "field": ("pricing", i, *path, name),
                     "hint": f"add `{name}` to the rule's prices, or remove it here"},
                )  # fmt: skip
            if rule.regions:
                raise PydanticCustomError(
                    "E0406",
                    "a workspace's pricing cannot vary by region: it applies to every provider",
                    {"field": ("pricing", i, "regions"),
                     "hint": "put regional prices on an integration's or a provider's "
                     "price override, or write this workspace's rate as its own price"},
                )  # fmt: skip
        return self


class Model(CustomModel):
    """A custom model, or an override of a built-in one, on an integration or a provider."""

    kind: Literal["Model"]
    integration: Slug | None = None
    provider: ProviderRef | None = None

    @model_validator(mode="after")
    def _one_home(self) -> Self:
        if self.integration is not None and self.provider is not None:
            raise PydanticCustomError(
                "E0205",
                "a Model lives on an integration or on a provider, not both",
                {"field": "provider", "hint": "keep `integration:` or `provider:`"},
            )
        if self.integration is None and self.provider is None:
            raise PydanticCustomError(
                "E0203", "a Model needs `integration:` or `provider:` (where it lives)", {}
            )
        return self


class Config(Strict):
    """A named routing config, usable by the listed workspaces."""

    kind: Literal["Config"]
    slug: Slug
    name: Text | None = None
    description: Text | None = None
    workspaces: WorkspaceSelector = Field(description='who may use it: slugs or "*"')
    config: RoutingConfig


KINDS: dict[str, type[Strict]] = {
    "Organization": Organization,
    "Integration": Integration,
    "Provider": Provider,
    "Workspace": Workspace,
    "Model": Model,
    "Config": Config,
}

AnyDocument = Organization | Integration | Provider | Workspace | Model | Config
