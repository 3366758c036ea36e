"""Inline routing configs, metadata and params as a hostile client sends them.

The promises (SPEC §6, docs/inline-configs.md): every refusal is a RequestError (never
IndexError, RecursionError, TypeError, KeyError, decimal.InvalidOperation, a hang); an
inline config never pairs a catalog provider's credentials with a host the catalog does not
allow, never names a secret reference or a raw service, never forwards a credential header;
`$regex` runs in linear time.

Probe classes (the lead reports `len()` of each; `test_probe_counts` prints them):
REDIRECTS, FORWARDED_HEADERS, SECRET_REFS, RAW_SERVICES, DESTINATION_FIELDS, REDOS,
BOMBS, DROP_PATHS, REQUEST_DATA, plus the hypothesis fuzz (FUZZ_EXAMPLES per property).
Probes that could hang run in a fresh process with a generous timeout (`isolated`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog_compiler.compiler import compile_catalog
from runtime import AccessDenied, InvalidConfig, RequestError, Router
from runtime.bundle.canonical import seal
from runtime.bundle.hosts import host_allowed, parse_origin
from runtime.bundle.load import thaw
from runtime.routing.inline import TARGET_FIELDS, parse_config
from tests.conftest import EXAMPLE, ROOT, shared_data

FUZZ_EXAMPLES = 300
Config = dict[str, Any]


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiled = compile_catalog(EXAMPLE)
    assert compiled.data is not None
    path = tmp_path_factory.mktemp("acme") / "acme.bundle.json"
    path.write_bytes(compiled.data)
    return path


@pytest.fixture(scope="module")
def router(bundle_path: Path) -> Router:
    return Router.load(bundle_path)


def outcome(call: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    """`ok`, the RequestError's class name, or `BUG …` for anything else escaping."""
    try:
        call(*args, **kwargs)
    except RequestError as refused:
        return type(refused).__name__
    except Exception as exc:  # the promise under test: nothing else may escape
        return f"BUG {type(exc).__name__}: {str(exc)[:200]}"
    return "ok"


def assert_plan_safe(router: Router, plan: Any) -> None:
    """Whatever an inline config chose: catalog providers only, their own credentials, sent
    only where the catalog allows, and a body any JSON encoder takes."""
    for attempt in plan.attempts:
        assert attempt.provider is not None, "an inline config reached a raw service"
        provider = router.bundle.providers[attempt.provider]
        assert dict(attempt.credentials) == dict(provider.integration.credentials)
        assert attempt.url is not None
        if attempt.url != provider.base_url:
            origin = parse_origin(attempt.url)
            assert host_allowed(origin, provider.base_url, provider.allowed_hosts), attempt.url
        json.dumps(thaw(attempt.params), allow_nan=False)


def resolve(router: Router, config: Any, workspace: str = "support", **kw: Any) -> Any:
    plan = router.resolve(workspace, kw.pop("model", "gpt-4o"), config=config, **kw)
    assert_plan_safe(router, plan)
    return plan


# -- credential redirection ------------------------------------------------------------------
EVIL = "https://collector.evil.example/v1"
REDIRECTS: list[tuple[str, Config, str]] = [
    ("direct", {"provider": "@openai-prod", "custom_host": EVIL}, "support"),
    ("inherited from the root", {"custom_host": EVIL, "strategy": {"mode": "fallback"},
                                 "targets": [{"provider": "@openai-prod"}]}, "support"),
    ("inherited two levels", {"custom_host": EVIL, "strategy": {"mode": "fallback"}, "targets": [
        {"strategy": {"mode": "single"}, "targets": [{"provider": "@anthropic-prod"}]}]}, "support"),
    ("raw parent, provider by override_params.model",
     {"custom_host": EVIL, "override_params": {"model": "@openai-prod/gpt-4o"}}, "support"),
    ("provider from the request's model", {"custom_host": EVIL}, "support"),
    ("untaken loadbalance branch", {"strategy": {"mode": "loadbalance"}, "targets": [
        {"provider": "@openai-prod", "weight": 1},
        {"provider": "@openai-prod", "weight": 0, "custom_host": EVIL}]}, "support"),
    ("untaken conditional branch", {"strategy": {"mode": "conditional", "conditions": [
        {"query": {"metadata.never": {"$eq": 1}}, "then": "b"}], "default": "a"}, "targets": [
        {"name": "a", "provider": "@openai-prod"},
        {"name": "b", "provider": "@openai-prod", "custom_host": EVIL}]}, "support"),
    ("legacy virtual_key", {"virtual_key": "openai-prod", "custom_host": EVIL}, "support"),
    ("http downgrade of the own host", {"provider": "@openai-prod",
                                        "custom_host": "http://api.openai.com/v1"}, "support"),
    ("own host, other port", {"provider": "@openai-prod",
                              "custom_host": "https://api.openai.com:8443/v1"}, "support"),
    ("suffix look-alike", {"provider": "@openai-prod",
                           "custom_host": "https://api.openai.com.evil.example/v1"}, "support"),
    ("another provider's allowed host", {"provider": "@openai-prod",
                                         "custom_host": "https://gpu-1.llm.internal.acme.example"},
     "platform"),
    ("wildcard's own apex is not below it", {"provider": "@llama-local",
                                             "custom_host": "https://internal.acme.example/v1"},
     "platform"),
    ("wildcard on another port", {"provider": "@llama-local",
                                  "custom_host": "https://gpu-1.llm.internal.acme.example:8443"},
     "platform"),
    ("user-info", {"provider": "@openai-prod", "custom_host": "https://api.openai.com@evil.example/"},
     "support"),
    ("user-info with password", {"provider": "@openai-prod",
                                 "custom_host": "https://u:p@api.openai.com/v1"}, "support"),
    ("backslash confusion", {"provider": "@openai-prod",
                             "custom_host": "https://evil.example\\@api.openai.com/"}, "support"),
    ("fragment confusion", {"provider": "@openai-prod",
                            "custom_host": "https://evil.example#@api.openai.com"}, "support"),
    ("query", {"provider": "@openai-prod", "custom_host": "https://api.openai.com/v1?x=1"},
     "support"),
    ("percent-encoded host", {"provider": "@openai-prod",
                              "custom_host": "https://api%2eopenai.com/v1"}, "support"),
    ("IDN look-alike", {"provider": "@openai-prod", "custom_host": "https://аpi.openai.com/v1"},
     "support"),
    ("fullwidth dot", {"provider": "@openai-prod", "custom_host": "https://api.openai\uff0ecom"},
     "support"),
    ("trailing dot", {"provider": "@openai-prod", "custom_host": "https://api.openai.com./v1"},
     "support"),
    ("IPv4 shorthand", {"provider": "@openai-prod", "custom_host": "https://127.1/v1"}, "support"),
    ("decimal IPv4", {"provider": "@openai-prod", "custom_host": "https://2130706433/"}, "support"),
    ("hex IPv4", {"provider": "@openai-prod", "custom_host": "https://0x7f.0x1/"}, "support"),
    ("IPv6 loopback", {"provider": "@openai-prod", "custom_host": "https://[::1]:443/"}, "support"),
    ("file scheme", {"provider": "@openai-prod", "custom_host": "file:///etc/passwd"}, "support"),
    ("scheme-relative", {"provider": "@openai-prod", "custom_host": "//evil.example/v1"}, "support"),
    ("no slashes", {"provider": "@openai-prod", "custom_host": "https:evil.example"}, "support"),
    ("empty host", {"provider": "@openai-prod", "custom_host": "https:///v1"}, "support"),
    ("control character", {"provider": "@openai-prod",
                           "custom_host": "https://api.openai.com\r\nHost: evil.example"}, "support"),
    ("leading space", {"provider": "@openai-prod", "custom_host": " https://evil.example"},
     "support"),
    ("a number", {"provider": "@openai-prod", "custom_host": 443}, "support"),
    ("an object", {"provider": "@openai-prod", "custom_host": {"env": "UPSTREAM"}}, "support"),
    ("huge URL", {"provider": "@openai-prod", "custom_host": "https://" + "a" * 5000 + ".com"},
     "support"),
    ("base_url field", {"provider": "@openai-prod", "base_url": EVIL}, "support"),
]  # fmt: skip
ALLOWED_HOSTS: list[tuple[str, Config, str, str]] = [
    ("own origin, other path", {"provider": "@openai-prod",
                                "custom_host": "https://api.openai.com/v2/"}, "support",
     "https://api.openai.com/v2"),
    ("own origin, explicit port, upper case", {"provider": "@openai-prod",
                                               "custom_host": "HTTPS://API.OPENAI.COM:443/v1"},
     "support", "HTTPS://API.OPENAI.COM:443/v1"),
    ("a node below the wildcard", {"provider": "@llama-local",
                                   "custom_host": "https://gpu-3.llm.internal.acme.example/v1"},
     "platform", "https://gpu-3.llm.internal.acme.example/v1"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "config", "workspace"), REDIRECTS, ids=[r[0] for r in REDIRECTS])
def test_credentials_are_never_redirected(
    router: Router, name: str, config: Config, workspace: str
) -> None:
    model = "@openai-prod/gpt-4o" if name == "provider from the request's model" else "gpt-4o"
    if workspace == "platform" and "llama" in json.dumps(config):
        model = "llama-3.3-70b-instruct"
    result = outcome(lambda: resolve(router, config, workspace, model=model))
    assert result in ("AccessDenied", "InvalidConfig"), result


def test_a_disallowed_host_is_a_403_naming_the_rule(router: Router) -> None:
    with pytest.raises(AccessDenied) as caught:
        router.resolve(
            "support", "gpt-4o", config={"provider": "@openai-prod", "custom_host": EVIL}
        )
    assert caught.value.status == 403
    assert "provider `@openai-prod`" in str(caught.value)
    assert "https://api.openai.com/v1" in str(caught.value)  # where the key may go


@pytest.mark.parametrize(
    ("name", "config", "workspace", "url"), ALLOWED_HOSTS, ids=[a[0] for a in ALLOWED_HOSTS]
)
def test_allowed_hosts_are_honoured(
    router: Router, name: str, config: Config, workspace: str, url: str
) -> None:
    model = "llama-3.3-70b-instruct" if "llama" in json.dumps(config) else "gpt-4o"
    plan = resolve(router, config, workspace, model=model)
    assert plan.attempts[0].url == url


# -- forwarded headers -----------------------------------------------------------------------
FORWARDED_HEADERS = [
    "Authorization", "authorization", "AUTHORIZATION", "Proxy-Authorization", "x-api-key",
    "X-Api-Key", "api-key", "Cookie", "set-cookie", "x-goog-api-key", "x-portkey-api-key",
    "x-portkey-virtual-key", "x-portkey-config", "x-amz-security-token", "x-auth-token",
    "x-access-token", "x-client-secret", "x-session-id", "anthropic-api-key", "x-ms-token",
    "Authorization ", "bad header", "", "a" * 300,
]  # fmt: skip


@pytest.mark.parametrize("header", FORWARDED_HEADERS)
def test_credential_headers_are_never_forwarded(router: Router, header: str) -> None:
    nested = {"strategy": {"mode": "fallback"}, "forward_headers": ["x-request-id", header],
              "targets": [{"provider": "@openai-prod"}]}  # fmt: skip
    for config in ({"provider": "@openai-prod", "forward_headers": [header]}, nested):
        with pytest.raises(InvalidConfig, match="forward_headers"):
            router.resolve("support", "gpt-4o", config=config)


def test_ordinary_headers_are_forwarded(router: Router) -> None:
    plan = resolve(router, {"provider": "@openai-prod", "forward_headers": ["x-request-id"]})
    assert thaw(plan.attempts[0].carried["forward_headers"]) == ["x-request-id"]


# -- secret references and credentials ---------------------------------------------------------
SECRET_REFS: list[Config] = [
    {"provider": "@openai-prod", "api_key": {"env": "ACME_OPENAI_API_KEY"}},
    {"provider": "@openai-prod", "api_key": {"file": "/etc/shadow"}},
    {"provider": "@openai-prod", "api_key": "sk-proj-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0123"},
    {"provider": "@openai-prod", "Authorization": "Bearer sk-proj-FAKEFAKEFAKEFAKE0123"},
    {"provider": "@openai-prod", "Authorization": {"env": "HOME"}},
    {"provider": "@openai-prod", "aws_access_key_id": "AKIAFAKEFAKEFAKEFAKE"},
    {"provider": "@openai-prod", "aws_secret_access_key": {"file": "/proc/self/environ"}},
    {"provider": "@openai-prod", "aws_session_token": {"env": "AWS_SESSION_TOKEN"}},
    {"provider": "@openai-prod", "vertex_service_account_json": {"file": "/var/run/sa.json"}},
    {"provider": "@openai-prod", "override_params": {"user": {"env": "ACME_OPENAI_API_KEY"}}},
    {"provider": "@openai-prod", "override_params": {"a": [{"b": {"file": "/etc/passwd"}}]}},
    {"provider": "@openai-prod", "default_params": {"extra": {"env": "PATH"}}},
    {"provider": "@openai-prod", "metadata": {"k": {"env": "SECRET"}}},
    {"provider": "@openai-prod", "input_guardrails": [{"id": "g", "key": {"env": "X"}}]},
    {"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "@openai-prod", "override_params": {"x": {"env": "Y"}}}]},
]  # fmt: skip


@pytest.mark.parametrize("config", SECRET_REFS)
def test_secrets_and_secret_references_are_refused(router: Router, config: Config) -> None:
    with pytest.raises(InvalidConfig) as caught:
        router.resolve("support", "gpt-4o", config=config)
    assert "sk-proj-FAKE" not in str(caught.value) and "AKIAFAKE" not in str(caught.value)


# -- raw services and destination fields -------------------------------------------------------
RAW_SERVICES: list[Config] = [
    {"provider": "openai"},
    {"provider": "openai", "custom_host": "https://api.openai.com/v1"},
    {"provider": "anthropic", "api_key": {"env": "ANTHROPIC_API_KEY"}},
    {"provider": "openai-prod"},  # a slug without `@` is a service id
    {"strategy": {"mode": "fallback"}, "targets": [{"provider": "@openai-prod"},
                                                   {"provider": "ollama"}]},
    {"strategy": {"mode": "loadbalance"}, "targets": [{"provider": "@openai-prod"},
                                                      {"provider": "vllm", "weight": 0}]},
    {"provider": ""},
]  # fmt: skip
DESTINATION_FIELDS: list[Config] = [
    {"provider": "@azure-eu", "resource_name": "attacker"},
    {"provider": "@azure-eu", "azure_resource_name": "attacker"},
    {"provider": "@azure-eu", "azure_endpoint_name": "attacker"},
    {"provider": "@azure-eu", "azure_region": "eastus"},
    {"provider": "@azure-eu", "azure_deployment_type": "serverless"},
    {"provider": "@openai-prod", "aws_region": "us-east-1"},
    {"provider": "@openai-prod", "vertex_project_id": "attacker-project"},
    {"provider": "@openai-prod", "vertex_region": "us-central1"},
]


@pytest.mark.parametrize("config", RAW_SERVICES + DESTINATION_FIELDS)
def test_only_catalog_providers_at_their_own_destination(router: Router, config: Config) -> None:
    with pytest.raises(InvalidConfig):
        router.resolve("support", "gpt-4o", config=config)


# -- probes that could hang: in a fresh process with a generous timeout ---------------------
def _conditional(pattern: str) -> Config:
    return {
        "strategy": {
            "mode": "conditional",
            "conditions": [{"query": {"params.x": {"$regex": pattern}}, "then": "hit"}],
            "default": "miss",
        },
        "targets": [
            {"name": "hit", "provider": "@openai-prod", "override_params": {"model": "gpt-4o"}},
            {
                "name": "miss",
                "provider": "@openai-prod",
                "override_params": {"model": "gpt-4o-mini"},
            },
        ],
    }


# (pattern, params.x, expected outcome): "hit"/"miss" for a branch, else the error class
REDOS: list[tuple[str, str, str]] = [
    ("^(a+)+$", "a" * 28 + "b", "miss"),
    ("^(a+)+$", "a" * 4096, "hit"),
    ("^(a+)+$", "a" * 4095 + "b", "miss"),
    ("^(a|a)*$", "a" * 40 + "!", "miss"),
    ("^(a|aa)+$", "a" * 4000 + "b", "miss"),
    ("(.*a){12}$", "a" * 4000 + "b", "miss"),
    ("^(\\w+\\s?)*$", "word " * 800 + "!", "miss"),
    ("^([a-zA-Z0-9])(([\\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$",
     "a" * 3000 + "!", "miss"),
    ("(x+x+)+y", "x" * 4000, "miss"),
    ("^(?<team>[a-z]+)-app$", "billing-app", "hit"),  # a JavaScript named group
    ("my_app", "a" * 5000 + "my_app", "miss"),  # longer than 4,096: never matches
    ("(a)\\1", "aa", "InvalidConfig"),  # backreference
    ("^(?=a).*", "a", "InvalidConfig"),  # look-ahead
    ("(?<!a)b", "b", "InvalidConfig"),  # look-behind
    (".{300}x", "a" * 400, "InvalidConfig"),  # too large a program
    ("a" * 1001, "a", "InvalidConfig"),  # too long a pattern
    ("(", "a", "InvalidConfig"),
    ("\x00", "a", "miss"),
    ("\ud800", "a", "InvalidConfig"),  # a lone surrogate in the pattern
]  # fmt: skip


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": [value]}
    return value


def _nested_targets(levels: int) -> Config:
    config: Config = {"provider": "@openai-prod"}
    for _ in range(levels):
        config = {"strategy": {"mode": "fallback"}, "targets": [config]}
    return config


def _lb(weight: Any) -> Config:
    return {"strategy": {"mode": "loadbalance"},
            "targets": [{"provider": "@openai-prod", "weight": weight}]}  # fmt: skip


# name -> (call on a router, expected outcome)
BOMBS: dict[str, tuple[Callable[[Router], object], str]] = {
    "160 KB of [": (lambda r: parse_config("[" * 160_000), "InvalidConfig"),
    "160 KB of {\"a\":": (lambda r: parse_config('{"a":' * 40_000), "InvalidConfig"),
    "brackets inside a string do not count": (
        lambda r: parse_config('{"provider": "@openai-prod", "name": "' + "[" * 1000 + '"}'), "ok"),
    "33 KB config": (lambda r: parse_config(b'{"name": "' + b"x" * 33_000 + b'"}'), "InvalidConfig"),
    "NaN": (lambda r: parse_config('{"weight": NaN}'), "InvalidConfig"),
    "Infinity": (lambda r: parse_config('{"weight": -Infinity}'), "InvalidConfig"),
    "1e400": (lambda r: parse_config('{"request_timeout": 1e400}'), "InvalidConfig"),
    "5,000-digit integer": (lambda r: parse_config('{"weight": ' + "9" * 5000 + "}"), "InvalidConfig"),
    "duplicate key": (lambda r: parse_config('{"provider": "@a", "provider": "@b"}'), "InvalidConfig"),
    "not UTF-8": (lambda r: parse_config(b'{"name": "\xff"}'), "InvalidConfig"),
    "BOM": (lambda r: parse_config(b'\xef\xbb\xbf{"provider": "@openai-prod"}'), "InvalidConfig"),
    "a JSON array": (lambda r: parse_config("[]"), "InvalidConfig"),
    "truncated": (lambda r: parse_config('{"provider": "@openai-'), "InvalidConfig"),
    "not text": (lambda r: parse_config(12), "InvalidConfig"),  # type: ignore[arg-type]
    "lone surrogate escape": (lambda r: r.resolve("support", "gpt-4o", config=parse_config(
        '{"provider": "@openai-prod", "name": "\\ud800"}')), "InvalidConfig"),
    "deep Python dict config": (lambda r: r.resolve("support", "gpt-4o", config=_deep(5000)), "InvalidConfig"),
    "deep metadata": (lambda r: r.resolve("support", "@openai-prod/gpt-4o", metadata=_deep(5000)), "InvalidRequestInput"),
    "deep params": (lambda r: r.resolve("support", "@openai-prod/gpt-4o", params=_deep(5000)), "InvalidRequestInput"),
    "self-referencing params": (lambda r: r.resolve("support", "@openai-prod/gpt-4o", params=(p := {"a": []}, p["a"].append(p), p)[2]), "InvalidRequestInput"),
    "129 targets": (lambda r: r.resolve("support", "gpt-4o", config={"strategy": {"mode": "fallback"}, "targets": [{"provider": "@openai-prod"}] * 129}), "InvalidConfig"),
    "9 nested strategies": (lambda r: r.resolve("support", "gpt-4o", config=_nested_targets(9)), "InvalidConfig"),
    "8 nested strategies": (lambda r: r.resolve("support", "gpt-4o", config=_nested_targets(8)), "ok"),
    "65 conditions": (lambda r: r.resolve("support", "gpt-4o", config={**_conditional("a"), "strategy": {**_conditional("a")["strategy"], "conditions": [{"query": {"metadata.x": 1}, "then": "hit"}] * 65}}), "InvalidConfig"),
    "9 $regex": (lambda r: r.resolve("support", "gpt-4o", config={**_conditional("a"), "strategy": {**_conditional("a")["strategy"], "conditions": [{"query": {"metadata.x": {"$regex": f"a{i}"}}, "then": "hit"} for i in range(9)]}}), "InvalidConfig"),
    "query of 300 values": (lambda r: r.resolve("support", "gpt-4o", config={**_conditional("a"), "strategy": {**_conditional("a")["strategy"], "conditions": [{"query": {"metadata.x": {"$in": list(range(300))}}, "then": "hit"}]}}), "InvalidConfig"),
    "5,001 values": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", "override_params": {"l": [[0] * 500] * 11}}), "InvalidConfig"),
    "weight null": (lambda r: r.resolve("support", "gpt-4o", config=_lb(None)), "ok"),
    "weight NaN": (lambda r: r.resolve("support", "gpt-4o", config=_lb(float("nan"))), "InvalidConfig"),
    "weight inf": (lambda r: r.resolve("support", "gpt-4o", config=_lb(float("inf"))), "InvalidConfig"),
    "weight Decimal NaN": (lambda r: r.resolve("support", "gpt-4o", config=_lb(Decimal("NaN"))), "InvalidConfig"),
    "weight 1e-300": (lambda r: r.resolve("support", "gpt-4o", config=_lb(1e-300)), "InvalidConfig"),
    "weight 10**30": (lambda r: r.resolve("support", "gpt-4o", config=_lb(10**30)), "InvalidConfig"),
    "weight -1": (lambda r: r.resolve("support", "gpt-4o", config=_lb(-1)), "InvalidConfig"),
    "weight true": (lambda r: r.resolve("support", "gpt-4o", config=_lb(True)), "InvalidConfig"),
    "weight string": (lambda r: r.resolve("support", "gpt-4o", config=_lb("1")), "InvalidConfig"),
    "request_timeout 1e400": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", "request_timeout": float("inf")}), "InvalidConfig"),
    "request_timeout 10**30": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", "request_timeout": 10**30}), "InvalidConfig"),
    "request_timeout 0.5": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", "request_timeout": 0.5}), "InvalidConfig"),
    "retry attempts 1e5000": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", "retry": {"attempts": 10**5000}}), "InvalidConfig"),
    "retry attempts null": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", "retry": {"attempts": None}}), "InvalidConfig"),
    "status code 600": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", "on_status_codes": [600]}), "InvalidConfig"),
    "status code true": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", "retry": {"attempts": 1, "on_status_codes": [True]}}), "InvalidConfig"),
    "cache max_age -1": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", "cache": {"mode": "simple", "max_age": -1}}), "InvalidConfig"),
    "sticky hash_fields object": (lambda r: r.resolve("support", "gpt-4o", config={**_lb(1), "strategy": {"mode": "loadbalance", "sticky": {"hash_fields": [{}]}}}), "InvalidConfig"),
    "conditions not a list": (lambda r: r.resolve("support", "gpt-4o", config={**_conditional("a"), "strategy": {"mode": "conditional", "conditions": "x", "default": "hit"}}), "InvalidConfig"),
    "condition not an object": (lambda r: r.resolve("support", "gpt-4o", config={**_conditional("a"), "strategy": {"mode": "conditional", "conditions": [1], "default": "hit"}}), "InvalidConfig"),
    "then a list": (lambda r: r.resolve("support", "gpt-4o", config={**_conditional("a"), "strategy": {"mode": "conditional", "conditions": [{"query": {}, "then": []}], "default": "hit"}}), "InvalidConfig"),
    "mode a list": (lambda r: r.resolve("support", "gpt-4o", config={"strategy": {"mode": []}, "targets": [{"provider": "@openai-prod"}]}), "InvalidConfig"),
    "a set in a config": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", "metadata": {"s": {1, 2}}}), "InvalidConfig"),
    "a non-string key": (lambda r: r.resolve("support", "gpt-4o", config={"provider": "@openai-prod", 1: 2}), "InvalidConfig"),
    "a config that is a list": (lambda r: r.resolve("support", "gpt-4o", config=[1]), "InvalidRequestInput"),  # type: ignore[arg-type]
    "a 10 MB model name": (lambda r: r.resolve("support", "@openai-prod/" + "g" * 10_000_000), "InvalidRequestInput"),
    "a 10 MB params model": (lambda r: r.resolve("support", config={"provider": "@openai-prod"}, params={"model": "g" * 10_000_000}), "InvalidConfig"),
    "a workspace that is a number": (lambda r: r.resolve(7, "@openai-prod/gpt-4o"), "InvalidRequestInput"),  # type: ignore[arg-type]
    "a seed that is a string": (lambda r: r.resolve("support", "gpt-4o", config=_lb(1), seed="x"), "InvalidRequestInput"),  # type: ignore[arg-type]
}  # fmt: skip


def isolated(group: str, bundle: Path, timeout: float = 120) -> dict[str, str]:
    """Run one probe group in a fresh process; a hang fails the test instead of the run."""
    code = f"from tests.hostile.test_inline_configs import main; main({group!r}, {str(bundle)!r})"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    result: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(group: str, bundle: str) -> None:
    """The child side of `isolated`: print {probe: outcome} as one JSON line."""
    router = Router.load(bundle)
    results: dict[str, str] = {}
    if group == "redos":
        for i, (pattern, text, _) in enumerate(REDOS):
            config = _conditional(pattern)
            found = outcome(router.resolve, "support", config=config, params={"x": text})
            if found == "ok":
                found = router.resolve("support", config=config, params={"x": text}).branch or "?"
            results[str(i)] = found
    else:
        for name, (call, _) in BOMBS.items():
            results[name] = outcome(call, router)
    print(json.dumps(results))


def test_regex_runs_in_linear_time(bundle_path: Path) -> None:
    results = isolated("redos", bundle_path)
    for i, (pattern, text, expected) in enumerate(REDOS):
        assert results[str(i)] == expected, (pattern[:40], len(text), results[str(i)])


def test_size_and_depth_bombs_are_refused(bundle_path: Path) -> None:
    results = isolated("bombs", bundle_path)
    wrong = {n: r for n, (_, want) in BOMBS.items() if (r := results[n]) != want}
    assert not wrong, wrong


# -- drop_params -----------------------------------------------------------------------------
DROP_PATHS = [
    "..", ".", "", "[", "]", "a[", "a]", "a[x]", "a[-1]", ".a", "a.", "a..b", "[0]", "[*]",
    "a[1234567]", "a" * 257, "tools[*]..x", "a.[0]", "a[0]b", "a[ 0]", 7, None, ["a"], {"a": 1},
]  # fmt: skip


@pytest.mark.parametrize("path", DROP_PATHS, ids=lambda p: repr(p)[:30])
def test_bad_drop_paths_are_invalid_configs(router: Router, path: Any) -> None:
    config = {"provider": "@openai-prod", "drop_params": [path]}
    with pytest.raises(InvalidConfig, match="drop_params"):
        router.resolve("support", "gpt-4o", config=config, params={"a": [1], "tools": []})


def test_good_drop_paths_still_drop(router: Router) -> None:
    config = {"provider": "@openai-prod", "drop_params": ["a.b", "tools[*].strict", "m.0", "n[1]"]}
    params = {"a": {"b": 1, "c": 2}, "tools": [{"strict": 1, "x": 2}], "m": [1, 2], "n": [1, 2]}
    body = resolve(router, config, params=params).attempts[0].params
    assert thaw(body) == {"a": {"c": 2}, "tools": [{"x": 2}], "m": [2], "n": [1], "model": "gpt-4o"}


# -- metadata and params ---------------------------------------------------------------------
REQUEST_DATA: list[tuple[str, dict[str, Any]]] = [
    ("metadata NaN", {"metadata": {"x": float("nan")}}),
    ("metadata inf", {"metadata": {"x": float("-inf")}}),
    ("metadata huge int", {"metadata": {"x": 2**64}}),
    ("metadata set", {"metadata": {"x": {1}}}),
    ("metadata bytes", {"metadata": {"x": b"x"}}),
    ("metadata object", {"metadata": {"x": object()}}),
    ("metadata int key", {"metadata": {1: "x"}}),
    ("metadata lone surrogate", {"metadata": {"x": "\udc80"}}),
    ("metadata long string", {"metadata": {"x": "a" * 5000}}),
    ("metadata 2,000 keys", {"metadata": {str(i): i for i in range(2000)}}),
    ("metadata not a mapping", {"metadata": ["x"]}),
    ("params NaN", {"params": {"temperature": float("nan")}}),
    ("params Decimal inf", {"params": {"temperature": Decimal("Infinity")}}),
    ("params huge int", {"params": {"max_tokens": 10**40}}),
    ("params tuple key", {"params": {(1, 2): 3}}),
    ("params not a mapping", {"params": "messages"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs"), REQUEST_DATA, ids=[r[0] for r in REQUEST_DATA])
def test_request_data_is_bounded(router: Router, name: str, kwargs: dict[str, Any]) -> None:
    for config in ("eu-router", {"provider": "@openai-prod"}, None):
        with pytest.raises(InvalidConfig, match=name.split()[0]):
            router.resolve("support", "@openai-prod/gpt-4o" if config is None else "gpt-4o",
                           config=config, **kwargs)  # fmt: skip


CONDITIONS = [
    {"$gt": 1}, {"$lt": "a"}, {"$gte": [1]}, {"$lte": {"a": 1}}, {"$in": [[1], {"a": 1}]},
    {"$nin": [None]}, {"$regex": "^x"}, {"$eq": {"a": [1]}}, {"$ne": None}, [1, 2], {"$in": []},
]  # fmt: skip
VALUES = [None, True, 0, -1.5, 2**62, "x", "", [], [1, "a"], {}, {"a": {"b": [None]}}]


@pytest.mark.parametrize("cond", CONDITIONS, ids=lambda c: json.dumps(c)[:30])
def test_conditions_never_raise_on_request_values(router: Router, cond: Any) -> None:
    config = {
        "strategy": {"mode": "conditional", "default": "b", "conditions": [
            {"query": {"metadata.v": cond, "params.v.w": cond}, "then": "a"},
            {"query": {"$or": [{"metadata.v.x": cond}, {"params.v": cond}]}, "then": "a"}]},
        "targets": [{"name": "a", "provider": "@openai-prod"}, {"name": "b", "provider": "@openai-prod"}],
    }  # fmt: skip
    for value in VALUES:
        plan = resolve(router, config, metadata={"v": value}, params={"v": value})
        assert plan.branch in ("a", "b")


# -- fuzz: arbitrary values and mutations of real configs -----------------------------------
FIELDS = sorted({*TARGET_FIELDS, "mode", "conditions", "query", "then", "default", "sticky",
                 "hash_fields", "attempts", "max_age", "$regex", "$in", "$and", "$or", "$gt",
                 "metadata.x", "params.model", "env", "file", "enabled"})  # fmt: skip
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from(["@openai-prod", "@anthropic-prod", "@azure-eu", "@llama-local", "gpt-4o",
                       "openai", "fallback", "loadbalance", "conditional", EVIL, "..", "^(a+)+$",
                       "https://api.openai.com/v1", "Authorization", "a", "b"])
    | st.decimals(allow_nan=True, allow_infinity=True)
)  # fmt: skip
KEYS = st.sampled_from(FIELDS) | st.text(max_size=8)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=25,
)


def shared_configs() -> list[Config]:
    """Portkey's documented configs, their providers renamed to acme's (so that most of them
    resolve before they are mutated)."""
    folder = shared_data("portkey-configs")
    return [localize(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


ACME_PROVIDERS = {"openai": "openai-prod", "anthropic": "anthropic-prod", "azure": "azure-eu"}


def localize(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: localize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [localize(v) for v in value]
    if isinstance(value, str) and value.startswith("@"):
        slug, slash, model = value[1:].partition("/")
        family = slug.split("-")[0]
        return f"@{ACME_PROVIDERS.get(family, slug)}{slash}{model}"
    return value


def paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*here, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*here, i))


def mutate(config: Any, path: tuple[Any, ...], how: str, new: Any, key: str) -> Any:
    if not path:
        return new if how == "replace" else config
    parent = config
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "replace":
        parent[last] = new
    elif how == "delete":
        del parent[last]
    elif how == "add" and isinstance(parent[last], dict):
        parent[last][key] = new
    elif how == "wrap":
        parent[last] = {"strategy": {"mode": "fallback"}, "targets": [parent[last]]}
    return config


def check_any(router: Router, config: Any, metadata: Any, params: Any) -> None:
    """Resolve `config` as a value and as header text: a plan that is safe, or a RequestError."""
    text = json.dumps(config, default=lambda d: float("nan") if d.is_snan() else float(d))
    for workspace in ("support", "platform"):
        result = outcome(resolve, router, config, workspace, metadata=metadata, params=params)
        assert not result.startswith("BUG"), result
        result = outcome(lambda w: resolve(router, parse_config(text), w), workspace)
        assert not result.startswith("BUG"), result


FUZZ = settings(max_examples=FUZZ_EXAMPLES, suppress_health_check=[HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])  # fmt: skip


@FUZZ
@given(config=JSONISH, metadata=JSONISH, params=JSONISH)
def test_fuzz_arbitrary_values(router: Router, config: Any, metadata: Any, params: Any) -> None:
    check_any(router, config, metadata, params)


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_real_configs(router: Router, data: st.DataObject) -> None:
    config = json.loads(json.dumps(data.draw(st.sampled_from(shared_configs()))))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(paths(config))))
        how = data.draw(st.sampled_from(["replace", "delete", "add", "wrap"]))
        if how == "delete" and not path:
            continue
        config = mutate(config, path, how, data.draw(JSONISH), data.draw(KEYS))
    metadata = data.draw(st.dictionaries(st.sampled_from(["user_region", "user_type", "client",
                                                          "app_name", "x"]), JSONISH))  # fmt: skip
    check_any(router, config, metadata, data.draw(JSONISH))


@FUZZ
@given(text=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_header_bytes(router: Router, text: bytes) -> None:
    result = outcome(lambda: resolve(router, parse_config(text)))
    assert not result.startswith("BUG"), result


# names from every side at once: the body's model, the provider header, a target's own
# provider (or none, or passthrough), its override model, and a custom_host that is some
# provider's own or allowed host: the host must be allowed for the provider whose
# credentials the attempt carries, not for one the check happened to look at
PROVIDERS = ["@openai-prod", "@anthropic-prod", "@llama-local", "@azure-eu"]
MODEL_NAMES = ["gpt-4o", "claude-sonnet-4-5", "llama-3.3-70b-instruct"]
NAMES = st.sampled_from(MODEL_NAMES) | st.builds("{}/{}".format, st.sampled_from(PROVIDERS),
                                                 st.sampled_from(MODEL_NAMES))  # fmt: skip
HOSTS = st.sampled_from(["https://api.openai.com/v1", "https://api.anthropic.com/v1",
                         "https://gpu-1.llm.internal.acme.example/v1",
                         "https://acme-weu.openai.azure.com/openai"])  # fmt: skip
TARGET = st.fixed_dictionaries({}, optional={
    "provider": st.sampled_from(PROVIDERS), "passthrough": st.just(True), "custom_host": HOSTS,
    "override_params": st.fixed_dictionaries({"model": NAMES}),
})  # fmt: skip
NAMED_CONFIGS = TARGET | st.fixed_dictionaries(
    {"strategy": st.fixed_dictionaries({"mode": st.sampled_from(["fallback", "loadbalance"])}),
     "targets": st.lists(TARGET, min_size=1, max_size=3)},
    optional={"custom_host": HOSTS, "provider": st.sampled_from(PROVIDERS)},
)  # fmt: skip


@FUZZ
@given(config=NAMED_CONFIGS, model=NAMES, header=st.none() | st.sampled_from(PROVIDERS),
       workspace=st.sampled_from(["support", "platform", "research", "data-science"]))  # fmt: skip
def test_a_host_is_checked_for_the_provider_whose_credentials_go_there(
    router: Router, config: Config, model: str, header: str | None, workspace: str
) -> None:
    result = outcome(resolve, router, config, workspace, model=model, provider=header)
    assert not result.startswith("BUG"), (result, config, model, header, workspace)


def test_every_real_config_resolves_or_is_refused_typed(router: Router) -> None:
    for config in shared_configs():
        for model in ("gpt-4o", "@openai-prod/gpt-4o"):
            result = outcome(resolve, router, config, model=model)
            assert not result.startswith("BUG"), result


def probe_counts() -> dict[str, int]:
    return {
        "credential redirection (custom_host, inheritance, override_params, parsing)":
            len(REDIRECTS) + len(ALLOWED_HOSTS),
        "forwarded credential headers": len(FORWARDED_HEADERS) * 2,
        "secrets and secret references": len(SECRET_REFS),
        "raw services and destination fields": len(RAW_SERVICES) + len(DESTINATION_FIELDS),
        "ReDoS and RE2 syntax": len(REDOS),
        "size, depth and number bombs": len(BOMBS),
        "drop_params paths": len(DROP_PATHS) + 1,
        "metadata/params bounds and conditions": len(REQUEST_DATA) * 3 + len(CONDITIONS) * len(VALUES),
        "fuzz examples (4 properties)": 4 * FUZZ_EXAMPLES,
    }  # fmt: skip


def test_every_class_keeps_its_probes() -> None:
    """The counts the lead reports (`pytest -s` prints them); a class emptied by an edit fails."""
    counts = probe_counts()
    print("\ninline-config probes:", json.dumps(counts, indent=1))
    assert min(counts.values()) >= 7, counts


# -- a bundle compiled before E0507's request-provider rule and E0516 -------------------------
PARAMS = {"default": {}, "drop": [], "override": {}}
OLDER_LEAVES: list[tuple[str, Config, str]] = [
    ("raw service", {"mode": "target", "service": "openai", "api_key": "env:KEY",
                     "custom_host": "https://api.openai.com/v1", "params": PARAMS}, "gpt-4o"),
    ("passthrough, another provider's host", {"mode": "target", "provider": "openai-prod",
                                              "carried": {"passthrough": True},
                                              "custom_host": "https://api.openai.com/v1",
                                              "params": PARAMS}, "@anthropic-prod/claude-sonnet-4-5"),
    ("no provider, another provider's host", {"mode": "target",
                                              "custom_host": "https://api.openai.com/v1",
                                              "params": PARAMS}, "@anthropic-prod/claude-sonnet-4-5"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "leaf", "model"), OLDER_LEAVES, ids=[o[0] for o in OLDER_LEAVES])
def test_an_older_bundle_s_ungoverned_leaf_is_refused(
    bundle_path: Path, tmp_path: Path, name: str, leaf: Config, model: str
) -> None:
    """What the compiler now refuses may still be in a bundle compiled before: the router
    refuses it too (a 403 naming the rule), never sends the credentials."""
    data = {k: v for k, v in json.loads(bundle_path.read_bytes()).items() if k != "digest"}
    data["configs"]["support-bot"]["tree"] = leaf
    doctored = tmp_path / "older.bundle.json"
    doctored.write_bytes(seal(data))
    older = Router.load(doctored)
    with pytest.raises(AccessDenied, match=r"raw service|sends its credentials only"):
        older.resolve("support", model, config="support-bot")
