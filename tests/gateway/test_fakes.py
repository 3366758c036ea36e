"""The fake upstreams speak what the real SDKs parse: the `openai` SDK pointed straight at the
OpenAI-shaped fake, raw HTTP at the Anthropic-shaped one. If these fail, the gateway tests
prove nothing. (No gateway here.)"""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.gateway.fakes import Answer, Fakes, Tokens, embedding
from tests.gateway.harness import http, parse_sse, user


@pytest.fixture
def direct(fakes: Fakes) -> openai.OpenAI:
    return openai.OpenAI(base_url=fakes.openai.url, api_key="sk-test-FAKE-direct",
                         max_retries=0, timeout=10)  # fmt: skip


def test_chat_whole_and_recorded(fakes: Fakes, direct: openai.OpenAI) -> None:
    fakes.openai.script(Answer(usage=Tokens(input=7, output=3, cache_read=4)))
    r = direct.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    assert r.choices[0].message.content == "fake gpt-4o-mini says hello"
    assert r.usage is not None and r.usage.prompt_tokens == 11 and r.usage.completion_tokens == 3
    assert r.usage.prompt_tokens_details is not None
    assert r.usage.prompt_tokens_details.cached_tokens == 4
    (rec,) = fakes.openai.requests
    assert rec.path == "/v1/chat/completions" and rec.completed
    assert rec.headers["authorization"] == "Bearer sk-test-FAKE-direct"
    assert rec.json["messages"] == user("hi")


@pytest.mark.parametrize("include_usage", [True, False])
def test_chat_stream(fakes: Fakes, direct: openai.OpenAI, include_usage: bool) -> None:
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(direct.chat.completions.create(model="m", messages=user("hi"), stream=True,
                                                 **extra))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "fake m says hello"
    usage = [c.usage for c in chunks if c.usage is not None]
    assert [u.total_tokens for u in usage] == ([18] if include_usage else [])
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_tool_call_streamed(fakes: Fakes, direct: openai.OpenAI) -> None:
    fakes.openai.script(Answer(tool_call=("get_weather", {"city": "Paris"})))
    chunks = list(direct.chat.completions.create(model="m", messages=user("hi"), stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    args = "".join((tc.function.arguments or "") for tc in calls if tc.function)
    assert json.loads(args) == {"city": "Paris"}


def test_embeddings_completions_responses(fakes: Fakes, direct: openai.OpenAI) -> None:
    e = direct.embeddings.create(model="text-embedding-3-small", input=["a", "b"])  # base64
    assert e.data[1].embedding == embedding(json.dumps("b"))
    assert fakes.openai.requests[-1].json["encoding_format"] == "base64"
    assert direct.completions.create(model="x", prompt="p").choices[0].text == "fake x says hello"
    r = direct.responses.create(model="gpt-4o-mini", input="hi")
    assert r.output_text == "fake gpt-4o-mini says hello"
    with direct.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        final = stream.get_final_response()
    assert final.usage is not None and final.usage.output_tokens == 5


def test_scripted_errors_and_cut(fakes: Fakes, direct: openai.OpenAI) -> None:
    fakes.openai.script(Answer.error(429, retry_after=3), Answer(cut_after=3))
    with pytest.raises(openai.RateLimitError) as err:
        direct.chat.completions.create(model="m", messages=user("hi"))
    assert err.value.response.headers["retry-after"] == "3"
    with pytest.raises(openai.APIConnectionError):  # the connection drops mid-body
        list(direct.chat.completions.create(model="m", messages=user("hi"), stream=True))
    assert fakes.openai.pending == 0


def test_a_caller_that_goes_away_is_seen(fakes: Fakes, direct: openai.OpenAI) -> None:
    fakes.openai.script(Answer(chunk_delay=0.02, text=" ".join(["word"] * 200)))
    stream = direct.chat.completions.create(model="m", messages=user("hi"), stream=True)
    it = iter(stream)
    next(it), next(it)
    stream.close()
    (rec,) = fakes.openai.wait_for(lambda rs: rs and rs[0].aborted)
    assert not rec.completed


def test_anthropic_stream_events(fakes: Fakes) -> None:
    fakes.anthropic.script(Answer(tool_call=("t", {"q": 1}), usage=Tokens(10, 3, 100, 7)))
    body = {"model": "claude-x", "max_tokens": 50, "messages": user("hi"), "stream": True}
    status, headers, data = http("POST", fakes.anthropic.url + "/messages", body)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = parse_sse(data)
    names = [e for e, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    start = json.loads(events[0][1])["message"]["usage"]
    assert (start["input_tokens"], start["cache_read_input_tokens"],
            start["cache_creation_input_tokens"]) == (10, 100, 7)  # fmt: skip
    partial = "".join(json.loads(d)["delta"].get("partial_json", "") for e, d in events
                      if e == "content_block_delta")  # fmt: skip
    assert json.loads(partial) == {"q": 1}
    assert json.loads(events[-2][1])["delta"]["stop_reason"] == "tool_use"


def test_anthropic_whole_and_error(fakes: Fakes) -> None:
    fakes.anthropic.script(Answer(), Answer.error(529))
    body = {"model": "claude-x", "max_tokens": 50, "messages": user("hi")}
    status, _, data = http("POST", fakes.anthropic.url + "/messages", body,
                           {"x-api-key": "sk-test-FAKE"})  # fmt: skip
    reply = json.loads(data)
    assert status == 200 and reply["content"][0]["text"] == "fake claude-x says hello"
    assert reply["usage"]["output_tokens"] == 5
    status, _, data = http("POST", fakes.anthropic.url + "/messages", body)
    assert status == 529 and json.loads(data)["error"]["type"] == "overloaded_error"
    assert fakes.anthropic.requests[0].headers["x-api-key"] == "sk-test-FAKE"


def test_latency_is_applied(fakes: Fakes, direct: openai.OpenAI) -> None:
    fakes.openai.script(Answer(latency=0.3))
    started = time.monotonic()
    direct.chat.completions.create(model="m", messages=user("hi"))
    assert time.monotonic() - started >= 0.3  # a lower bound: the fake waited
