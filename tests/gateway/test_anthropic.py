"""Chat Completions to an Anthropic provider, through the `openai` SDK: the gateway speaks
Messages upstream (system prompt, tools, tool results, max_tokens, the credential in
x-api-key) and answers in OpenAI's shape, whole or streamed, with cache tokens priced
exactly. And /v1/messages for Anthropic-native clients (raw HTTP: the anthropic SDK is not
a test dependency)."""

from __future__ import annotations

import http.client as http_client
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.gateway.fakes import Answer, Fakes, Tokens, sign
from tests.gateway.harness import (
    ANTHROPIC_UPSTREAM_KEY,
    PROMPT,
    TEAM_KEY,
    GatewayProcess,
    check_logged,
    expected_cost,
    http,
    openai_client,
    parse_sse,
    trace_id,
    user,
)

SONNET = "claude-sonnet-4-5-20250929"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}  # fmt: skip
CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": PROMPT},
]


def test_chat_to_anthropic_whole(gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI,
                                 bundle: Path) -> None:  # fmt: skip
    used = Tokens(input=100, output=20, cache_read=1000, cache_write=50)
    fakes.anthropic.script(Answer(usage=used))
    trace = trace_id()
    raw = client.chat.completions.with_raw_response.create(
        model=f"@claude/{SONNET}", messages=CONVERSATION, max_tokens=300, temperature=0.2,
        extra_headers={"x-portkey-trace-id": trace},
    )  # fmt: skip
    reply = raw.parse()
    assert reply.choices[0].message.content == f"fake {SONNET} says hello"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens == 20
    assert reply.usage.prompt_tokens >= 100
    (rec,) = fakes.anthropic.requests
    assert rec.path == "/v1/messages"
    assert rec.headers["x-api-key"] == ANTHROPIC_UPSTREAM_KEY
    assert rec.headers.get("anthropic-version")
    assert TEAM_KEY not in json.dumps(rec.headers)
    sent = rec.json
    assert sent["model"] == SONNET and sent["max_tokens"] == 300 and sent["temperature"] == 0.2
    assert "You are terse." in json.dumps(sent["system"])
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert PROMPT in json.dumps(sent["messages"])
    cost = expected_cost(bundle, "claude", SONNET, used)
    assert cost == Decimal("0.0010875")  # 100*3 + 20*15 + 1000*0.3 + 50*3.75 per 1M
    assert Decimal(raw.headers["x-catalog-cost-usd"]) == cost
    check_logged(gateway.request_line(trace), workspace="team", provider="claude", model=SONNET,
                 status=200, cost=cost, used=used)  # fmt: skip


def test_max_tokens_is_always_sent(fakes: Fakes, client: openai.OpenAI) -> None:
    """Anthropic requires max_tokens; a client that sends none still gets an answer."""
    client.chat.completions.create(model=f"@claude/{SONNET}", messages=CONVERSATION)
    max_tokens = fakes.anthropic.requests[0].json["max_tokens"]
    assert isinstance(max_tokens, int) and 0 < max_tokens <= 64000


def test_tool_call_whole(fakes: Fakes, client: openai.OpenAI) -> None:
    fakes.anthropic.script(Answer(tool_call=("get_weather", {"city": "Paris"})))
    reply = client.chat.completions.create(model=f"@claude/{SONNET}", messages=CONVERSATION,
                                           tools=[WEATHER_TOOL], max_tokens=100)  # fmt: skip
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and call.id
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    (tool,) = fakes.anthropic.requests[0].json["tools"]
    assert tool["name"] == "get_weather"
    assert tool["input_schema"] == WEATHER_TOOL["function"]["parameters"]  # type: ignore[index]


def test_tool_result_round_trip(fakes: Fakes, client: openai.OpenAI) -> None:
    """The assistant's tool call and the tool's answer become tool_use and tool_result."""
    messages: list[Any] = [
        *CONVERSATION,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_abc", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_abc", "content": "sunny, 21 C"},
    ]  # fmt: skip
    client.chat.completions.create(model=f"@claude/{SONNET}", messages=messages,
                                   tools=[WEATHER_TOOL], max_tokens=100)  # fmt: skip
    sent = fakes.anthropic.requests[0].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    (use,) = [b for b in sent[1]["content"] if b["type"] == "tool_use"]
    assert use["id"] == "toolu_abc" and use["input"] == {"city": "Paris"}
    (result,) = [b for b in sent[2]["content"] if b["type"] == "tool_result"]
    assert result["tool_use_id"] == "toolu_abc" and "sunny" in json.dumps(result["content"])


def test_stream_to_anthropic(gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI,
                             bundle: Path) -> None:  # fmt: skip
    used = Tokens(input=60, output=9, cache_read=300, cache_write=0)
    fakes.anthropic.script(Answer(usage=used))
    trace = trace_id()
    chunks = list(client.chat.completions.create(
        model=f"@claude/{SONNET}", messages=CONVERSATION, max_tokens=100, stream=True,
        stream_options={"include_usage": True}, extra_headers={"x-portkey-trace-id": trace},
    ))  # fmt: skip
    assert fakes.anthropic.requests[0].json["stream"] is True
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"fake {SONNET} says hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usages = [c.usage for c in chunks if c.usage is not None]
    assert usages and usages[-1].completion_tokens == 9
    check_logged(gateway.request_line(trace), workspace="team", provider="claude", model=SONNET,
                 status=200, cost=expected_cost(bundle, "claude", SONNET, used), used=used)  # fmt: skip


def test_streamed_tool_call(fakes: Fakes, client: openai.OpenAI) -> None:
    fakes.anthropic.script(Answer(tool_call=("get_weather", {"city": "Paris", "unit": "C"})))
    chunks = list(client.chat.completions.create(
        model=f"@claude/{SONNET}", messages=CONVERSATION, tools=[WEATHER_TOOL], max_tokens=100,
        stream=True,
    ))  # fmt: skip
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function is not None and calls[0].function.name == "get_weather"
    assert {tc.index for tc in calls} == {calls[0].index}
    args = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert json.loads(args) == {"city": "Paris", "unit": "C"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}


def test_thinking_and_tools_round_trip_through_the_openai_sdk(fakes: Fakes,
                                                              client: openai.OpenAI) -> None:  # fmt: skip
    """With `thinking` on, Anthropic refuses a tool loop's next turn unless the turn with
    the calls comes back starting with its signed thinking block. A client that appends
    the SDK's own message object, as the openai docs show, sends it back."""
    fakes.anthropic.script(Answer(tool_call=("get_weather", {"city": "Paris"})))
    reply = client.chat.completions.create(model=f"@claude/{SONNET}", messages=CONVERSATION,
                                           tools=[WEATHER_TOOL], max_tokens=2000,
                                           extra_body=THINKING)  # fmt: skip
    message = reply.choices[0].message
    thought = f"fake {SONNET} thinks first"
    extra = message.model_extra or {}
    assert extra["reasoning_content"] == thought
    assert extra["thinking_blocks"] == [{"type": "thinking", "thinking": thought,
                                         "signature": sign(thought)}]  # fmt: skip
    (call,) = message.tool_calls or []
    turn: list[Any] = [*CONVERSATION, message,
                       {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]  # fmt: skip
    again = client.chat.completions.create(model=f"@claude/{SONNET}", messages=turn,
                                           tools=[WEATHER_TOOL], max_tokens=2000,
                                           extra_body=THINKING)  # fmt: skip
    assert again.choices[0].message.content == f"fake {SONNET} says hello"
    sent = fakes.anthropic.requests[1].json["messages"][1]["content"]
    assert [b["type"] for b in sent] == ["thinking", "text", "tool_use"]


def test_streamed_thinking_is_given_whole_and_goes_back(fakes: Fakes,
                                                        client: openai.OpenAI) -> None:  # fmt: skip
    """Streamed: `reasoning_content` deltas as they come, and each block whole (signed) in
    `thinking_blocks` at its end; a client that keeps those sends them back."""
    fakes.anthropic.script(Answer(tool_call=("get_weather", {"city": "Oslo"})))
    chunks = list(client.chat.completions.create(
        model=f"@claude/{SONNET}", messages=CONVERSATION, tools=[WEATHER_TOOL], max_tokens=2000,
        stream=True, extra_body=THINKING))  # fmt: skip
    deltas = [c.choices[0].delta.model_extra or {} for c in chunks if c.choices]
    thought = f"fake {SONNET} thinks first"
    assert "".join(d.get("reasoning_content", "") for d in deltas) == thought
    blocks = [b for d in deltas for b in d.get("thinking_blocks", [])]
    assert blocks == [{"type": "thinking", "thinking": thought, "signature": sign(thought),
                       "index": 0}]  # fmt: skip
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assistant = {"role": "assistant", "content": None, "thinking_blocks": blocks, "tool_calls": [
        {"id": calls[0].id, "type": "function", "function": {
            "name": "get_weather", "arguments": "".join(
                tc.function.arguments or "" for tc in calls if tc.function)}}]}  # fmt: skip
    turn: list[Any] = [*CONVERSATION, assistant,
                       {"role": "tool", "tool_call_id": calls[0].id, "content": "rain"}]  # fmt: skip
    again = client.chat.completions.create(model=f"@claude/{SONNET}", messages=turn,
                                           tools=[WEATHER_TOOL], max_tokens=2000,
                                           extra_body=THINKING)  # fmt: skip
    assert again.choices[0].finish_reason == "stop"


def test_a_thinking_budget_without_max_tokens_is_served(fakes: Fakes,
                                                        client: openai.OpenAI) -> None:  # fmt: skip
    """The default `max_tokens` (4096) went out beside a larger thinking budget, and
    Anthropic refuses a `max_tokens` not above the budget: a 400 for a request that named
    none. Now the budget plus the default goes, and is what admission reserves."""
    body = {"thinking": {"type": "enabled", "budget_tokens": 8000}}
    reply = client.chat.completions.create(model=f"@claude/{SONNET}", messages=CONVERSATION,
                                           extra_body=body)  # fmt: skip
    assert reply.choices[0].message.content == f"fake {SONNET} says hello"
    assert fakes.anthropic.requests[0].json["max_tokens"] == 8000 + 4096


def test_thinking_left_out_of_the_turn_is_anthropics_400(fakes: Fakes,
                                                         client: openai.OpenAI) -> None:  # fmt: skip
    """The fake refuses what Anthropic refuses: the round trip above passes for a reason."""
    turn: list[Any] = [*CONVERSATION, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "toolu_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}]  # fmt: skip
    with pytest.raises(openai.BadRequestError, match="must start with a thinking block"):
        client.chat.completions.create(model=f"@claude/{SONNET}", messages=turn,
                                       tools=[WEATHER_TOOL], max_tokens=2000,
                                       extra_body=THINKING)  # fmt: skip


# -- /v1/messages -------------------------------------------------------------------------------
def messages_call(gateway: GatewayProcess, body: dict[str, Any],
                  key: str = TEAM_KEY) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    headers = {"x-portkey-api-key": key, "anthropic-version": "2023-06-01"}
    return http("POST", gateway.v1 + "/messages", body, headers)


def test_native_messages_whole(gateway: GatewayProcess, fakes: Fakes, bundle: Path) -> None:
    used = Tokens(input=11, output=4, cache_read=0, cache_write=20)
    fakes.anthropic.script(Answer(usage=used))
    body = {"model": f"@claude/{SONNET}", "max_tokens": 64, "system": "Be brief.",
            "messages": [{"role": "user", "content": PROMPT}]}  # fmt: skip
    status, headers, data = messages_call(gateway, body)
    assert status == 200, data
    reply = json.loads(data)
    assert reply["type"] == "message" and reply["content"][0]["text"] == f"fake {SONNET} says hello"
    assert reply["usage"]["cache_creation_input_tokens"] == 20
    sent = fakes.anthropic.requests[0]
    assert sent.json["model"] == SONNET and sent.json["system"] == "Be brief."
    assert sent.headers["x-api-key"] == ANTHROPIC_UPSTREAM_KEY
    assert Decimal(headers["x-catalog-cost-usd"]) == expected_cost(bundle, "claude", SONNET, used)


def test_native_messages_with_the_anthropic_sdks_own_key_header(
    gateway: GatewayProcess, fakes: Fakes
) -> None:
    """The anthropic SDK sends its `api_key` as `x-api-key`: a workspace key there was a 401."""
    fakes.anthropic.script(Answer())
    body = {
        "model": f"@claude/{SONNET}",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    status, _, data = http("POST", gateway.v1 + "/messages", body,
                           {"x-api-key": TEAM_KEY, "anthropic-version": "2023-06-01"})  # fmt: skip
    assert status == 200, data
    (sent,) = fakes.anthropic.requests  # the catalog's credential upstream, never the client's
    assert sent.headers["x-api-key"] == ANTHROPIC_UPSTREAM_KEY
    status, _, _ = http("POST", gateway.v1 + "/messages", body,
                        {"x-api-key": "not-a-key", "anthropic-version": "2023-06-01"})  # fmt: skip
    assert status == 401


def test_native_messages_stream(gateway: GatewayProcess, fakes: Fakes) -> None:
    fakes.anthropic.script(Answer(tool_call=("get_weather", {"city": "Oslo"})))
    body = {"model": f"@claude/{SONNET}", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": PROMPT}]}  # fmt: skip
    status, headers, data = messages_call(gateway, body)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = parse_sse(data)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    partial = "".join(json.loads(d)["delta"].get("partial_json", "")
                      for name, d in events if name == "content_block_delta")  # fmt: skip
    assert json.loads(partial) == {"city": "Oslo"}


def test_native_messages_stream_cut_ends_in_an_error(gateway: GatewayProcess, fakes: Fakes) -> None:
    """A cut upstream: the Anthropic client gets an `error` event (or a broken body), never
    message_stop."""
    fakes.anthropic.script(Answer(cut_after=4))
    body = {"model": f"@claude/{SONNET}", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": PROMPT}]}  # fmt: skip
    try:
        status, _, data = messages_call(gateway, body)
    except (OSError, http_client.HTTPException):  # the body broke off: an error too
        return
    assert status == 200
    names = [name for name, _ in parse_sse(data)]
    assert "message_stop" not in names and names[-1] == "error", names


def test_native_messages_errors_in_anthropic_shape(gateway: GatewayProcess, fakes: Fakes) -> None:
    body = {"model": f"@claude/{SONNET}x", "max_tokens": 64,
            "messages": [{"role": "user", "content": PROMPT}]}  # fmt: skip
    status, _, data = messages_call(gateway, body)
    assert status == 404
    error = json.loads(data)
    assert error["type"] == "error" and error["error"]["type"] and error["error"]["message"]
    status, _, data = messages_call(gateway, {**body, "model": f"@claude/{SONNET}"},
                                    key="sk-test-FAKE-nobody")  # fmt: skip
    assert status == 401 and json.loads(data)["type"] == "error"
    assert fakes.anthropic.requests == []


@pytest.mark.parametrize("path", ["/v1/messages/count_tokens", "/v1/messages/batches",
                                  "/v1/messages/"])  # fmt: skip
def test_paths_under_messages_answer_in_anthropic_shape(gateway: GatewayProcess, path: str) -> None:
    """The Anthropic SDK and Claude Code call these: they got OpenAI's error shape (a review)."""
    status, _, data = http("POST", gateway.origin + path, {"model": "x"},
                           {"x-api-key": TEAM_KEY})  # fmt: skip
    error = json.loads(data)
    assert status == 404 and error["type"] == "error"
    assert error["error"]["type"] == "not_found_error"
    status, _, data = http("GET", gateway.origin + "/v1/messagesx", None, {"x-api-key": TEAM_KEY})
    assert status == 404 and "type" not in json.loads(data)  # not Anthropic's path: OpenAI's


def test_native_messages_to_an_openai_provider_is_refused(gateway: GatewayProcess,
                                                          fakes: Fakes) -> None:  # fmt: skip
    body = {"model": "@openai-main/gpt-4o-mini", "max_tokens": 64,
            "messages": [{"role": "user", "content": PROMPT}]}  # fmt: skip
    status, _, data = messages_call(gateway, body)
    assert 400 <= status < 500 or status == 501, (status, data)
    assert json.loads(data)["type"] == "error"
    assert fakes.openai.requests == []


def test_a_target_that_cannot_serve_the_endpoint_refuses_the_request_whole(
    gateway: GatewayProcess, fakes: Fakes
) -> None:
    """A fallback from Anthropic to an OpenAI target on /v1/messages: taken in turn, the
    OpenAI target's 400 ("does not serve /v1/messages") replaced Anthropic's real answer
    (a 529) once the first target failed, and the mistake showed only then. Now the request
    is refused before any call, naming the target, as a model of the wrong mode is."""
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "@claude", "override_params": {"model": SONNET}},
                          {"provider": "@openai-main",
                           "override_params": {"model": "gpt-4o-mini"}}]}  # fmt: skip
    body = {"model": SONNET, "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]}
    fakes.anthropic.script(Answer.error(529))
    status, _, data = http("POST", gateway.v1 + "/messages", body,
                           {"x-portkey-api-key": TEAM_KEY, "anthropic-version": "2023-06-01",
                            "x-portkey-config": json.dumps(config)})  # fmt: skip
    assert status == 400, data
    error = json.loads(data)
    assert error["type"] == "error" and "`@openai-main/gpt-4o-mini`" in error["error"]["message"]
    assert "/v1/messages" in error["error"]["message"]
    assert fakes.anthropic.requests == [] and fakes.openai.requests == []
    # the other way round on /v1/responses, which Anthropic's API does not have
    config["targets"].reverse()  # type: ignore[attr-defined]
    status, _, data = http("POST", gateway.v1 + "/responses", {"model": "x", "input": PROMPT},
                           {"x-portkey-api-key": TEAM_KEY,
                            "x-portkey-config": json.dumps(config)})  # fmt: skip
    assert status == 400 and f"`@claude/{SONNET}`" in json.loads(data)["error"]["message"]
    assert fakes.openai.requests == []


def test_what_anthropic_cannot_take_is_refused_unless_the_config_drops_it(
    fakes: Fakes, client: openai.OpenAI
) -> None:
    """`seed` and a penalty were dropped silently on the way to Anthropic; now a 400 names
    them, and the remedy it names, a config's `drop_params` for that target, works."""
    asked = {"seed": 7, "frequency_penalty": 0.3}
    with pytest.raises(openai.BadRequestError, match="drop_params"):
        client.chat.completions.create(model=f"@claude/{SONNET}", messages=CONVERSATION,
                                       max_tokens=50, **asked)  # type: ignore[arg-type]  # fmt: skip
    assert fakes.anthropic.requests == []
    config = {"provider": "@claude", "override_params": {"model": SONNET},
              "drop_params": ["seed", "frequency_penalty"]}  # fmt: skip
    reply = client.chat.completions.create(
        model=SONNET, messages=CONVERSATION, max_tokens=50, **asked,  # type: ignore[arg-type]
        extra_headers={"x-portkey-config": json.dumps(config)},
    )  # fmt: skip
    assert reply.choices[0].message.content == f"fake {SONNET} says hello"
    assert not {"seed", "frequency_penalty"} & set(fakes.anthropic.requests[0].json)


BETA = "context-1m-2025-08-07"


@pytest.mark.parametrize("form", ["portkey-sdk", "body-one", "body-list", "header"])
def test_anthropic_betas_reach_anthropic_in_each_form_portkey_takes(
    gateway: GatewayProcess, fakes: Fakes, form: str
) -> None:
    """The portkey SDK's `anthropic_beta=` (sent as `x-portkey-anthropic-beta`) and a body's
    `anthropic_beta` were dropped without a word (a review): the upstream then refuses, or
    answers without the beta's behaviour, and nothing says why."""
    from portkey_ai import Portkey

    fakes.anthropic.script(Answer(), Answer())
    extra: dict[str, Any] = {}
    if form == "body-one":
        extra = {"anthropic_beta": BETA}
    elif form == "body-list":
        extra = {"anthropic_beta": [BETA, "output-128k-2025-02-19"]}
    if form == "portkey-sdk":
        client: Any = Portkey(base_url=gateway.v1, api_key=TEAM_KEY, anthropic_beta=BETA)
    else:
        headers = {"anthropic-beta": BETA} if form == "header" else {}
        client = openai_client(gateway, default_headers=headers)
    client.chat.completions.create(model=f"@claude/{SONNET}", messages=user(), max_tokens=50,
                                   extra_body=extra)  # fmt: skip
    native = {"model": f"@claude/{SONNET}", "max_tokens": 64, **extra,
              "messages": [{"role": "user", "content": PROMPT}]}  # fmt: skip
    status, _, data = http("POST", gateway.v1 + "/messages", native,
                           {"x-portkey-api-key": TEAM_KEY, "anthropic-version": "2023-06-01",
                            **({"x-portkey-anthropic-beta": BETA} if form == "portkey-sdk"
                               else headers if form == "header" else {})})  # fmt: skip
    assert status == 200, data
    want = ",".join(extra["anthropic_beta"]) if form == "body-list" else BETA
    for sent in fakes.anthropic.requests:
        assert sent.headers.get("anthropic-beta") == want
        assert "anthropic_beta" not in sent.json


def test_a_malformed_anthropic_beta_is_refused(gateway: GatewayProcess, fakes: Fakes) -> None:
    for bad in (5, [], ["ok", 7], "two words", "x\r\ny", ["a"] * 33):
        status, _, data = http("POST", gateway.v1 + "/chat/completions",
                               {"model": f"@claude/{SONNET}", "messages": user(),
                                "anthropic_beta": bad}, {"x-portkey-api-key": TEAM_KEY})  # fmt: skip
        assert status == 400 and b"anthropic_beta" in data, (bad, data)
    assert not fakes.anthropic.requests
