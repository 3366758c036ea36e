"""Refusals and upstream failures reach the SDKs as their typed exceptions, in OpenAI's
error shape with Portkey's statuses; fallback, retry and timeouts behave as the plan says."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import portkey_ai
import pytest
from portkey_ai import Portkey

from tests.gateway.fakes import Answer, Fakes, Tokens
from tests.gateway.harness import (
    LIMITED_KEY,
    SECRETS,
    TEAM_KEY,
    GatewayProcess,
    expected_cost,
    http,
    openai_client,
    secrets_in,
    trace_id,
    user,
)


def error_of(exc: openai.APIStatusError, upstream: str | None = None) -> dict[str, Any]:
    """The OpenAI error object of a refusal, its shape checked. An upstream's error comes
    as Portkey relays it: `provider` beside `error`, the message prefixed with it."""
    body = exc.response.json()
    assert set(body) == ({"error", "provider"} if upstream else {"error"}), body
    if upstream:
        assert body["provider"] == upstream
        assert body["error"]["message"].startswith(f"{upstream} error: ")
    err = body["error"]
    assert {"message", "type", "code", "param"} <= set(err), err
    assert isinstance(err["message"], str) and err["message"]
    assert not secrets_in(json.dumps(body))
    return dict(err)


def send(client: openai.OpenAI, model: str, headers: dict[str, str] | None = None,
         **kw: Any) -> Any:  # fmt: skip
    return client.chat.completions.create(model=model, messages=user(),
                                          extra_headers=headers or {}, **kw)  # fmt: skip


# -- who is calling --------------------------------------------------------------------------
def test_unknown_key_is_401(gateway: GatewayProcess, fakes: Fakes) -> None:
    c = openai_client(gateway, key="sk-test-FAKE-unknown-9999")
    with c, pytest.raises(openai.AuthenticationError) as err:
        send(c, "@backup/backup-chat")
    error_of(err.value)
    assert fakes.backup.requests == []


def test_missing_key_is_401(gateway: GatewayProcess, fakes: Fakes) -> None:
    status, _, body = http("GET", gateway.v1 + "/models")
    assert status == 401 and "error" in json.loads(body)
    status, _, body = http("POST", gateway.v1 + "/chat/completions",
                           {"model": "@backup/backup-chat", "messages": user()})  # fmt: skip
    assert status == 401 and "error" in json.loads(body)
    status, _, body = http("POST", gateway.v1 + "/chat/completions",
                           {"model": "@backup/backup-chat", "messages": user()},
                           {"x-portkey-api-key": "sk-test-FAKE-wrong"})  # fmt: skip
    assert status == 401 and json.loads(body)["error"]["message"]


# -- what it may use ---------------------------------------------------------------------------
def test_denied_model_is_403_naming_the_rule(client: openai.OpenAI, fakes: Fakes) -> None:
    with pytest.raises(openai.PermissionDeniedError) as err:
        send(client, "@openai-main/gpt-4.1-mini")
    assert err.value.status_code == 403
    assert "gpt-4.1*" in error_of(err.value)["message"]  # the workspace's deny rule
    assert fakes.openai.requests == []


def test_provider_of_another_workspace_is_403(client: openai.OpenAI, fakes: Fakes) -> None:
    with pytest.raises(openai.PermissionDeniedError) as err:
        send(client, "@broke/gpt-4o-mini")
    assert "broke" in error_of(err.value)["message"]
    assert fakes.openai.requests == []


def test_unknown_model_is_404_with_suggestions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        send(client, "@openai-main/gpt-4o-mni")
    assert "gpt-4o-mini" in error_of(err.value)["message"]


@pytest.mark.parametrize(("model", "headers", "named"), [
    ("@nowhere/gpt-4o-mini", {}, "nowhere"),
    ("gpt-4o-mini", {"x-portkey-config": "fallbak-cfg"}, "fallback-cfg"),  # a suggestion
])  # fmt: skip
def test_unknown_provider_or_config_is_404(client: openai.OpenAI, model: str,
                                           headers: dict[str, str], named: str) -> None:  # fmt: skip
    with pytest.raises(openai.NotFoundError) as err:
        send(client, model, headers)
    assert named in error_of(err.value)["message"]


def test_invalid_inline_config_is_400(client: openai.OpenAI, fakes: Fakes) -> None:
    config = {"strategy": {"mode": "sideways"}, "targets": [{"provider": "@backup"}]}
    with pytest.raises(openai.BadRequestError) as err:
        send(client, "backup-chat", {"x-portkey-config": json.dumps(config)})
    error_of(err.value)
    assert fakes.backup.requests == []


# -- limits -------------------------------------------------------------------------------------
def test_budget_exhausted_is_412(gateway: GatewayProcess, fakes: Fakes) -> None:
    """@broke has a budget of 0 USD: refused before any upstream call."""
    with openai_client(gateway, key=LIMITED_KEY) as c, pytest.raises(openai.APIStatusError) as err:
        send(c, "@broke/gpt-4o-mini")
    assert err.value.status_code == 412
    assert "budget" in error_of(err.value)["message"]
    with pytest.raises(portkey_ai.openai.APIStatusError) as perr:
        Portkey(base_url=gateway.v1, api_key=LIMITED_KEY).chat.completions.create(
            model="@broke/gpt-4o-mini", messages=user())  # fmt: skip
    assert perr.value.status_code == 412
    assert fakes.openai.requests == []


def test_rate_limited_is_429_with_retry_after(gateway: GatewayProcess, fakes: Fakes) -> None:
    """@throttled admits one request an hour: the next is a RateLimitError whose Retry-After
    (whole seconds, rounded up) says when the bucket admits again."""
    with openai_client(gateway, key=LIMITED_KEY) as c:
        send(c, "@throttled/gpt-4o-mini")
        with pytest.raises(openai.RateLimitError) as err:
            send(c, "@throttled/gpt-4o-mini")
    retry_after = err.value.response.headers["retry-after"]
    assert retry_after.isdigit() and 3000 < int(retry_after) <= 3600
    error_of(err.value)
    portkey = Portkey(base_url=gateway.v1, api_key=LIMITED_KEY, provider="@throttled")
    with pytest.raises(portkey_ai.openai.RateLimitError):
        portkey.chat.completions.create(model="gpt-4o-mini", messages=user())
    assert len(fakes.openai.requests) == 1  # only the admitted one went upstream


# -- upstream failures and the plan -------------------------------------------------------------
def test_fallback_on_503_to_the_next_target(gateway: GatewayProcess, fakes: Fakes,
                                            client: openai.OpenAI, bundle: Path) -> None:  # fmt: skip
    fakes.openai.script(Answer.error(503))
    trace = trace_id()
    raw = client.chat.completions.with_raw_response.create(
        model="anything", messages=user(),
        extra_headers={"x-portkey-config": "fallback-cfg", "x-portkey-trace-id": trace},
    )  # fmt: skip
    assert raw.parse().choices[0].message.content == "fake backup-chat says hello"
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert raw.headers["x-portkey-provider"] == "@backup"
    assert len(fakes.openai.requests) == 1 and len(fakes.backup.requests) == 1
    # the failed attempt cost nothing upstream-reported; the answer is the backup's
    cost = expected_cost(bundle, "backup", "backup-chat", Tokens())
    line = gateway.request_line(trace)
    assert line["attempts"] == 2 and line["status"] == 200
    assert Decimal(line["cost_usd"]) >= cost


def test_every_target_down_is_a_5xx(fakes: Fakes, client: openai.OpenAI) -> None:
    fakes.openai.script(Answer.error(503))
    fakes.backup.script(Answer.error(503))
    with pytest.raises(openai.InternalServerError) as err:
        send(client, "anything", {"x-portkey-config": "fallback-cfg"})
    assert err.value.status_code == 503
    error_of(err.value, upstream="openai-compatible")  # the last target's answer


def test_retry_honours_retry_after(fakes: Fakes, client: openai.OpenAI) -> None:
    fakes.openai.script(Answer.error(429, retry_after=1))
    raw = client.chat.completions.with_raw_response.create(
        model="anything", messages=user(), extra_headers={"x-portkey-config": "retry-cfg"}
    )
    assert raw.parse().choices[0].message.content == "fake gpt-4o-mini says hello"
    assert raw.headers["x-portkey-retry-attempt-count"] == "1"
    first, second = fakes.openai.requests
    assert second.at - first.at >= 0.9  # it waited as the upstream asked (a lower bound)


def test_request_timeout_is_408(gateway: GatewayProcess, fakes: Fakes,
                                client: openai.OpenAI) -> None:  # fmt: skip
    """`quick` allows 400 ms; the upstream takes 3 s."""
    fakes.openai.script(Answer(latency=3.0))
    with pytest.raises(openai.APIStatusError) as err:
        send(client, "anything", {"x-portkey-config": "quick"})
    assert err.value.status_code == 408
    error_of(err.value)


def test_upstream_error_reaches_the_client_in_openai_shape(fakes: Fakes,
                                                           client: openai.OpenAI) -> None:  # fmt: skip
    """An Anthropic upstream's error is translated into OpenAI's shape for an OpenAI client."""
    fakes.anthropic.script(Answer.error(429, retry_after=7, message="slow down"))
    with pytest.raises(openai.RateLimitError) as err:
        send(client, "@claude/claude-haiku-4-5-20251001")
    assert "slow down" in error_of(err.value, upstream="anthropic")["message"]
    assert err.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("status", [999, 101, 204, 205, 302, 304, 307])
def test_a_status_no_client_can_read_is_a_502(fakes: Fakes, client: openai.OpenAI,
                                              status: int) -> None:  # fmt: skip
    """An upstream's 999 went out to the client as it was (a 101 left the SDK with a
    connection error), a 204 was charged and answered with nothing, a redirect was relayed
    as an answer: a status that cannot carry an answer is the upstream answering badly."""
    fakes.openai.script(Answer(status=status, body={"odd": True}))
    with pytest.raises(openai.APIStatusError) as err:
        send(client, "@openai-main/gpt-4o-mini")
    assert err.value.status_code == 502
    assert f"HTTP {status}" in error_of(err.value)["message"]
    # an answer without usage, as an upstream error is: not billed (the fixes' review)
    assert Decimal(err.value.response.headers["x-catalog-cost-usd"]) == 0


def test_no_secret_in_any_error(gateway: GatewayProcess, fakes: Fakes) -> None:
    """Error answers (auth, not found, upstream failure) hold no key of any kind."""
    fakes.openai.script(Answer.error(401, message="bad upstream key"))
    body = {"model": "@openai-main/gpt-4o-mini", "messages": user()}
    url = gateway.v1 + "/chat/completions"
    answers = [
        http("POST", url, body, {"authorization": f"Bearer {key}"})
        for key in (TEAM_KEY, "sk-test-FAKE-team-0001")
    ]
    for _, headers, body in answers:
        assert not secrets_in(body.decode() + json.dumps(headers), SECRETS)


@pytest.mark.parametrize(("key", "model", "error"), [
    ("sk-test-FAKE-unknown-9999", "@backup/backup-chat", portkey_ai.openai.AuthenticationError),
    (TEAM_KEY, "@openai-main/gpt-4.1-mini", portkey_ai.openai.PermissionDeniedError),
    (TEAM_KEY, "@openai-main/gpt-4o-mni", portkey_ai.openai.NotFoundError),
])  # fmt: skip
def test_portkey_sdk_raises_typed_errors(gateway: GatewayProcess, fakes: Fakes, key: str,
                                         model: str, error: type[Exception]) -> None:  # fmt: skip
    with pytest.raises(error):
        Portkey(base_url=gateway.v1, api_key=key).chat.completions.create(model=model,
                                                                          messages=user())  # fmt: skip
    assert not any(f.requests for f in fakes.all())


def test_the_logged_tokens_are_those_of_every_attempt_charged(
    gateway: GatewayProcess, fakes: Fakes, bundle: Path
) -> None:
    """A 408 is charged its input, then the fallback answers: the log's cost counted both
    attempts, its tokens only the last (a cost no token count explained)."""
    fakes.openai.script(Answer(latency=3.0))
    used = Tokens(input=20, output=5)
    fakes.backup.script(Answer(usage=used))
    config = {"strategy": {"mode": "fallback", "on_status_codes": [408]},
              "targets": [{"provider": "@openai-main", "request_timeout": 300,
                           "override_params": {"model": "gpt-4o-mini"}},
                          {"provider": "@backup", "override_params": {"model": "backup-chat"}}]}  # fmt: skip
    trace = trace_id()
    status, headers, _ = http("POST", gateway.v1 + "/chat/completions",
                              {"model": "x", "messages": user()},
                              {"authorization": f"Bearer {TEAM_KEY}", "x-portkey-trace-id": trace,
                               "x-portkey-config": json.dumps(config)})  # fmt: skip
    assert status == 200
    line = gateway.request_line(trace)
    tokens = line["tokens"]
    first = tokens["input"] - used.input  # the 408's input: its reservation, charged
    assert first > 0 and tokens["output"] == used.output, tokens
    cost = expected_cost(bundle, "openai-main", "gpt-4o-mini", Tokens(input=first, output=0)) + (
        expected_cost(bundle, "backup", "backup-chat", used))  # fmt: skip
    assert Decimal(line["cost_usd"]) == cost == Decimal(headers["x-catalog-cost-usd"]), line
