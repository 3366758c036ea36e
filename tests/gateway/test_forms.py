"""Every request form, sent by the real `openai` and `portkey-ai` SDKs over real sockets:
the gateway authenticates the workspace, resolves the route, calls the fake upstream with the
catalog's credential, and answers with Portkey's headers and the exact cost."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from portkey_ai import Portkey

from tests.gateway.fakes import Answer, Fakes, Recorded, Tokens
from tests.gateway.harness import (
    BACKUP_UPSTREAM_KEY,
    OPENAI_UPSTREAM_KEY,
    TEAM_KEY,
    GatewayProcess,
    check_logged,
    expected_cost,
    openai_client,
    trace_id,
    user,
)


def chat(client: openai.OpenAI, model: str, trace: str | None = None,
         headers: dict[str, str] | None = None, **kw: Any) -> tuple[Any, Any]:  # fmt: skip
    """A chat completion through the SDK: (response headers, parsed completion)."""
    extra = dict(headers or {})
    if trace is not None:
        extra["x-portkey-trace-id"] = trace
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=user(), extra_headers=extra, **kw
    )
    return raw.headers, raw.parse()


def only(fake_requests: list[Recorded]) -> Recorded:
    assert len(fake_requests) == 1, fake_requests
    return fake_requests[0]


def test_model_string(gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI,
                      bundle: Path) -> None:  # fmt: skip
    """`model: "@provider/model"` with the key as the bearer token: the upstream gets the bare
    model and the catalog's credential (from the gateway's environment), nothing of the
    caller's; the answer carries Portkey's headers and the exact cost."""
    used = Tokens(input=21, output=8, cache_read=5)
    fakes.openai.script(Answer(usage=used))
    trace = trace_id()
    headers, reply = chat(client, "@openai-main/gpt-4o-mini", trace, temperature=0.5)
    assert reply.choices[0].message.content == "fake gpt-4o-mini says hello"
    assert reply.usage.completion_tokens == 8
    rec = only(fakes.openai.requests)
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == f"Bearer {OPENAI_UPSTREAM_KEY}"
    assert rec.json["model"] == "gpt-4o-mini"
    assert rec.json["messages"] == user() and rec.json["temperature"] == 0.5
    assert TEAM_KEY not in json.dumps(rec.headers)
    assert not [k for k in rec.headers if k.startswith("x-portkey-")], rec.headers
    assert fakes.backup.requests == [] and fakes.anthropic.requests == []
    cost = expected_cost(bundle, "openai-main", "gpt-4o-mini", used)
    assert headers["x-portkey-trace-id"] == trace
    assert headers["x-portkey-provider"] == "@openai-main"
    assert headers["x-portkey-retry-attempt-count"] == "0"
    assert Decimal(headers["x-catalog-cost-usd"]) == cost
    line = gateway.request_line(trace)
    check_logged(line, workspace="team", provider="openai-main", model="gpt-4o-mini",
                 status=200, cost=cost, used=used)  # fmt: skip
    assert line["attempts"] == 1 and line["latency_ms"] >= 0


@pytest.mark.parametrize("provider", ["@backup", "backup"])
def test_provider_header_and_bare_model(fakes: Fakes, client: openai.OpenAI, bundle: Path,
                                        provider: str) -> None:  # fmt: skip
    headers, reply = chat(client, "backup-chat", headers={"x-portkey-provider": provider})
    assert reply.choices[0].message.content == "fake backup-chat says hello"
    rec = only(fakes.backup.requests)
    assert rec.headers["authorization"] == f"Bearer {BACKUP_UPSTREAM_KEY}"
    assert rec.json["model"] == "backup-chat"
    assert headers["x-portkey-provider"] == "@backup"
    assert Decimal(headers["x-catalog-cost-usd"]) == expected_cost(
        bundle, "backup", "backup-chat", Tokens()
    )
    assert fakes.openai.requests == []


def test_config_slug(fakes: Fakes, client: openai.OpenAI) -> None:
    """A config by slug: its first target answers, and the header says which option."""
    headers, reply = chat(client, "anything", headers={"x-portkey-config": "fallback-cfg"})
    assert reply.choices[0].message.content == "fake gpt-4o-mini says hello"
    assert only(fakes.openai.requests).json["model"] == "gpt-4o-mini"  # override_params
    assert headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    assert headers["x-portkey-provider"] == "@openai-main"
    assert fakes.backup.requests == []


def test_inline_config(fakes: Fakes, client: openai.OpenAI) -> None:
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "@backup", "override_params": {"model": "backup-chat"}}]}  # fmt: skip
    headers, _ = chat(client, "whatever", headers={"x-portkey-config": json.dumps(config)})
    assert only(fakes.backup.requests).json["model"] == "backup-chat"
    assert headers["x-portkey-provider"] == "@backup"


def test_virtual_key(fakes: Fakes, client: openai.OpenAI) -> None:
    """The legacy header names a provider slug."""
    headers, _ = chat(client, "backup-chat", headers={"x-portkey-virtual-key": "backup"})
    assert only(fakes.backup.requests).json["model"] == "backup-chat"
    assert headers["x-portkey-provider"] == "@backup"


def test_workspace_default_config(fakes: Fakes, client: openai.OpenAI) -> None:
    """Neither provider nor config: the workspace's `default_config` (team-default) routes."""
    headers, reply = chat(client, "any-model-at-all")
    assert reply.choices[0].message.content == "fake backup-chat says hello"
    assert only(fakes.backup.requests).json["model"] == "backup-chat"
    assert headers["x-portkey-provider"] == "@backup"
    assert fakes.openai.requests == []


@pytest.mark.parametrize(("region", "fake", "model"),
                         [("eu", "backup", "backup-chat"), ("us", "openai", "gpt-4o-mini")])  # fmt: skip
def test_metadata_feeds_conditions(fakes: Fakes, client: openai.OpenAI, region: str, fake: str,
                                   model: str) -> None:  # fmt: skip
    headers = {"x-portkey-config": "by-region",
               "x-portkey-metadata": json.dumps({"region": region})}  # fmt: skip
    _, reply = chat(client, "anything", headers=headers)
    assert reply.choices[0].message.content == f"fake {model} says hello"
    assert only(getattr(fakes, fake).requests).json["model"] == model


def test_portkey_key_header_beats_a_placeholder_bearer(
    gateway: GatewayProcess, fakes: Fakes
) -> None:
    """What the gallery's openai snippets and the Portkey SDKs send: a placeholder (or
    unrelated) bearer token and the workspace key in `x-portkey-api-key`."""
    with openai_client(gateway, key="unused",
                       default_headers={"x-portkey-api-key": TEAM_KEY}) as c:  # fmt: skip
        _, reply = chat(c, "@backup/backup-chat")
    assert reply.choices[0].message.content == "fake backup-chat says hello"


def test_a_trace_id_is_generated_when_none_is_sent(
    gateway: GatewayProcess, client: openai.OpenAI
) -> None:
    headers, _ = chat(client, "@backup/backup-chat")
    trace = headers["x-portkey-trace-id"]
    assert trace
    assert gateway.request_line(trace)["workspace"] == "team"


# -- the portkey-ai SDK -----------------------------------------------------------------------
INLINE = {"strategy": {"mode": "fallback"},
          "targets": [{"provider": "@backup", "override_params": {"model": "backup-chat"}}]}  # fmt: skip
PORTKEY_FORMS: dict[str, tuple[dict[str, Any], str]] = {
    "model-string": ({}, "@backup/backup-chat"),
    "provider": ({"provider": "@backup"}, "backup-chat"),
    "config-slug": ({"config": "by-region", "metadata": {"region": "eu"}}, "anything"),
    "config-inline": ({"config": INLINE}, "anything"),
    "virtual-key": ({"virtual_key": "backup"}, "backup-chat"),
    "default-config": ({}, "anything"),
}


@pytest.mark.parametrize("form", list(PORTKEY_FORMS))
def test_portkey_sdk_forms(gateway: GatewayProcess, fakes: Fakes, bundle: Path, form: str) -> None:
    options, model = PORTKEY_FORMS[form]
    trace = trace_id()
    client = Portkey(base_url=gateway.v1, api_key=TEAM_KEY, trace_id=trace, **options)
    reply = client.chat.completions.create(model=model, messages=user())
    assert reply.choices[0].message.content == "fake backup-chat says hello"
    rec = only(fakes.backup.requests)
    assert rec.json["model"] == "backup-chat"
    assert rec.headers["authorization"] == f"Bearer {BACKUP_UPSTREAM_KEY}"
    check_logged(gateway.request_line(trace), workspace="team", provider="backup",
                 model="backup-chat", status=200,
                 cost=expected_cost(bundle, "backup", "backup-chat", Tokens()))  # fmt: skip
