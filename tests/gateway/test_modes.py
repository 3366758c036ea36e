"""Model modes on the gateway's endpoints (runtime/routing/modes.py): a model asked on an endpoint
that does not serve its mode is refused with a 400 before admission (no upstream call,
nothing charged), in the endpoint's own error shape; `/v1/models` shows each model's mode."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.gateway.fakes import Answer, Fakes, Tokens
from tests.gateway.harness import TEAM_KEY, GatewayProcess, http, trace_id, user

EMBED = "@openai-main/text-embedding-3-small"
CHAT = "@openai-main/gpt-4o-mini"
INSTRUCT = "@backup/backup-instruct"  # mode: completion (harness catalog)
BACKUP_CHAT = "@backup/backup-chat"
CLAUDE = "@claude/claude-haiku-4-5-20251001"


def body_for(path: str, model: str) -> dict[str, Any]:
    if path == "/embeddings":
        return {"model": model, "input": "hello"}
    if path == "/completions":
        return {"model": model, "prompt": "Once upon", "max_tokens": 5}
    if path == "/responses":
        return {"model": model, "input": "hello"}
    if path == "/messages":
        return {"model": model, "max_tokens": 5, "messages": user()}
    return {"model": model, "messages": user()}


def spent(gateway: GatewayProcess) -> Any:
    status, _, data = http("GET", gateway.v1 + "/catalog/usage", None,
                           {"x-portkey-api-key": TEAM_KEY})  # fmt: skip
    assert status == 200
    return [{k: v for k, v in row.items() if k != "resets_at"}
            for row in json.loads(data)["counters"]]  # fmt: skip


WRONG = [
    ("/chat/completions", EMBED, "embedding", "/v1/embeddings"),
    ("/chat/completions", INSTRUCT, "completion", "/v1/completions"),
    ("/completions", BACKUP_CHAT, "chat", "/v1/chat/completions"),
    ("/embeddings", CHAT, "chat", "/v1/chat/completions"),
    ("/responses", EMBED, "embedding", "/v1/embeddings"),
    ("/responses", INSTRUCT, "completion", "/v1/completions"),
    ("/messages", EMBED, "embedding", "/v1/embeddings"),
]


@pytest.mark.parametrize(("path", "model", "mode", "serving"), WRONG)
def test_a_model_on_an_endpoint_of_another_mode_is_400_before_admission(
    gateway: GatewayProcess, fakes: Fakes, path: str, model: str, mode: str, serving: str
) -> None:
    before = spent(gateway)
    trace = trace_id()
    status, _, data = http("POST", gateway.v1 + path, body_for(path, model),
                           {"x-portkey-api-key": TEAM_KEY, "x-portkey-trace-id": trace})  # fmt: skip
    assert status == 400, data
    error = json.loads(data)["error"]
    assert error["type"] == "invalid_request_error"
    message = error["message"]
    assert f"`{model}`" in message and f"{mode} model" in message and serving in message
    if path != "/messages":  # Anthropic's error shape has no code
        assert error["code"] == "model_mode_mismatch"
    assert not any(f.requests for f in fakes.all())
    line = gateway.request_line(trace)
    assert line["status"] == 400 and Decimal(line.get("cost_usd", 0)) == 0 and "tokens" not in line
    assert spent(gateway) == before


@pytest.mark.parametrize(("path", "model", "named"), [
    ("/completions", BACKUP_CHAT, ["/v1/chat/completions", "/v1/responses"]),
    ("/embeddings", CHAT, ["/v1/chat/completions", "/v1/responses"]),
    ("/embeddings", CLAUDE, ["/v1/chat/completions", "/v1/messages"]),
    ("/completions", CLAUDE, ["/v1/chat/completions", "/v1/messages"]),
])  # fmt: skip
def test_a_mode_mismatch_names_only_endpoints_the_targets_service_serves(
    gateway: GatewayProcess, path: str, model: str, named: list[str]
) -> None:
    """A chat model serves three endpoints by its mode, but its service's API only two of
    them: the remedy names those two (an OpenAI model was told to use /v1/messages)."""
    status, _, data = http("POST", gateway.v1 + path, body_for(path, model),
                           {"x-portkey-api-key": TEAM_KEY})  # fmt: skip
    assert status == 400, data
    remedy = json.loads(data)["error"]["message"].rpartition("; use ")[2]
    assert remedy.split(" or ") == named


@pytest.mark.parametrize(("path", "model"), [
    ("/chat/completions", BACKUP_CHAT), ("/completions", INSTRUCT), ("/embeddings", EMBED),
    ("/responses", CHAT), ("/messages", CLAUDE),
])  # fmt: skip
def test_a_model_on_an_endpoint_of_its_mode_reaches_the_upstream(
    gateway: GatewayProcess, fakes: Fakes, path: str, model: str
) -> None:
    upstream = {"@backup": fakes.backup, "@claude": fakes.anthropic}.get(
        model.partition("/")[0], fakes.openai
    )
    upstream.script(Answer(usage=Tokens(input=3, output=0 if path == "/embeddings" else 2)))
    status, _, data = http("POST", gateway.v1 + path, body_for(path, model),
                           {"x-portkey-api-key": TEAM_KEY})  # fmt: skip
    assert status == 200, data
    assert len(upstream.requests) == 1


def test_a_fallback_list_with_a_wrong_mode_target_is_refused_whole(
    gateway: GatewayProcess, fakes: Fakes
) -> None:
    """The first target would serve, but taking the plan would one day send the embedding
    model a chat request (when the first fails): the misconfiguration shows at once."""
    config = {"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "@openai-main", "override_params": {"model": "gpt-4o-mini"}},
        {"provider": "@openai-main", "override_params": {"model": "text-embedding-3-small"}},
    ]}  # fmt: skip
    fakes.openai.script(Answer())
    status, _, data = http("POST", gateway.v1 + "/chat/completions", {"messages": user()},
                           {"x-portkey-api-key": TEAM_KEY,
                            "x-portkey-config": json.dumps(config)})  # fmt: skip
    assert status == 400, data
    assert json.loads(data)["error"]["code"] == "model_mode_mismatch"
    assert EMBED in json.loads(data)["error"]["message"]
    assert not fakes.openai.requests


def test_models_list_shows_each_mode(gateway: GatewayProcess) -> None:
    status, _, data = http("GET", gateway.v1 + "/models", headers={"x-portkey-api-key": TEAM_KEY})
    assert status == 200
    modes = {m["id"]: m["mode"] for m in json.loads(data)["data"]}
    assert modes[EMBED] == "embedding" and modes[INSTRUCT] == "completion"
    assert modes[CHAT] == modes[BACKUP_CHAT] == "chat"
