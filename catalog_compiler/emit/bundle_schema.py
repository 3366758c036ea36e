"""The bundle's shape as typed models: the source of schema/bundle.schema.json, so a router
in another language can consume bundles. Tests validate every bundle we emit against it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DecimalString = Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Access(_Closed):
    """A level's model rules: `allow` null inherits the parent's set; `deny` always wins."""

    allow: list[str] | None = Field(description="glob patterns; only `*` is special")
    deny: list[str]


class BudgetOut(_Closed):
    unit: Literal["usd", "tokens", "requests"]
    period: str = Field(pattern=r"^(daily|weekly|monthly|none|[1-9][0-9]{0,3}d)$")
    limit: str | int = Field(description="usd: exact decimal string; tokens/requests: integer")
    alert_threshold: str | None = None


class RateLimitOut(_Closed):
    unit: Literal["requests", "tokens"]
    per: Literal["second", "minute", "hour", "day"]
    limit: int = Field(ge=0)
    burst: int = Field(ge=0, description="bucket capacity; equals `limit` unless set")


class CounterOut(_Closed):
    """One pool, charged by every request beneath its level."""

    budgets: list[BudgetOut]
    rate_limits: list[RateLimitOut]
    concurrency: int | None = None


class ApiKeyOut(_Closed):
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    disabled: bool


class AlertsOut(_Closed):
    webhook: str
    secret: str = Field(description='a secret reference: "env:NAME" or "file:PATH"')


class OrganizationOut(_Closed):
    name: str
    currency: Literal["USD"]
    epoch: str | None
    access: Access
    admin_keys: list[ApiKeyOut] = Field(
        default_factory=list, description="present only when the catalog declares some"
    )
    alerts: AlertsOut | None = Field(None, description="present only when declared")


class RefOut(_Closed):
    """A value the gateway reads at start (never written here): base URLs and headers."""

    ref: str = Field(pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$",
                     description='"env:NAME" or "file:PATH"')  # fmt: skip


HeadersOut: Any = Field(
    default_factory=dict,
    description="extra upstream headers: text, or a reference; present only when declared",
)


class IntegrationOut(_Closed):
    service: str
    api: str = Field(description="wire format: openai | anthropic | google | bedrock | cohere")
    auth: str
    base_url: str | RefOut | None
    headers: dict[str, str | RefOut] = HeadersOut
    credentials: dict[str, str] = Field(description='references only: "env:NAME" or "file:PATH"')
    settings: dict[str, str]
    workspaces: list[str] = Field(description='provisioned workspaces, or ["*"]')
    access: Access
    exposed: list[str] = Field(description="every model name the integration offers")


class PriceTableOut(_Closed):
    """USD per 1M tokens (per_request: USD), exact decimal strings."""

    input: str | None = None
    output: str | None = None
    cache_read: str | None = None
    cache_write: str | None = Field(None, description="cache write, 5-minute TTL")
    cache_write_1h: str | None = Field(None, description="cache write, 1-hour TTL")
    per_request: str | None = None


class PriceTierOut(PriceTableOut):
    """Prices of a whole request whose prompt tokens are strictly above the threshold;
    absent fields: the table's own."""

    above_input_tokens: int


class PriceVariantOut(PriceTableOut):
    """A partial table (batch, a service tier): absent fields fall back to the base's."""

    tiers: list[PriceTierOut] | None = Field(None, description="its own, replacing the base's")


class PricesOut(PriceTableOut):
    """A resolved price: the base table and its variants (runtime/bundle/price_tables.py)."""

    tiers: list[PriceTierOut] | None = Field(
        None, description="long-context tiers, strictly increasing thresholds"
    )
    batch: PriceVariantOut | None = None
    service_tiers: dict[Literal["flex", "priority"], PriceVariantOut] | None = None


class ModelOut(_Closed):
    mode: str
    context_window: int | None = None
    max_output_tokens: int | None = None
    prices: PricesOut
    price_sources: dict[str, Literal["registry", "model", "integration", "provider"]] = Field(
        description="price field (or variant: tiers, batch, service_tiers) -> its level"
    )
    base_url: str | RefOut | None = Field(
        None, description="a custom model's own endpoint; present only when declared"
    )
    headers: dict[str, str | RefOut] = HeadersOut


class ProviderOut(_Closed):
    integration: str
    base_url: str | RefOut | None
    headers: dict[str, str | RefOut] = HeadersOut
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="hosts besides `base_url`'s to which a routing config's `custom_host` may "
        "send this provider's credentials: `host`, `host:port`, `*.suffix[:port]`; sorted",
    )
    default_params: dict[str, Any]
    workspaces: list[str] | None = Field(description="null: as the integration provisions")
    access: Access
    custom: list[str] = Field(description="models declared on this provider only")
    chain: list[str] = Field(description="counter ids charged for its traffic, organization first")
    models: dict[str, ModelOut] = Field(description="models allowed down to this provider")


class PriceRuleOut(_Closed):
    model: str
    prices: PricesOut | None = None
    free: bool | None = None


class AliasOut(_Closed):
    """A model alias: `provider` + `model` (it stands for `@provider/model`) or `config`."""

    from_: Literal["organization", "workspace"] = Field(
        alias="from", description="where it was declared (a workspace's overrides the org's)"
    )
    provider: str | None = None
    model: str | None = None
    config: str | None = None


class WorkspaceOut(_Closed):
    providers: list[str] | None = Field(description="null: every provisioned provider")
    access: Access
    pricing: list[PriceRuleOut] = Field(description="overrides; the most specific pattern wins")
    counter: str
    default_config: str | None
    api_keys: list[ApiKeyOut]
    aliases: dict[str, AliasOut] = Field(
        default_factory=dict,
        description="effective model aliases (the organization's, overridden by the "
        "workspace's), by name; present only when there are some",
    )


class ConfigOut(_Closed):
    workspaces: list[str] | None
    tree: dict[str, Any] = Field(
        description="normalized routing tree: branches have `mode`, `strategy` and `targets`; "
        "leaves have mode `target`, `provider`, `model`, `params` {override, default, drop}, "
        "`retry`, `cache`, `request_timeout`, `custom_host` and `carried` fields"
    )


class FileOut(_Closed):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ProvenanceOut(_Closed):
    """Everything that depends on where text sits in the sources; ignored by `diff`."""

    compiler: str
    registry_as_of: str
    files: list[FileOut]
    origins: dict[str, str] = Field(description="element -> `path:line:column`")


class BundleOut(_Closed):
    """catalog-bundle/2: canonical JSON per RFC 8785 (JCS); digest = "sha256:" +
    hex(sha256(JCS(bundle without `digest`))). Verification recipe: docs/bundle.md."""

    format: Literal["catalog-bundle/2"]
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    organization: OrganizationOut
    counters: dict[str, CounterOut]
    integrations: dict[str, IntegrationOut]
    providers: dict[str, ProviderOut]
    workspaces: dict[str, WorkspaceOut]
    configs: dict[str, ConfigOut]
    provenance: ProvenanceOut
