"""The Anthropic adapter for Anthropic clients (/v1/messages): pass-through, metered."""

from __future__ import annotations

import json

import pytest

from runtime.bundle.money import Usage
from runtime.upstream import SERVICES
from runtime.upstream.anthropic import error_body
from runtime.upstream.base import Unsupported, UpstreamProtocolError
from tests.upstream import fixtures as fx
from tests.upstream.helpers import call, feed_in_pieces

ANTHROPIC = SERVICES["anthropic"]
BODY = {"model": "claude-sonnet-4-20250514", "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Weather in SF?"}]}  # fmt: skip


def native(**fields: object) -> object:
    fields.setdefault("service", "anthropic")
    fields.setdefault("auth", "x-api-key")
    fields.setdefault("base_url", "https://api.anthropic.com/v1")
    return call("messages", dict(BODY), **fields)


def test_prepare_headers_and_url() -> None:
    out = ANTHROPIC.prepare(native(secrets={"api_key": fx.ANTHROPIC_KEY},
                                   headers={"anthropic-beta": "prompt-caching-2024-07-31"}))  # fmt: skip
    assert out.url == "https://api.anthropic.com/v1/messages"
    assert out.headers["x-api-key"] == fx.ANTHROPIC_KEY
    assert out.headers["anthropic-version"] == "2023-06-01"
    assert out.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert "authorization" not in out.headers
    assert json.loads(out.body) == BODY


def test_anthropic_version_from_client_then_settings() -> None:
    client = native(
        headers={"anthropic-version": "2024-01-01"}, settings={"anthropic_version": "x"}
    )
    assert ANTHROPIC.prepare(client).headers["anthropic-version"] == "2024-01-01"
    setting = native(settings={"anthropic_version": "2023-01-01"})
    assert ANTHROPIC.prepare(setting).headers["anthropic-version"] == "2023-01-01"


def test_streaming_request_says_so() -> None:
    assert json.loads(ANTHROPIC.prepare(native(stream=True)).body)["stream"] is True


@pytest.mark.parametrize("endpoint", ["completions", "embeddings", "responses"])
def test_other_openai_endpoints_are_refused_by_name(endpoint: str) -> None:
    with pytest.raises(Unsupported) as caught:
        ANTHROPIC.prepare(call(endpoint, service="anthropic"))
    assert caught.value.status == 400 and f"/v1/{endpoint}" in caught.value.message


def test_reply_passes_through_with_cache_usage() -> None:
    reply = ANTHROPIC.reply(native(), 200, fx.ANTHROPIC_MESSAGE, {})
    assert reply.body is fx.ANTHROPIC_MESSAGE
    assert reply.usage == Usage(472, 89, cache_read_tokens=2048, cache_write_tokens=1024)


def test_garbage_and_impossible_usage_are_protocol_errors() -> None:
    for body in (b"nope", b'{"usage":{"input_tokens":-1}}', b'{"usage":{"output_tokens":"3"}}',
                 b'{"usage":{"input_tokens":1,"cache_read_input_tokens":1.5}}'):  # fmt: skip
        with pytest.raises(UpstreamProtocolError):
            ANTHROPIC.reply(native(), 200, body, {})


def test_errors_pass_through_or_are_wrapped_in_anthropic_shape() -> None:
    reply = ANTHROPIC.reply(native(), 429, fx.ANTHROPIC_RATE_LIMITED, {"retry-after": "17"})
    assert (reply.status, reply.body, reply.retry_after) == (429, fx.ANTHROPIC_RATE_LIMITED, 17.0)
    wrapped = ANTHROPIC.reply(native(), 502, b"Bad Gateway", {})
    assert json.loads(wrapped.body) == {"type": "error", "error": {
        "type": "api_error", "message": "upstream `anthropic` answered HTTP 502: Bad Gateway"}}  # fmt: skip


def test_an_error_echoing_the_key_is_scrubbed() -> None:
    body = (
        b'{"type":"error","error":{"type":"authentication_error","message":"bad key '
        + fx.ANTHROPIC_KEY.encode()
        + b'"}}'
    )
    reply = ANTHROPIC.reply(native(secrets={"api_key": fx.ANTHROPIC_KEY}), 401, body, {})
    assert fx.ANTHROPIC_KEY.encode() not in reply.body
    assert json.loads(reply.body)["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("size", [1, 13, 4096])
def test_stream_relayed_unchanged_and_metered(size: int) -> None:
    translator = ANTHROPIC.stream(native(stream=True))
    assert feed_in_pieces(translator, fx.ANTHROPIC_STREAM, size) == fx.ANTHROPIC_STREAM
    assert translator.done
    assert translator.usage == Usage(472, 89, cache_read_tokens=2000, cache_write_tokens=100)


def test_usage_is_known_before_the_end() -> None:
    translator = ANTHROPIC.stream(native(stream=True))
    translator.feed(fx.ANTHROPIC_STREAM[: fx.ANTHROPIC_STREAM.index(b"event: content_block_start")])
    assert translator.usage == Usage(472, 2, 2000, 100) and not translator.done


def test_later_message_delta_counts_win() -> None:
    translator = ANTHROPIC.stream(native(stream=True))
    translator.feed(
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"input_tokens":12,"cache_read_input_tokens":3,"output_tokens":40}}\n\n'
    )
    assert translator.usage == Usage(12, 40, 3, 0)


def test_upstream_error_event_is_relayed_and_ends_the_stream_as_failed() -> None:
    translator = ANTHROPIC.stream(native(stream=True))
    assert translator.feed(fx.ANTHROPIC_STREAM_ERROR) == fx.ANTHROPIC_STREAM_ERROR
    assert translator.done and translator.failed and translator.usage is None
    assert translator.feed(fx.ANTHROPIC_STREAM) == b""  # nothing after it is relayed


def test_error_event_and_body_in_anthropic_shape() -> None:
    event = ANTHROPIC.stream(native(stream=True)).error_event(504, "upstream timed out")
    name, data, blank = event.split(b"\n", 2)
    assert name == b"event: error" and blank == b"\n"
    assert json.loads(data[6:]) == {"type": "error", "error": {"type": "timeout_error",
                                                               "message": "upstream timed out"}}  # fmt: skip
    assert json.loads(error_body(529, "busy")) == {"type": "error", "error": {
        "type": "overloaded_error", "message": "busy"}}  # fmt: skip
