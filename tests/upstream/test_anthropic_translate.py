"""Chat Completions clients on an Anthropic upstream: requests, answers, streams, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from runtime.bundle.money import Usage
from runtime.upstream import SERVICES
from runtime.upstream.anthropic_request import DEFAULT_MAX_TOKENS
from runtime.upstream.base import Unsupported, UpstreamProtocolError
from runtime.upstream.openai import usage_of
from tests.upstream import fixtures as fx
from tests.upstream.helpers import call, data_lines, feed_in_pieces

ANTHROPIC = SERVICES["anthropic"]
MODEL = "claude-sonnet-4-20250514"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather at a place",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                   "required": ["location"]}}}  # fmt: skip


def chat(body: dict[str, Any], **fields: Any) -> Any:
    fields.setdefault("service", "anthropic")
    fields.setdefault("auth", "x-api-key")
    return call("chat", {"model": MODEL, **body}, **fields)


def sent(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    out = ANTHROPIC.prepare(chat(body, **fields))
    assert out.url == "https://api.example.com/v1/messages"
    result: dict[str, Any] = json.loads(out.body)
    return result


# ---- requests -----------------------------------------------------------------------------


def test_system_and_simple_turns() -> None:
    got = sent({"messages": [{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "Hi"}], "max_tokens": 50})  # fmt: skip
    assert got == {"model": MODEL, "max_tokens": 50, "system": "Be brief.",
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}  # fmt: skip


def test_several_system_messages_keep_cache_control() -> None:
    got = sent({"messages": [
        {"role": "system", "content": "A"},
        {"role": "developer", "content": [{"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Hi"}]})  # fmt: skip
    assert got["system"] == [{"type": "text", "text": "A"},
                             {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}]  # fmt: skip


def test_max_tokens_sources() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    assert sent({"messages": messages})["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert sent({"messages": messages}, settings={"default_max_tokens": "777"})["max_tokens"] == 777
    assert (
        sent({"messages": messages, "max_tokens": 9, "max_completion_tokens": 12})["max_tokens"]
        == 12
    )
    for bad in (0, -1, True, 2.5, "10"):
        with pytest.raises(Unsupported):
            sent({"messages": messages, "max_tokens": bad})


def test_the_output_cap_the_adapter_sends_is_what_admission_reserves() -> None:
    """Without `max_tokens` the gateway reserved the model's most (64,000 for a Sonnet: a
    false 412 on a small budget) while the adapter sent 4096."""
    messages = [{"role": "user", "content": "Hi"}]
    for settings in ({}, {"default_max_tokens": "777"}):
        body = chat({"messages": messages}, settings=settings)
        assert (
            ANTHROPIC.output_cap(body)
            == sent({"messages": messages}, settings=settings)["max_tokens"]
        )
    assert ANTHROPIC.output_cap(call("messages", {"model": MODEL, "messages": messages})) is None
    # with thinking on, above its budget, which Anthropic requires (the default alone was
    # a 400 for any budget of 4096 or more); below it, the default stands
    for budget, want in ((8000, 8000 + 4096), (4096, 4096 + 4096), (1024, 4096)):
        body = {"messages": messages, "thinking": {"type": "enabled", "budget_tokens": budget}}
        assert sent(body)["max_tokens"] == want == ANTHROPIC.output_cap(chat(body))
    assert SERVICES["openai"].output_cap(call()) is None  # the body's own, or none at all


def test_sampling_stop_user_and_stream() -> None:
    got = sent({"messages": [{"role": "user", "content": "Hi"}], "temperature": 0.2, "top_p": 0.9,
                "stop": "END", "user": "u-42", "stream": True,
                "stream_options": {"include_usage": True}}, stream=True)  # fmt: skip
    assert got["temperature"] == 0.2 and got["top_p"] == 0.9
    assert got["stop_sequences"] == ["END"]
    assert got["metadata"] == {"user_id": "u-42"}
    assert got["stream"] is True
    assert not {"stream_options", "stop", "user"} & set(got)
    assert sent({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b"]})[
        "stop_sequences"
    ] == ["a", "b"]


def test_images() -> None:
    got = sent({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "image_url", "image_url": {"url": "data:application/pdf;base64,JVBERi0="}}]}]})  # fmt: skip
    assert got["messages"][0]["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        },
    ]


@pytest.mark.parametrize(
    "part",
    [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}},
     {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}},
     {"type": "image_url", "image_url": {}},
     {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}],
)  # fmt: skip
def test_parts_anthropic_cannot_take_are_400(part: dict[str, Any]) -> None:
    with pytest.raises(Unsupported) as caught:
        sent({"messages": [{"role": "user", "content": [part]}]})
    assert caught.value.status == 400 and "messages[0].content[0]" in caught.value.message


def conversation() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather in SF and the time?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "SF"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, fog"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "09:00"}]},
        {"role": "user", "content": "Thanks, and tomorrow?"},
    ]  # fmt: skip


def test_tool_calls_and_results() -> None:
    got = sent({"messages": conversation(), "tools": [WEATHER_TOOL], "tool_choice": "required",
                "parallel_tool_calls": False})  # fmt: skip
    assert got["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in SF and the time?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "SF"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}]},
        {"role": "user", "content": [  # both results together, first, then the new question
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, fog"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "09:00"}]},
            {"type": "text", "text": "Thanks, and tomorrow?"}]},
    ]  # fmt: skip
    assert got["tools"] == [{"name": "get_weather", "description": "Weather at a place",
                             "input_schema": WEATHER_TOOL["function"]["parameters"]}]  # fmt: skip
    assert got["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_thinking_goes_back_first_in_either_form() -> None:
    """`thinking_blocks` (as the gateway answers) or thinking content parts (Portkey's form),
    before the turn's text and calls; a block from a server that signs nothing stays unsigned."""
    thought = {"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"}
    redacted = {"type": "redacted_thinking", "data": "ZW5j"}
    unsigned = {"type": "thinking", "thinking": "No signature."}
    messages = conversation()
    messages[1]["thinking_blocks"] = [thought, unsigned]
    messages[1]["content"] = [{"type": "text", "text": "Checking."}, redacted]
    got = sent({"messages": messages})["messages"][1]["content"]
    assert got[:4] == [thought, unsigned, redacted, {"type": "text", "text": "Checking."}]
    assert [b["type"] for b in got[4:]] == ["tool_use", "tool_use"]


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [("thinking_blocks", {"type": "thinking"}, "messages[1].thinking_blocks"),
     ("thinking_blocks", [{"type": "thinking", "thinking": 5, "signature": "s"}],
      "messages[1].thinking_blocks[0]"),
     ("thinking_blocks", [{"type": "thinking", "thinking": "t", "signature": 5}],
      "messages[1].thinking_blocks[0]"),
     ("thinking_blocks", [{"type": "redacted_thinking"}], "messages[1].thinking_blocks[0]"),
     ("thinking_blocks", ["text"], "messages[1].thinking_blocks[0]"),
     ("content", [{"type": "redacted_thinking", "data": None}], "messages[1].content[0]")],
)  # fmt: skip
def test_a_malformed_thinking_block_is_a_400_naming_it(field: str, value: Any, where: str) -> None:
    messages = conversation()
    messages[1][field] = value
    with pytest.raises(Unsupported) as caught:
        sent({"messages": messages})
    assert caught.value.status == 400 and f"`{where}`" in caught.value.message


@pytest.mark.parametrize(
    ("choice", "want"),
    [("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"}),
     ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"})],
)  # fmt: skip
def test_tool_choice(choice: Any, want: dict[str, Any]) -> None:
    got = sent(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER_TOOL],
            "tool_choice": choice,
        }
    )
    assert got["tool_choice"] == want


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"text"', "{" * 50_000, 42])
def test_tool_call_arguments_must_be_a_json_object(arguments: Any) -> None:
    messages = conversation()
    messages[1]["tool_calls"][0]["function"]["arguments"] = arguments
    with pytest.raises(Unsupported) as caught:
        sent({"messages": messages})
    assert caught.value.status == 400
    assert "messages[1].tool_calls[0].function.arguments" in caught.value.message


@pytest.mark.parametrize(
    "body",
    [{"messages": []}, {"messages": "hi"}, {"messages": [{"role": "function", "content": "x"}]},
     {"messages": [{"role": "user", "content": "x"}], "n": 2},
     {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}},
     {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "code_interpreter"}]},
     {"messages": [{"role": "user", "content": "x"}], "stop": 5},
     {"messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}],
)  # fmt: skip
def test_what_messages_cannot_express_is_a_400(body: dict[str, Any]) -> None:
    with pytest.raises(Unsupported) as caught:
        sent(body)
    assert caught.value.status == 400


@pytest.mark.parametrize(("name", "value"), [
    ("functions", [{"name": "f", "parameters": {"type": "object"}}]), ("function_call", "auto"),
    ("logprobs", True), ("top_logprobs", 3), ("modalities", ["text", "audio"]),
    ("audio", {"voice": "alloy", "format": "wav"}), ("prediction", {"type": "content"}),
    ("frequency_penalty", 0.5), ("presence_penalty", -1), ("logit_bias", {"50256": -100}),
    ("reasoning_effort", "high"), ("verbosity", "low"), ("web_search_options", {"x": 1}),
])  # fmt: skip
def test_fields_messages_has_no_form_for_are_refused_naming_them(name: str, value: Any) -> None:
    """They were dropped, silently: a model never saw the legacy functions it was given,
    nor a penalty, a token bias or a reasoning effort it was asked for."""
    body = {"messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(Unsupported, match=f"`{name}` cannot be sent to Anthropic.*drop_params"):
        sent({**body, name: value})
    for default in (None, False, 0, 0.0, [], {}):  # what clients send as defaults still passes
        assert name not in sent({**body, name: default})
    assert "modalities" not in sent({**body, "modalities": ["text"]})


def test_any_seed_is_refused_and_what_changes_nothing_is_left_out() -> None:
    body = {"messages": [{"role": "user", "content": "x"}]}
    for seed in (0, 42):
        with pytest.raises(Unsupported, match="`seed` cannot be sent to Anthropic"):
            sent({**body, "seed": seed})
    quiet = {"store": True, "metadata": {"k": "v"}, "service_tier": "auto",
             "prompt_cache_key": "k1", "seed": None}  # fmt: skip
    assert sent({**body, **quiet}) == sent(body)
    assert sent({**body, "safety_identifier": "u-1"})["metadata"] == {"user_id": "u-1"}
    both = {**body, "user": "u-2", "safety_identifier": "u-1"}
    assert sent(both)["metadata"] == {"user_id": "u-2"}


# ---- answers ------------------------------------------------------------------------------


def test_answer_as_a_chat_completion_with_exact_usage() -> None:
    reply = ANTHROPIC.reply(chat({"messages": []}), 200, fx.ANTHROPIC_MESSAGE, {})
    completion = ChatCompletion.model_validate_json(reply.body)
    choice = completion.choices[0]
    assert completion.id == "msg_01Aq9w938a90dw8q" and completion.model == MODEL
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check the weather."
    extra = choice.message.model_extra or {}
    assert extra["reasoning_content"] == "The user wants weather."
    assert extra["thinking_blocks"] == [json.loads(fx.ANTHROPIC_MESSAGE)["content"][0]]
    (tool,) = choice.message.tool_calls or []
    assert tool.id == "toolu_01A09q90qw90lq917835lq9" and tool.function.name == "get_weather"
    assert json.loads(tool.function.arguments) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }
    assert reply.usage == Usage(472, 89, cache_read_tokens=2048, cache_write_tokens=1024)
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens == 472 + 2048 + 1024
    assert usage.completion_tokens == 89 and usage.total_tokens == 472 + 2048 + 1024 + 89
    assert (
        usage.prompt_tokens_details is not None
        and usage.prompt_tokens_details.cached_tokens == 2048
    )


@pytest.mark.parametrize(
    ("stop", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
     ("tool_use", "tool_calls"), ("refusal", "content_filter"), (None, "stop")],
)  # fmt: skip
def test_stop_reasons(stop: str | None, finish: str) -> None:
    body = json.dumps({"id": "msg_1", "model": MODEL, "content": [{"type": "text", "text": "ok"}],
                       "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 1}}).encode()  # fmt: skip
    completion = ChatCompletion.model_validate_json(ANTHROPIC.reply(chat({}), 200, body, {}).body)
    assert completion.choices[0].finish_reason == finish


def test_tool_calls_round_trip() -> None:
    """Anthropic's thinking and tool_use -> the client's thinking_blocks and tool_calls ->
    sent back: the same blocks, in the same order (thinking first, signature intact)."""
    reply = ANTHROPIC.reply(chat({}), 200, fx.ANTHROPIC_MESSAGE, {})
    assistant = json.loads(reply.body)["choices"][0]["message"]
    result = {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": "18C"}
    again = sent({"messages": [{"role": "user", "content": "Weather?"}, assistant, result]})
    original = json.loads(fx.ANTHROPIC_MESSAGE)["content"]
    assert again["messages"][1] == {"role": "assistant", "content": original}
    assert again["messages"][2]["content"][0]["tool_use_id"] == "toolu_01A09q90qw90lq917835lq9"


def test_errors_in_openai_shape_with_the_same_status() -> None:
    reply = ANTHROPIC.reply(chat({}), 529, fx.ANTHROPIC_OVERLOADED, {"retry-after": "3"})
    assert reply.status == 529 and reply.retry_after == 3.0 and reply.usage is None
    # as Portkey's gateway relays a provider's error: prefixed, with a top-level `provider`
    assert json.loads(reply.body) == {
        "error": {"message": "anthropic error: Overloaded", "type": "overloaded_error",
                  "code": None, "param": None},
        "provider": "anthropic",
    }  # fmt: skip
    plain = json.loads(ANTHROPIC.reply(chat({}), 503, b"no healthy upstream", {}).body)
    assert (
        plain["error"]["message"] == "upstream `anthropic` answered HTTP 503: no healthy upstream"
    )


# ---- streams ------------------------------------------------------------------------------


def tool_calls(parsed: list[ChatCompletionChunk]) -> dict[int, dict[str, str]]:
    """Each streamed tool call, its pieces joined as an OpenAI client joins them."""
    calls: dict[int, dict[str, str]] = {}
    for c in parsed:
        for tool in c.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(tool.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += tool.id or ""
            entry["name"] += (tool.function and tool.function.name) or ""
            entry["arguments"] += (tool.function and tool.function.arguments) or ""
    return calls


def test_streamed_tool_arguments_are_json_without_argument_text() -> None:
    """A tool without parameters streams `partial_json: ""`: its arguments were an empty
    string (not JSON; the whole answer gives "{}"). A server that gives the input whole in
    `content_block_start`, with no deltas, had its arguments lost."""

    def event(kind: str, **body: Any) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **body})}\n\n".encode()

    def tool(index: int, name: str, given: dict[str, Any], *pieces: str) -> bytes:
        block = {"type": "tool_use", "id": f"toolu_{index}", "name": name, "input": given}
        deltas = [event("content_block_delta", index=index,
                        delta={"type": "input_json_delta", "partial_json": p}) for p in pieces]  # fmt: skip
        return b"".join([event("content_block_start", index=index, content_block=block), *deltas,
                         event("content_block_stop", index=index)])  # fmt: skip

    start = {"id": "msg_1", "model": MODEL, "usage": {"input_tokens": 3, "output_tokens": 1}}
    stream = b"".join([
        event("message_start", message=start), tool(0, "now", {}, ""),
        tool(1, "whole", {"city": "Oslo"}), tool(2, "parts", {}, '{"a": ', "", "1}"),
        tool(3, "unstopped", {}),  # no content_block_stop: message_stop still gives "{}"
    ])[: -len(event("content_block_stop", index=3))] + event(
        "message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9}
    ) + event("message_stop")  # fmt: skip
    for size in (1, 7, 100_000):
        translator, chunks = translate(stream, size, include_usage=False)
        assert translator.done and chunks[-1] == "[DONE]"
        calls = tool_calls([ChatCompletionChunk.model_validate(c) for c in chunks[:-1]])
        arguments = {calls[i]["name"]: json.loads(calls[i]["arguments"]) for i in calls}
        assert arguments == {"now": {}, "whole": {"city": "Oslo"}, "parts": {"a": 1},
                             "unstopped": {}}  # fmt: skip


def translate(stream: bytes, size: int, include_usage: bool) -> tuple[Any, list[Any]]:
    translator = ANTHROPIC.stream(chat({}, stream=True, include_usage=include_usage))
    out = feed_in_pieces(translator, stream, size)
    return translator, data_lines(out)


@pytest.mark.parametrize("size", [1, 11, 100_000])
def test_stream_translation(size: int) -> None:
    translator, chunks = translate(fx.ANTHROPIC_STREAM, size, include_usage=False)
    assert translator.done and chunks[-1] == "[DONE]"
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks[:-1]]
    assert all(c.id == "msg_014p7gG3wDgGV9EUtLvnow3U" and c.model == MODEL for c in parsed)
    assert parsed[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in parsed)
    assert text == "Okay, let's check é."
    assert tool_calls(parsed) == {
        0: {"id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
            "arguments": '{"location": "San Francisco, CA"}'},
        1: {"id": "toolu_02second", "name": "get_time", "arguments": '{"tz": "PST"}'},
    }  # fmt: skip
    assert [c.choices[0].finish_reason for c in parsed][-1] == "tool_calls"
    assert all(c.usage is None for c in parsed)  # the client did not ask
    assert translator.usage == Usage(472, 89, cache_read_tokens=2000, cache_write_tokens=100)


def test_stream_usage_chunk_only_when_asked() -> None:
    _, chunks = translate(fx.ANTHROPIC_STREAM, 4096, include_usage=True)
    usage_chunk = ChatCompletionChunk.model_validate(chunks[-2])
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.prompt_tokens == 472 + 2000 + 100
    assert usage_chunk.usage.completion_tokens == 89
    assert usage_chunk.usage.prompt_tokens_details is not None
    assert usage_chunk.usage.prompt_tokens_details.cached_tokens == 2000
    # read back as an OpenAI-family answer (a gateway in front of this one): the same usage,
    # cache writes apart from the prompt (they were folded into it, priced as input)
    assert usage_of("chat", chunks[-2]["usage"]) == Usage(472, 89, 2000, 100)


def test_a_cut_stream_is_not_done_but_metered() -> None:
    cut = fx.ANTHROPIC_STREAM.index(b"event: message_delta")
    translator, chunks = translate(fx.ANTHROPIC_STREAM[:cut], 64, include_usage=True)
    assert not translator.done and "[DONE]" not in chunks
    assert translator.usage == Usage(472, 2, 2000, 100)  # input known; output as of message_start
    error = data_lines(translator.error_event(502, "upstream cut the stream"))
    assert error == [{"error": {"message": "upstream cut the stream", "type": "api_error",
                                "code": None, "param": None}}]  # fmt: skip


def thinking_stream(*blocks: bytes, stop: bool = True) -> bytes:
    start = {"id": "msg_1", "model": MODEL, "usage": {"input_tokens": 3, "output_tokens": 1}}
    end = event("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 9})
    return b"".join([event("message_start", message=start), *blocks, end,
                     event("message_stop") if stop else b""])  # fmt: skip


def event(kind: str, **body: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **body})}\n\n".encode()


def thinking(index: int, *pieces: str, signature: str | None = "c2ln", stop: bool = True) -> bytes:
    deltas = [event("content_block_delta", index=index,
                    delta={"type": "thinking_delta", "thinking": p}) for p in pieces]  # fmt: skip
    if signature is not None:
        deltas.append(event("content_block_delta", index=index,
                            delta={"type": "signature_delta", "signature": signature}))  # fmt: skip
    return b"".join([event("content_block_start", index=index,
                           content_block={"type": "thinking", "thinking": ""}), *deltas,
                     event("content_block_stop", index=index) if stop else b""])  # fmt: skip


@pytest.mark.parametrize("size", [1, 9, 100_000])
def test_streamed_thinking_as_reasoning_deltas_and_whole_blocks(size: int) -> None:
    redacted = {"type": "redacted_thinking", "data": "ZW5j"}
    stream = thinking_stream(
        thinking(0, "Let me ", "think."),
        event("content_block_start", index=1, content_block=redacted),
        event("content_block_stop", index=1),
        event("content_block_start", index=2, content_block={"type": "text", "text": ""}),
        event("content_block_delta", index=2, delta={"type": "text_delta", "text": "Hi."}),
        event("content_block_stop", index=2),
        thinking(3, "Unsigned, unstopped.", signature=None, stop=False),
    )  # fmt: skip
    translator, chunks = translate(stream, size, include_usage=False)
    assert translator.done and chunks[-1] == "[DONE]"
    deltas = [ChatCompletionChunk.model_validate(c).choices[0].delta for c in chunks[:-1]]
    extras = [d.model_extra or {} for d in deltas]
    assert "".join(e.get("reasoning_content", "") for e in extras) == (
        "Let me think.Unsigned, unstopped."
    )
    assert [b for e in extras for b in e.get("thinking_blocks", [])] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "c2ln", "index": 0},
        {**redacted, "index": 1},
        {"type": "thinking", "thinking": "Unsigned, unstopped.", "index": 2}]  # fmt: skip
    assert "".join(d.content or "" for d in deltas) == "Hi."


@pytest.mark.parametrize("block", [
    {"type": "tool_use", "id": "toolu_1", "name": False, "input": {}},
    {"type": "tool_use", "id": None, "name": "f", "input": {}},
    {"type": "redacted_thinking", "data": 5},
])  # fmt: skip
def test_a_streamed_block_a_client_could_not_read_is_a_protocol_error(block: Any) -> None:
    """As in a whole answer: relayed, `"name": false` broke the client's SDK mid-stream."""
    translator = ANTHROPIC.stream(chat({}, stream=True))
    with pytest.raises(UpstreamProtocolError):
        translator.feed(thinking_stream(event("content_block_start", index=0, content_block=block)))


def test_a_stream_that_stops_before_it_starts_is_a_protocol_error() -> None:
    """`message_stop` with no `message_start` before it was an empty success to the client
    (a review): no answer began, so none ended."""
    translator = ANTHROPIC.stream(chat({}, stream=True))
    with pytest.raises(UpstreamProtocolError, match="before `message_start`"):
        translator.feed(event("message_stop") + thinking_stream())
    translator = ANTHROPIC.stream(chat({}, stream=True))
    assert translator.feed(thinking_stream()) and translator.done  # in order: served


def test_streamed_thinking_is_bounded_and_must_belong_to_a_block(monkeypatch: Any) -> None:
    from runtime.upstream import anthropic_stream

    monkeypatch.setattr(anthropic_stream, "MAX_HELD", 14)  # "12345" "67890" "c2ln" fit
    tool = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": "0123456789"}}
    for stream, said in [
        (thinking_stream(thinking(0, "12345", "67890"), thinking(1, "x")), "over 14 characters"),
        (thinking_stream(thinking(0, "12345"), event("content_block_start", index=1,
                                                     content_block=tool)), "over 14 characters"),
        (thinking_stream(event("content_block_delta", index=4,
                               delta={"type": "thinking_delta", "thinking": "?"})),
         "never started"),
    ]:  # fmt: skip
        translator = ANTHROPIC.stream(chat({}, stream=True))
        with pytest.raises(UpstreamProtocolError, match=said):
            translator.feed(stream)


def test_upstream_error_event_becomes_an_openai_error_chunk() -> None:
    translator, chunks = translate(fx.ANTHROPIC_STREAM_ERROR, 10, include_usage=False)
    assert chunks == [{"error": {"message": "Overloaded", "type": "overloaded_error",
                                 "code": None, "param": None}}]  # fmt: skip
    assert translator.done and translator.failed  # the relay adds no error of its own
