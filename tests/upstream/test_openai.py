"""The OpenAI-compatible adapter: requests out, answers, errors and streams back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk

from runtime.bundle.money import MAX_TOKENS, Usage
from runtime.upstream import SERVICES
from runtime.upstream.base import Unsupported, UpstreamProtocolError
from runtime.upstream.common import retry_after
from runtime.upstream.openai import OpenAIAdapter, error_body
from tests.upstream import fixtures as fx
from tests.upstream.helpers import call, data_lines, feed_in_pieces

OPENAI = OpenAIAdapter()
SECRETS = {"api_key": fx.FAKE_KEY}


# ---- prepare ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "path"),
    [("chat", "chat/completions"), ("completions", "completions"),
     ("embeddings", "embeddings"), ("responses", "responses")],
)  # fmt: skip
def test_url_per_endpoint_without_double_slashes(endpoint: str, path: str) -> None:
    out = OPENAI.prepare(call(endpoint, base_url="https://api.groq.com/openai/v1/"))
    assert out.method == "POST"
    assert out.url == f"https://api.groq.com/openai/v1/{path}"


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [("bearer", "authorization", f"Bearer {fx.FAKE_KEY}"), ("api-key", "api-key", fx.FAKE_KEY),
     ("x-api-key", "x-api-key", fx.FAKE_KEY)],
)  # fmt: skip
def test_auth_headers(auth: str, header: str, value: str) -> None:
    headers = OPENAI.prepare(call(auth=auth, secrets=SECRETS)).headers
    assert headers[header] == value
    assert {"authorization", "api-key", "x-api-key"} & set(headers) == {header}


def test_no_auth_and_missing_or_unusable_secrets_send_no_credential() -> None:
    for c in (call(auth="none", secrets=SECRETS), call(auth="bearer"),
              call(secrets={"api_key": "sk-test-FAKE\r\nx-injected: 1"})):  # fmt: skip
        headers = OPENAI.prepare(c).headers
        assert not {"authorization", "api-key", "x-api-key", "x-injected"} & set(headers)


def test_a_secret_file_newline_is_trimmed() -> None:
    headers = OPENAI.prepare(call(secrets={"api_key": fx.FAKE_KEY + "\n"})).headers
    assert headers["authorization"] == f"Bearer {fx.FAKE_KEY}"


def test_an_auth_scheme_without_an_implementation_is_501() -> None:
    with pytest.raises(Unsupported) as caught:
        OPENAI.prepare(call(auth="aws-sigv4", secrets=SECRETS))
    assert caught.value.status == 501


def test_organization_and_project_come_from_secrets_never_the_client() -> None:
    secrets = {**SECRETS, "organization": "org-FAKE", "project": "proj_FAKE"}
    headers = OPENAI.prepare(call(secrets=secrets)).headers
    assert headers["openai-organization"] == "org-FAKE"
    assert headers["openai-project"] == "proj_FAKE"
    client = call(secrets=SECRETS, headers={"openai-organization": "org-OTHER"})
    assert "openai-organization" not in OPENAI.prepare(client).headers


def test_mock_controls_travel_only_to_the_mock() -> None:
    headers = {"x-mock-status": "429", "anthropic-version": "2023-06-01"}
    to_mock = OPENAI.prepare(call(service="mock", auth="none", headers=headers)).headers
    assert to_mock["x-mock-status"] == "429" and "anthropic-version" not in to_mock
    assert "x-mock-status" not in OPENAI.prepare(call(service="openai", headers=headers)).headers


def test_body_passes_through_when_not_streaming() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "h\u00e9 \ud800"}], "n": 2}
    out = OPENAI.prepare(call(body=body))
    assert json.loads(out.body) == body  # a lone surrogate survives as an ASCII escape
    assert out.body.isascii()


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_an_anthropic_answer_gave_is_not_sent_to_openai(stream: bool) -> None:
    """A fallback from an Anthropic target: the assistant turn the client sends back carries
    `thinking_blocks` and `reasoning_content` (the gateway's own answer fields), which
    OpenAI-family servers refuse; they are left out, the client's body is not changed."""
    turn = {
        "role": "assistant",
        "content": "Hi",
        "reasoning_content": "Hmm.",
        "thinking_blocks": [{"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"}],
    }
    messages = [{"role": "user", "content": "hi"}, turn, {"role": "user", "content": "and?"}]
    given = call(body={"model": "gpt-4o", "messages": messages}, stream=stream)
    body = json.loads(OpenAIAdapter().prepare(given).body)
    assert body["messages"] == [messages[0], {"role": "assistant", "content": "Hi"}, messages[2]]
    assert "thinking_blocks" in given.body["messages"][1]
    plain = call(body={"model": "gpt-4o", "messages": [messages[0]]}, stream=stream)
    assert json.loads(OpenAIAdapter().prepare(plain).body)["messages"] == [messages[0]]


def test_stream_asks_for_usage_and_keeps_the_clients_options() -> None:
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"x": 1}}
    sent = json.loads(OPENAI.prepare(call(body=body, stream=True)).body)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"x": 1, "include_usage": True}
    assert body["stream_options"] == {"x": 1}  # the caller's body is not mutated


def test_responses_stream_gets_no_stream_options() -> None:
    body = {"model": "m", "input": "hi", "stream": True}
    sent = json.loads(OPENAI.prepare(call("responses", body=body, stream=True)).body)
    assert "stream_options" not in sent


def test_mistral_never_gets_stream_options() -> None:
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    sent = json.loads(
        SERVICES["mistral"].prepare(call(body=body, stream=True, service="mistral")).body
    )
    assert "stream_options" not in sent and sent["stream"] is True


def test_unserved_endpoints() -> None:
    with pytest.raises(Unsupported) as caught:
        OPENAI.prepare(call("messages", service="groq"))
    assert caught.value.status == 400 and "/v1/messages" in caught.value.message
    with pytest.raises(Unsupported):
        OPENAI.prepare(call("embeddings", body={"model": "e", "input": "x"}, stream=True))


def test_a_body_json_cannot_encode_is_a_400() -> None:
    with pytest.raises(Unsupported):
        OPENAI.prepare(call(body={"model": "m", "temperature": float("nan")}))


# ---- Azure --------------------------------------------------------------------------------

AZURE = SERVICES["azure-openai"]
AZURE_BASE = "https://fake-res.openai.azure.com/openai"


def test_azure_deployment_url_api_version_and_key() -> None:
    c = call(base_url=AZURE_BASE, service="azure-openai", auth="api-key", secrets=SECRETS,
             settings={"deployment": "gpt 4o/prod", "api_version": "2024-06-01"})  # fmt: skip
    out = AZURE.prepare(c)
    assert out.url == (
        "https://fake-res.openai.azure.com/openai/deployments/gpt%204o%2Fprod/chat/completions"
        "?api-version=2024-06-01"
    )
    assert out.headers["api-key"] == fx.FAKE_KEY and "authorization" not in out.headers
    assert json.loads(out.body)["model"] == "gpt-4o"  # kept in the body


def test_azure_defaults_deployment_to_the_model_and_a_current_version() -> None:
    out = AZURE.prepare(call("embeddings", body={"model": "text-embedding-3-small", "input": "x"},
                             base_url=AZURE_BASE, service="azure-openai"))  # fmt: skip
    assert out.url == (
        f"{AZURE_BASE}/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21"
    )


def test_azure_responses_are_not_per_deployment() -> None:
    out = AZURE.prepare(call("responses", body={"model": "gpt-4o", "input": "x"},
                             base_url=AZURE_BASE, service="azure-openai"))  # fmt: skip
    assert out.url == f"{AZURE_BASE}/responses?api-version=2025-04-01-preview"


# ---- reply --------------------------------------------------------------------------------


def test_chat_reply_passes_through_with_exact_usage() -> None:
    reply = OPENAI.reply(call(), 200, fx.OPENAI_CHAT, {})
    assert reply.body is fx.OPENAI_CHAT
    assert reply.usage == Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920)
    assert reply.retry_after is None


def test_embeddings_and_responses_usage() -> None:
    assert OPENAI.reply(call("embeddings"), 200, fx.OPENAI_EMBEDDINGS, {}).usage == Usage(8, 0)
    reply = OPENAI.reply(call("responses"), 200, fx.OPENAI_RESPONSE, {})
    assert reply.usage == Usage(input_tokens=32, output_tokens=87, cache_read_tokens=4)


def test_cache_writes_are_counted_apart_and_capped_to_the_prompt() -> None:
    body = b'{"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":30,"cache_write_tokens":50}}}'
    assert OPENAI.reply(call(), 200, body, {}).usage == Usage(20, 5, 30, 50)
    body = b'{"usage":{"input_tokens":100,"output_tokens":5,"input_tokens_details":{"cached_tokens":30,"cache_write_tokens":90}}}'
    assert OPENAI.reply(call("responses"), 200, body, {}).usage == Usage(0, 5, 30, 70)
    body = b'{"usage":{"prompt_tokens":100,"prompt_tokens_details":{"cache_write_tokens":-1}}}'
    with pytest.raises(UpstreamProtocolError):
        OPENAI.reply(call(), 200, body, {})


def test_deepseek_cache_hits_count_as_cached() -> None:
    body = b'{"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_cache_hit_tokens":60,"prompt_cache_miss_tokens":40}}'
    assert OPENAI.reply(call(), 200, body, {}).usage == Usage(40, 5, 60)


def test_no_usage_is_none() -> None:
    assert OPENAI.reply(call(), 200, b'{"choices":[]}', {}).usage is None
    assert OPENAI.reply(call(), 200, b'{"usage":null}', {}).usage is None


@pytest.mark.parametrize(
    "usage",
    [{"prompt_tokens": -1}, {"prompt_tokens": True}, {"prompt_tokens": 1.0},
     {"prompt_tokens": "12"}, {"prompt_tokens": MAX_TOKENS + 1}, {"prompt_tokens": 10**400},
     {"prompt_tokens": 5, "completion_tokens": -3},
     {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 6}},
     {"prompt_tokens": 5, "prompt_tokens_details": []}, {"completion_tokens": 5}, [1, 2]],
)  # fmt: skip
def test_impossible_usage_is_a_protocol_error(usage: Any) -> None:
    body = json.dumps({"usage": usage}).encode()
    with pytest.raises(UpstreamProtocolError, match="usage"):
        OPENAI.reply(call(), 200, body, {})


def test_usage_at_the_bound_is_accepted() -> None:
    body = json.dumps({"usage": {"prompt_tokens": MAX_TOKENS, "completion_tokens": 0}}).encode()
    assert OPENAI.reply(call(), 200, body, {}).usage == Usage(MAX_TOKENS, 0)


@pytest.mark.parametrize(
    "body", [b"", b"<html>502 Bad Gateway</html>", b"[1,2]", b"\xff\xfe", b"[" * 100_000,
             b'{"a":' + b"9" * 5000 + b"}"],
)  # fmt: skip
def test_garbage_2xx_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        OPENAI.reply(call(), 200, body, {})


# ---- errors -------------------------------------------------------------------------------


def test_openai_shaped_error_is_relayed_as_portkey_does() -> None:
    """Its fields kept, its message prefixed with the service, `provider` beside it (what
    clients written against Portkey's gateway read)."""
    reply = OPENAI.reply(call(), 429, fx.OPENAI_RATE_LIMITED, {"retry-after": "2"})
    assert (reply.status, reply.usage, reply.retry_after) == (429, None, 2.0)
    upstream = json.loads(fx.OPENAI_RATE_LIMITED)["error"]
    assert json.loads(reply.body) == {
        "error": {"message": f"openai error: {upstream['message']}", "type": upstream["type"],
                  "param": upstream["param"], "code": upstream["code"]},
        "provider": "openai",
    }  # fmt: skip


def test_an_error_echoing_the_key_is_scrubbed() -> None:
    reply = OPENAI.reply(call(secrets=SECRETS), 401, fx.OPENAI_BAD_KEY, {})
    assert fx.FAKE_KEY.encode() not in reply.body
    assert json.loads(reply.body)["error"]["code"] == "invalid_api_key"


def test_other_errors_are_wrapped_in_openai_shape() -> None:
    page = OPENAI.reply(
        call(service="vllm"), 503, b"<html><body>\n upstream\x00 down</body></html>", {}
    )
    error = json.loads(page.body)["error"]
    assert page.status == 503
    assert error["type"] == "api_error" and error["param"] is None
    assert (
        error["message"]
        == "upstream `vllm` answered HTTP 503: <html><body> upstream down</body></html>"
    )
    mistral = json.loads(OPENAI.reply(call(service="mistral"), 422, fx.MISTRAL_422, {}).body)
    assert "extra_forbidden" in mistral["error"]["message"]
    assert mistral["error"]["type"] == "invalid_request_error"


def test_a_bare_string_error_gets_the_full_shape() -> None:
    reply = OPENAI.reply(call(service="ollama"), 404, b'{"error":"model \'llama9\' not found"}', {})
    error = json.loads(reply.body)["error"]
    assert error["message"] == "upstream `ollama` answered HTTP 404: model 'llama9' not found"
    assert (error["type"], error["param"]) == ("not_found_error", None)


def test_error_body_shape() -> None:
    assert json.loads(error_body(404, "no such model", code="model_not_found")) == {
        "error": {"message": "no such model", "type": "not_found_error",
                  "code": "model_not_found", "param": None}}  # fmt: skip


def test_retry_after_forms_and_bounds() -> None:
    now = 1_700_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}, now) == 1.5
    assert retry_after({"retry-after": date}, now) == 30.0
    assert retry_after({"retry-after": "0.25"}, now) == 0.25
    assert retry_after({"retry-after": "-5"}, now) == 0.0
    assert retry_after({"retry-after": "1e12"}, now) == 86_400.0
    for junk in ("soon", "nan", "inf", "9" * 500, "Wed, 99 Foo 2015 07:28:00 GMT"):
        assert retry_after({"retry-after": junk}, now) is None
    assert retry_after({}, now) is None


# ---- streams ------------------------------------------------------------------------------


def test_stream_relayed_byte_for_byte_when_the_client_asked_for_usage() -> None:
    translator = OPENAI.stream(call(stream=True, include_usage=True))
    assert feed_in_pieces(translator, fx.OPENAI_STREAM, 4096) == fx.OPENAI_STREAM
    assert translator.done
    assert translator.usage == Usage(19, 3)


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_the_usage_chunk_we_asked_for_is_removed(size: int) -> None:
    translator = OPENAI.stream(call(stream=True))
    out = feed_in_pieces(translator, fx.OPENAI_STREAM, size)
    assert out == b"".join(fx.OPENAI_STREAM_EVENTS) + fx.OPENAI_DONE
    assert translator.usage == Usage(19, 3) and translator.done
    for chunk in data_lines(out)[:-1]:
        ChatCompletionChunk.model_validate(chunk)


def test_usage_beside_choices_is_kept_and_counted() -> None:
    translator = SERVICES["mistral"].stream(call(stream=True, service="mistral"))
    assert feed_in_pieces(translator, fx.MISTRAL_STREAM, 50) == fx.MISTRAL_STREAM
    assert translator.usage == Usage(10, 2)


def test_usage_we_asked_for_on_a_content_chunk_is_taken_off_it() -> None:
    """Some OpenAI-compatible servers answer `include_usage` on the last content chunk, not
    a chunk of its own: that usage reached a client that never asked for it."""
    last = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
            b'"choices":[{"index":0,'
            b'"delta":{"content":"!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,'
            b'"completion_tokens":2,"total_tokens":10}}\n\n')  # fmt: skip
    for asked in (False, True):
        translator = OPENAI.stream(call(stream=True, service="vllm", include_usage=asked))
        out = translator.feed(last + fx.OPENAI_DONE)
        assert translator.usage == Usage(8, 2) and translator.done
        chunk = ChatCompletionChunk.model_validate(data_lines(out)[0])
        assert chunk.choices[0].delta.content == "!"
        assert (chunk.usage is not None) == asked and (out == last + fx.OPENAI_DONE) == asked


def test_groq_usage_beside_a_null_usage_is_counted() -> None:
    translator = OPENAI.stream(call(stream=True, service="groq"))
    chunk = (
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{},"finish_reason":"stop"}],"usage":null,"x_groq":{"id":"req_01","usage":'
        b'{"queue_time":0.02,"prompt_tokens":24,"prompt_time":0.001,"completion_tokens":7,'
        b'"completion_time":0.01,"total_tokens":31,"total_time":0.011}}}\n\n'
    )
    assert translator.feed(chunk) == chunk
    assert translator.usage == Usage(24, 7)


def test_nothing_after_done_and_no_done_without_the_terminal_event() -> None:
    translator = OPENAI.stream(call(stream=True, include_usage=True))
    assert translator.feed(fx.OPENAI_STREAM[: -len(fx.OPENAI_DONE)]) and not translator.done
    assert translator.feed(fx.OPENAI_DONE + b'data: {"late": 1}\n\n') == fx.OPENAI_DONE
    assert translator.feed(b"data: more\n\n") == b""


def test_keep_alive_comments_are_relayed() -> None:
    translator = OPENAI.stream(call(stream=True))
    assert translator.feed(b": OPENROUTER PROCESSING\n\n") == b": OPENROUTER PROCESSING\n\n"


def test_a_broken_usage_chunk_is_a_protocol_error() -> None:
    translator = OPENAI.stream(call(stream=True))
    with pytest.raises(UpstreamProtocolError):
        translator.feed(b'data: {"choices":[],"usage":{"prompt_tokens":-4}}\n\n')
    with pytest.raises(UpstreamProtocolError):
        OPENAI.stream(call(stream=True)).feed(b'data: {"usage": oops\n\n')


def test_responses_stream_ends_on_its_terminal_event() -> None:
    translator = OPENAI.stream(call("responses", stream=True))
    assert feed_in_pieces(translator, fx.RESPONSES_STREAM, 33) == fx.RESPONSES_STREAM
    assert translator.done
    assert translator.usage == Usage(32, 11, 5)


def test_responses_text_mentioning_the_terminal_event_does_not_end_it() -> None:
    translator = OPENAI.stream(call("responses", stream=True))
    cut = fx.RESPONSES_STREAM.index(b"event: response.completed")
    unnamed = fx.RESPONSES_STREAM[:cut].replace(b"event: response.output_text.delta\n", b"")
    translator.feed(unnamed)
    assert not translator.done and translator.usage is None


def test_error_event_is_openai_shaped_sse() -> None:
    event = OPENAI.stream(call(stream=True)).error_event(502, "upstream closed the stream")
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    assert data_lines(event) == [{"error": {"message": "upstream closed the stream",
                                            "type": "api_error", "code": None, "param": None}}]  # fmt: skip
