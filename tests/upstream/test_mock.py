"""The in-process mock upstream, driven through the OpenAI adapter as the gateway drives it."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response as ResponsesResponse

from runtime.bundle.money import Usage
from runtime.upstream import adapter_for, mock
from runtime.upstream.base import Call, Outbound, Reply, StreamTranslator
from runtime.upstream.mock import MockResponse, MockUpstream
from tests.upstream.helpers import call, data_lines

ADAPTER = adapter_for("mock")
MESSAGES = [
    {"role": "system", "content": "You echo."},
    {"role": "user", "content": [{"type": "text", "text": "first question"}]},
    {"role": "assistant", "content": "an answer"},
    {"role": "user", "content": "hello  brave\nnew world"},
]  # 2 + 2 + 2 + 4 = 10 words


def mock_call(endpoint: str = "chat", body: dict[str, Any] | None = None, **fields: Any) -> Call:
    body = body if body is not None else {"model": "echo", "messages": MESSAGES}
    fields.setdefault("base_url", "mock://local/v1")
    return call(endpoint, body, service="mock", auth="none", **fields)


async def send(c: Call, config: dict[str, str] | None = None) -> MockResponse:
    return await MockUpstream().send(ADAPTER.prepare(c), config or {})


def whole(c: Call, config: dict[str, str] | None = None) -> Reply:
    async def run() -> Reply:
        response = await send(c, config)
        return ADAPTER.reply(c, response.status, await response.read(1 << 26), response.headers)

    return asyncio.run(run())


def streamed(c: Call, config: dict[str, str] | None = None) -> tuple[StreamTranslator, bytes, int]:
    async def run() -> tuple[StreamTranslator, bytes, int]:
        response = await send(c, config)
        assert response.status == 200
        assert response.headers["content-type"] == "text/event-stream"
        translator, out, count = ADAPTER.stream(c), b"", 0
        async for chunk in response.chunks():
            count += 1
            out += translator.feed(chunk)
        return translator, out + (translator.finish() if translator.done else b""), count

    return asyncio.run(run())


# ---- chat ---------------------------------------------------------------------------------


def test_chat_echoes_the_last_user_message_with_exact_usage() -> None:
    reply = whole(mock_call())
    completion = ChatCompletion.model_validate_json(reply.body)
    assert completion.choices[0].message.content == "echo: hello  brave\nnew world"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "echo"
    assert reply.usage == Usage(10, 5)
    assert completion.usage is not None and completion.usage.total_tokens == 15


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_chat_is_cut_to_max_tokens(field: str) -> None:
    reply = whole(mock_call(body={"model": "echo", "messages": MESSAGES, field: 3}))
    choice = json.loads(reply.body)["choices"][0]
    assert choice["message"]["content"] == "echo: hello  brave"
    assert choice["finish_reason"] == "length"
    assert reply.usage == Usage(10, 3)


def test_the_same_request_gets_the_same_bytes() -> None:
    assert whole(mock_call()).body == whole(mock_call()).body
    other = mock_call(body={"model": "echo", "messages": [{"role": "user", "content": "x"}]})
    assert json.loads(whole(other).body)["id"] != json.loads(whole(mock_call()).body)["id"]


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_stream_one_chunk_per_word(include_usage: bool) -> None:
    translator, out, count = streamed(mock_call(stream=True, include_usage=include_usage))
    chunks = data_lines(out)
    assert chunks[-1] == "[DONE]" and translator.done
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks[:-1]]
    assert parsed[0].choices[0].delta.role == "assistant"
    words = [c.choices[0].delta.content for c in parsed[1:6]]
    assert words == ["echo:", " hello", "  brave", "\nnew", " world"]
    assert parsed[6].choices[0].finish_reason == "stop"
    # the adapter asked the mock for usage; the client sees it only if it asked too
    assert translator.usage == Usage(10, 5)
    assert count == 9  # role, 5 words, finish, usage, [DONE]: the mock always got usage
    assert len(parsed) == (8 if include_usage else 7)
    if include_usage:
        assert parsed[-1].choices == [] and parsed[-1].usage is not None


def test_cut_after_stops_without_a_terminal_event() -> None:
    translator, out, count = streamed(mock_call(stream=True, headers={"x-mock-cut-after": "3"}))
    assert count == 3 and not translator.done and translator.usage is None
    assert b"[DONE]" not in out
    # past the last chunk the terminal event still never comes, but the usage chunk does
    translator, _, count = streamed(mock_call(stream=True), {"cut_after": "1000"})
    assert count == 8 and not translator.done and translator.usage == Usage(10, 5)


def test_chunk_and_latency_delays_are_slept(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(mock.asyncio, "sleep", sleep)
    streamed(mock_call(stream=True, headers={"x-mock-chunk-ms": "20"}), {"latency_ms": "1500"})
    assert slept == [1.5] + [0.02] * 8  # before answering, then between the 9 chunks


def test_closing_the_response_stops_the_chunks() -> None:
    async def run() -> int:
        response = await send(mock_call(stream=True))
        count = 0
        async for _ in response.chunks():
            count += 1
            if count == 2:
                response.close()
        return count

    assert asyncio.run(run()) == 2


def test_read_is_bounded() -> None:
    async def run() -> None:
        response = await send(mock_call())
        with pytest.raises(ValueError):
            await response.read(10)

    asyncio.run(run())


# ---- completions, embeddings, responses ---------------------------------------------------


def test_completions_whole_and_streamed() -> None:
    body = {"model": "echo", "prompt": ["one two", "say this please"], "max_tokens": 2}
    reply = whole(mock_call("completions", body))
    choice = json.loads(reply.body)["choices"][0]
    assert (choice["text"], choice["finish_reason"]) == ("echo: say", "length")
    assert reply.usage == Usage(5, 2)
    translator, out, _ = streamed(mock_call("completions", body, stream=True))
    texts = [c["choices"][0]["text"] for c in data_lines(out)[:-1]]
    assert texts == ["echo:", " say", ""] and translator.usage == Usage(5, 2)


@pytest.mark.parametrize("encoding", [None, "float", "base64"])
def test_embeddings_are_deterministic_vectors(encoding: str | None) -> None:
    body: dict[str, Any] = {"model": "embed", "input": ["a b c", "d"]}
    if encoding:
        body["encoding_format"] = encoding
    reply = whole(mock_call("embeddings", body))
    assert reply.usage == Usage(4, 0)
    answer = json.loads(reply.body)
    if encoding == "base64":  # what the openai SDK asks for by default, and decodes so
        for item in answer["data"]:
            item["embedding"] = list(struct.unpack("<8f", base64.b64decode(item["embedding"])))
    vectors = [d.embedding for d in CreateEmbeddingResponse.model_validate(answer).data]
    assert vectors == [mock.answers.vector_of("a b c"), mock.answers.vector_of("d")]
    assert len(vectors[0]) == 8 and all(-1 <= x < 1 for x in vectors[0])


def test_n_and_stop_are_answered_as_openai_would() -> None:
    """The mock answered one choice for `n: 2`, and echoed past a `stop` sequence (a review:
    "answers like an OpenAI server would" was quietly not so)."""
    body = {"model": "echo", "messages": MESSAGES, "n": 3, "stop": ["new", "zzz"]}
    reply = whole(mock_call(body=body))
    completion = ChatCompletion.model_validate_json(reply.body)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert {c.message.content for c in completion.choices} == {"echo: hello  brave"}
    assert reply.usage == Usage(10, 9)  # three choices of three words
    translator, out, _ = streamed(mock_call(body=body, stream=True, include_usage=True))
    merged: dict[int, str] = {}
    for chunk in data_lines(out)[:-1]:
        for choice in chunk["choices"]:
            merged[choice["index"]] = merged.get(choice["index"], "") + (
                choice["delta"].get("content") or ""
            )
    assert merged == dict.fromkeys(range(3), "echo: hello  brave")
    assert translator.usage == Usage(10, 9)
    completions = whole(mock_call("completions", {"model": "echo", "prompt": "a b c", "n": 2,
                                                  "stop": " b"}))  # fmt: skip
    assert [c["text"] for c in json.loads(completions.body)["choices"]] == ["echo: a"] * 2


@pytest.mark.parametrize("body", [{"n": 0}, {"n": 129}, {"n": True}, {"stop": [""]},
                                  {"stop": ["a"] * 5}, {"stop": 3}])  # fmt: skip
def test_n_and_stop_out_of_bounds_are_400(body: dict[str, Any]) -> None:
    reply = whole(mock_call(body={"model": "echo", "messages": MESSAGES, **body}))
    assert reply.status == 400


@pytest.mark.parametrize(("given", "texts", "tokens"), [
    ([1, 2, 3], ["1 2 3"], 3),
    ([[1, 2], [3]], ["1 2", "3"], 3),
])  # fmt: skip
def test_embeddings_take_token_ids_and_dimensions(
    given: Any, texts: list[str], tokens: int
) -> None:
    reply = whole(mock_call("embeddings", {"model": "embed", "input": given, "dimensions": 40}))
    data = json.loads(reply.body)["data"]
    assert [d["embedding"] for d in data] == [mock.answers.vector_of(t, 40) for t in texts]
    assert len(data[0]["embedding"]) == 40 and reply.usage == Usage(tokens, 0)
    assert mock.answers.vector_of("x", 40)[:8] == mock.answers.vector_of("x")  # as before
    for bad in ({"dimensions": 0}, {"dimensions": 3073}, {"input": [1, "a"]}, {"input": [[]]}):
        assert whole(mock_call("embeddings", {"model": "embed", "input": "a", **bad})).status == 400


def test_responses_whole_and_streamed() -> None:
    body = {"model": "echo", "instructions": "be kind", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "why is the sky"}]}]}  # fmt: skip
    reply = whole(mock_call("responses", body))
    response = ResponsesResponse.model_validate_json(reply.body)
    assert response.output_text == "echo: why is the sky" and response.status == "completed"
    assert reply.usage == Usage(6, 5)
    translator, out, _ = streamed(
        mock_call("responses", {**body, "max_output_tokens": 2}, stream=True)
    )
    events = data_lines(out)
    assert [e["type"] for e in events][-1] == "response.incomplete"
    assert (
        "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        == "echo: why"
    )
    assert translator.done and translator.usage == Usage(6, 2)


# ---- controls and hostile input -----------------------------------------------------------


def test_status_control_answers_an_openai_error_with_retry_after() -> None:
    reply = whole(mock_call(headers={"x-mock-status": "429", "x-mock-retry-after": "7"}))
    assert (reply.status, reply.retry_after, reply.usage) == (429, 7.0, None)
    error = json.loads(reply.body)["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "mock_status"
    assert whole(mock_call(), {"status": "503"}).status == 503


def test_headers_override_settings() -> None:
    assert whole(mock_call(headers={"x-mock-status": "200"}), {"status": "500"}).status == 200


@pytest.mark.parametrize(
    ("header", "value"),
    [("x-mock-latency-ms", "60001"), ("x-mock-latency-ms", "-1"), ("x-mock-status", "99"),
     ("x-mock-status", "600"), ("x-mock-chunk-ms", "1e3"), ("x-mock-cut-after", "١٢"),
     ("x-mock-retry-after", "soon"), ("x-mock-status", "9" * 5000)],
)  # fmt: skip
def test_controls_out_of_bounds_are_400(header: str, value: str) -> None:
    reply = whole(mock_call(headers={header: value}))
    assert reply.status == 400
    assert header in json.loads(reply.body)["error"]["message"]


@pytest.mark.parametrize(
    "outbound",
    [Outbound("POST", "mock://local/v1/chat/completions", {}, b"not json"),
     Outbound("POST", "mock://local/v1/chat/completions", {}, b"[1]"),
     Outbound("POST", "mock://local/v1/chat/completions", {}, b"[" * 100_000),
     Outbound("GET", "mock://local/v1/chat/completions", {}, b"{}"),
     Outbound("POST", "mock://local/v1/chat/completions", {}, b'{"messages": "hi"}'),
     Outbound("POST", "mock://local/v1/chat/completions", {}, b'{"messages": [{"content": 5}]}'),
     Outbound("POST", "mock://local/v1/chat/completions", {}, b'{"messages": [{"role": "user"}], "max_tokens": -1}'),
     Outbound("POST", "mock://local/v1/embeddings", {}, b'{"input": [1, "a"]}'),
     Outbound("POST", "mock://local/v1/embeddings", {}, b'{"input": "x", "encoding_format": "int8"}')],
)  # fmt: skip
def test_garbage_requests_are_400_openai_errors(outbound: Outbound) -> None:
    response = asyncio.run(MockUpstream().send(outbound, {}))
    assert response.status == 400
    assert set(json.loads(asyncio.run(response.read(1 << 20)))["error"]) == {
        "message",
        "type",
        "code",
        "param",
    }


def test_an_unknown_path_is_404() -> None:
    out = Outbound("POST", "mock://local/v1/images/generations", {}, b"{}")
    assert asyncio.run(MockUpstream().send(out, {})).status == 404


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200)
@given(
    st.sampled_from(["chat/completions", "completions", "embeddings", "responses", "x"]),
    st.dictionaries(
        st.sampled_from(
            [
                "model",
                "messages",
                "prompt",
                "input",
                "stream",
                "max_tokens",
                "instructions",
                "stream_options",
            ]
        ),
        _json,
    ),
    st.dictionaries(
        st.sampled_from(sorted(h for h, _, _ in mock.CONTROLS.values())), st.text(max_size=6)
    ),
)
def test_the_mock_never_raises(path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    headers.pop("x-mock-latency-ms", None)
    headers.pop("x-mock-chunk-ms", None)
    out = Outbound("POST", f"mock://local/v1/{path}", headers, json.dumps(body).encode())

    async def run() -> None:
        response = await MockUpstream().send(out, {})
        assert 100 <= response.status <= 599
        async for chunk in response.chunks():
            assert isinstance(chunk, bytes)

    asyncio.run(run())


def test_the_mock_s_answers_are_bounded_whatever_is_asked() -> None:
    """A review: `n: 128` over a long prompt made 122 MB of stream built in one go (the
    worker answered nothing else for 13 s), and embeddings of many inputs at 3,072
    dimensions held 1.8 GB: each answer is built whole, so what multiplies the client's
    input is bounded (one echo is the input's own size)."""
    long = " ".join(["word"] * 20_000)
    body = {"model": "echo", "messages": [{"role": "user", "content": long}], "n": 128}
    reply = whole(mock_call(body=body))
    choices = json.loads(reply.body)["choices"]
    assert len(choices) == 128 and {c["finish_reason"] for c in choices} == {"length"}
    assert reply.usage is not None and reply.usage.output_tokens == 128 * (16_384 // 128)
    alone = whole(mock_call(body={"model": "echo", "messages": body["messages"]}))
    assert alone.usage is not None and alone.usage.output_tokens == 20_001  # the input's size
    too_many = {"model": "embed", "input": ["a"] * 2_049}
    assert whole(mock_call("embeddings", too_many)).status == 400
    too_wide = {"model": "embed", "input": ["a"] * 400, "dimensions": 3_072}
    assert whole(mock_call("embeddings", too_wide)).status == 400
    assert whole(mock_call("embeddings", {**too_wide, "dimensions": 2_048})).status == 200
