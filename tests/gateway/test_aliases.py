"""Model aliases through the gateway, with the real `openai` SDK over 127.0.0.1: the upstream
gets the target's model, headers and the access log name the target (and the alias), an
alias is refused whatever its target is refused, `/v1/models` lists the usable aliases."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.gateway.fakes import Answer, Fakes, Tokens
from tests.gateway.harness import (
    OTHER_KEY,
    TEAM_KEY,
    GatewayProcess,
    check_logged,
    compile_catalog,
    expected_cost,
    http,
    main_catalog,
    openai_client,
    trace_id,
    user,
    write_catalog,
)

ORG_ALIASES = """\
aliases:
  fast: "@openai-main/gpt-4o-mini"
  cheap: "@backup/backup-chat"
  big: "@openai-main/gpt-4.1-mini"
  safe: {config: fallback-cfg}
"""
TEAM_ALIASES = """\
            aliases:
              cheap: "@backup/backup-instruct"
"""
KEYS = "            api_keys:\n"


@pytest.fixture(scope="module")
def alias_bundle(fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = main_catalog(fakes)
    files["catalog.yaml"] += ORG_ALIASES
    # the first workspace (`team`) gets its own `cheap`
    files["workspaces.yaml"] = files["workspaces.yaml"].replace(KEYS, TEAM_ALIASES + KEYS, 1)
    root = tmp_path_factory.mktemp("alias-catalog")
    return compile_catalog(write_catalog(root / "catalog", files), root / "bundle.json")


@pytest.fixture(scope="module")
def alias_gateway(alias_bundle: Path) -> Iterator[GatewayProcess]:
    events = alias_bundle.parent / "events.jsonl"
    process = GatewayProcess(
        alias_bundle, alias_bundle.parent / "gateway.log", ["--events", str(events)]
    ).start()
    try:
        yield process
    finally:
        process.stop()


def chat(gateway: GatewayProcess, model: str, key: str = TEAM_KEY, **headers: str) -> Any:
    trace = trace_id()
    with openai_client(gateway, key=key) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=user(), extra_headers={"x-portkey-trace-id": trace, **headers}
        )
    return trace, raw.headers, raw.parse()


def test_the_workspace_s_alias_overrides_the_organization_s(alias_bundle: Path) -> None:
    data = json.loads(alias_bundle.read_text())
    team, other = data["workspaces"]["team"]["aliases"], data["workspaces"]["other"]["aliases"]
    assert team["cheap"] == {"from": "workspace", "provider": "backup", "model": "backup-instruct"}
    assert other["cheap"] == {"from": "organization", "provider": "backup", "model": "backup-chat"}


def test_an_alias_reaches_its_target(
    alias_gateway: GatewayProcess, fakes: Fakes, alias_bundle: Path
) -> None:
    used = Tokens(input=12, output=4)
    fakes.openai.script(Answer(usage=used))
    trace, headers, reply = chat(alias_gateway, "fast")
    assert reply.choices[0].message.content == "fake gpt-4o-mini says hello"
    [sent] = fakes.openai.requests
    assert sent.json["model"] == "gpt-4o-mini"  # the upstream never sees the alias
    assert headers["x-portkey-provider"] == "@openai-main"
    line = alias_gateway.request_line(trace)
    cost = expected_cost(alias_bundle, "openai-main", "gpt-4o-mini", used)
    check_logged(line, workspace="team", provider="openai-main", model="gpt-4o-mini",
                 status=200, cost=cost, used=used)  # fmt: skip
    assert line["alias"] == "fast"
    assert Decimal(headers["x-catalog-cost-usd"]) == cost
    event = event_of(alias_gateway, trace)
    assert (event["alias"], event["provider"], event["model"]) == (
        "fast", "openai-main", "gpt-4o-mini",
    )  # fmt: skip
    assert Decimal(event["catalog_cost_usd"]) == cost


def test_a_request_without_alias_has_none_in_its_event(
    alias_gateway: GatewayProcess, fakes: Fakes
) -> None:
    fakes.openai.script(Answer(usage=Tokens(input=2, output=1)))
    trace, _, _ = chat(alias_gateway, "@openai-main/gpt-4o-mini")
    assert "alias" not in alias_gateway.request_line(trace)
    assert "alias" not in event_of(alias_gateway, trace)


def event_of(gateway: GatewayProcess, trace: str, timeout: float = 5.0) -> dict[str, Any]:
    """The usage event of the request with this trace id (events follow the answer)."""
    path = gateway.bundle.parent / "events.jsonl"
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        found = [e for e in map(json.loads, text.splitlines()) if e.get("trace_id") == trace]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.05)


def test_a_workspace_alias_and_a_provider_header(
    alias_gateway: GatewayProcess, fakes: Fakes
) -> None:
    fakes.backup.script(Answer(usage=Tokens(input=3, output=2)))
    with openai_client(alias_gateway, key=TEAM_KEY) as client:  # a completion-mode target
        raw = client.completions.with_raw_response.create(
            model="cheap", prompt="hi", extra_headers={"x-portkey-provider": "@backup"})  # fmt: skip
    assert [r.json["model"] for r in fakes.backup.requests] == ["backup-instruct"]
    assert raw.headers["x-portkey-provider"] == "@backup"
    with pytest.raises(openai.BadRequestError, match="alias of `@backup/backup-instruct`"):
        chat(alias_gateway, "cheap", **{"x-portkey-provider": "@openai-main"})
    # the alias is refused on an endpoint its target's mode is not served by, as the target is
    with pytest.raises(openai.BadRequestError, match="is a completion model"):
        chat(alias_gateway, "cheap", **{"x-portkey-provider": "@backup"})
    assert len(fakes.openai.requests) == 0 and len(fakes.backup.requests) == 1


def test_a_config_alias_runs_the_config(alias_gateway: GatewayProcess, fakes: Fakes) -> None:
    fakes.openai.script(Answer.error(503))
    fakes.backup.script(Answer(usage=Tokens(input=3, output=2)))
    _, headers, _ = chat(alias_gateway, "safe")
    assert [r.json["model"] for r in fakes.openai.requests] == ["gpt-4o-mini"]
    assert [r.json["model"] for r in fakes.backup.requests] == ["backup-chat"]
    assert headers["x-portkey-last-used-option-index"] == "config.targets[1]"


@pytest.mark.parametrize(
    ("alias", "target", "key"),
    [("big", "@openai-main/gpt-4.1-mini", TEAM_KEY), ("fast", "@openai-main/gpt-4o-mini",
                                                      OTHER_KEY)],
)  # fmt: skip
def test_an_alias_is_refused_as_its_target_is(
    alias_gateway: GatewayProcess, fakes: Fakes, alias: str, target: str, key: str
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as via_alias:
        chat(alias_gateway, alias, key=key)
    with pytest.raises(openai.PermissionDeniedError) as direct:
        chat(alias_gateway, target, key=key)
    assert via_alias.value.message == direct.value.message
    assert fakes.openai.requests == []


@pytest.mark.parametrize(
    ("key", "aliases"), [(TEAM_KEY, ["cheap", "fast", "safe"]), (OTHER_KEY, ["cheap"])]
)
def test_models_lists_the_usable_aliases_after_the_model_ids(
    alias_gateway: GatewayProcess, key: str, aliases: list[str]
) -> None:
    with openai_client(alias_gateway, key=key) as client:
        listed = [m.id for m in client.models.list()]
    named = [m for m in listed if not m.startswith("@")]
    assert named == aliases
    assert listed[-len(aliases) :] == aliases  # after every `@provider/model`
    status, _, body = http("GET", alias_gateway.v1 + "/models", headers={"x-portkey-api-key": key})
    assert status == 200
    owners = {m["id"]: m["owned_by"] for m in json.loads(body)["data"]}
    assert owners["cheap"] == "backup"
