"""Portkey-compatible routing config object (SPEC §5).

Every field of Portkey's hosted config schema is accepted, so teams can paste the configs
they already have; unknown keys are errors. Fields the router does not act on (guardrails,
hooks, cache, circuit breaker, cloud fields) are validated here and carried unchanged.
Secrets (`api_key`, AWS keys, service-account JSON, `Authorization`) must be references.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from catalog_compiler.model.common import SecretRef, Strict
from catalog_compiler.model.errors import type_name, wrong_type
from catalog_compiler.model.freeform import check_free_object
from catalog_compiler.model.numbers import Exact, Whole
from catalog_compiler.model.types import Flag, Text, Url

# Bounds of the config's numbers (docs/diagnostics.md, E0206): generous for any real
# setting, small enough that every value is exact in a double and means something.
DAY_MS = 86_400_000
YEAR_S = 31_536_000
MAX_WEIGHT = Decimal(1_000_000)
MAX_BREAKER_COUNT = 1_000_000


def _free_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise wrong_type("a mapping", value)
    return check_free_object(value)


def _hook(value: Any) -> Any:
    """A guardrail/hook: an id string, or an object with an `id` (extra keys carried)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise wrong_type("a guardrail id or a mapping with `id`", value)
    if "id" in value and not isinstance(value["id"], str):
        raise PydanticCustomError(
            "E0204", "a hook `id` is a string, found {found}", {"found": type_name(value["id"])}
        )
    return check_free_object(value)


Attempts = Annotated[int, Whole(0, 5, "as in Portkey")]
# Status codes and timeouts are copied into the bundle as written: YAML integers only.
StatusCode = Annotated[
    int, Whole(100, 599, "HTTP status codes", what="an HTTP status code", plain=True)
]
Weight = Annotated[
    Decimal,
    Exact(
        Decimal(0),
        MAX_WEIGHT,
        20,
        "weights are relative",
        what="a weight (number)",
    ),
]
Milliseconds = Annotated[
    int, Whole(1, DAY_MS, "one day", what="a whole number of milliseconds", plain=True)
]
Seconds = Annotated[int, Whole(1, YEAR_S, "one year", what="a whole number of seconds")]
MaxAge = Annotated[int, Whole(0, YEAR_S, "one year", what="a whole number of seconds")]
BreakerCount = Annotated[int, Whole(0, MAX_BREAKER_COUNT, "a breaker counts less")]
Percentage = Annotated[int, Whole(0, 100, "a percentage")]
BreakerMs = Annotated[int, Whole(0, DAY_MS, "one day", what="a whole number of milliseconds")]
FreeObject = Annotated[
    dict[str, Any],
    PlainValidator(_free_object),
    WithJsonSchema({"type": "object", "description": "JSON-safe: finite numbers, bounded"}),
]
Hook = Annotated[
    Any,
    PlainValidator(_hook),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "string"},
                {"type": "object", "properties": {"id": {"type": "string"}}},
            ]
        }
    ),
]


class Sticky(Strict):
    """Sticky load balancing: the same hash of these fields picks the same target."""

    enabled: Flag = True
    hash_fields: tuple[Text, ...] = ()
    ttl: Seconds | None = Field(None, description="seconds a stickiness lasts")


class CircuitBreaker(Strict):
    """Carried into the bundle; not enforced by the router."""

    failure_threshold: BreakerCount | None = None
    failure_threshold_percentage: Percentage | None = None
    minimum_requests: BreakerCount | None = None
    cooldown_interval: BreakerMs | None = Field(None, description="milliseconds")
    failure_status_codes: tuple[StatusCode, ...] | None = None


class Condition(Strict):
    """First matching `query` wins; `then` names a target of this strategy."""

    query: FreeObject
    then: Text


class Strategy(Strict):
    mode: Literal["single", "loadbalance", "fallback", "conditional"]
    on_status_codes: tuple[StatusCode, ...] | None = Field(
        None, description="fallback moves on only for these; default: any non-2xx"
    )
    conditions: tuple[Condition, ...] | None = None
    default: Text | None = None
    sticky: Sticky | None = None
    cb_config: CircuitBreaker | None = None

    @model_validator(mode="after")
    def _conditional_needs_branches(self) -> Self:
        # no `default` is W0503 (a request may match nothing), not an error
        if self.mode == "conditional" and self.conditions is None:
            raise PydanticCustomError("E0203", "a conditional strategy needs `conditions`")
        return self


class Retry(Strict):
    attempts: Attempts = Field(description="0-5 extra attempts")
    on_status_codes: tuple[StatusCode, ...] | None = None
    use_retry_after_headers: Flag | None = None
    use_retry_after_header: Flag | None = None


class Cache(Strict):
    """Carried into the bundle; the router does not cache."""

    mode: Literal["simple", "semantic"]
    max_age: MaxAge | None = Field(None, description="seconds")


class Deployment(Strict):
    deployment_id: Text
    alias: Text
    api_version: Text
    is_default: Flag | None = None


class Target(Strict):
    """The config object itself and every nested target share this shape."""

    strategy: Strategy | None = None
    targets: tuple[Target, ...] | None = None
    name: Text | None = None
    provider: Text | None = Field(None, description='"@slug" of a catalog provider')
    virtual_key: Text | None = Field(None, description="legacy: same as provider `@slug`")
    api_key: SecretRef | None = None
    weight: Weight | None = Field(None, description="relative; default 1, 0 = never")
    on_status_codes: tuple[StatusCode, ...] | None = None
    override_params: FreeObject | None = None
    default_params: FreeObject | None = None
    drop_params: tuple[Text, ...] | None = None
    retry: Retry | None = None
    cache: Cache | None = None
    cb_config: CircuitBreaker | None = None
    request_timeout: Milliseconds | None = Field(None, description="milliseconds")
    custom_host: Url | None = None
    forward_headers: tuple[Text, ...] | None = None
    passthrough: Flag | None = None
    strict_open_ai_compliance: Flag | None = None
    input_guardrails: tuple[Hook, ...] | None = None
    output_guardrails: tuple[Hook, ...] | None = None
    before_request_hooks: tuple[Hook, ...] | None = None
    after_request_hooks: tuple[Hook, ...] | None = None
    metadata: FreeObject | None = None
    prompt_id: Text | None = None
    resource_name: Text | None = None
    deployment_id: Text | None = None
    api_version: Text | None = None
    deployments: tuple[Deployment, ...] | None = None
    azure_resource_name: Text | None = None
    azure_deployment_id: Text | None = None
    azure_api_version: Text | None = None
    azure_model_name: Text | None = None
    azure_region: Text | None = None
    azure_deployment_name: Text | None = None
    azure_deployment_type: Literal["serverless", "managed"] | None = None
    azure_endpoint_name: Text | None = None
    aws_access_key_id: SecretRef | None = None
    aws_secret_access_key: SecretRef | None = None
    aws_session_token: SecretRef | None = None
    aws_region: Text | None = None
    openai_organization: Text | None = None
    openai_project: Text | None = None
    vertex_project_id: Text | None = None
    vertex_region: Text | None = None
    vertex_service_account_json: SecretRef | None = None
    Authorization: SecretRef | None = None

    @model_validator(mode="after")
    def _strategy_needs_targets(self) -> Self:
        if self.strategy is not None and not self.targets:
            raise PydanticCustomError("E0203", "a `strategy` needs a non-empty `targets` list", {})
        if self.targets and self.strategy is None:
            raise PydanticCustomError("E0203", "`targets` need a `strategy` with a `mode`", {})
        return self


RoutingConfig = Target
