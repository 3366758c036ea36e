"""Usage by cache TTL (Anthropic's `cache_creation` split) and the service tier an OpenAI
answer reports (issue 15): parsed whole and streamed, bounded like every count."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.bundle.money import Usage
from runtime.upstream import SERVICES
from runtime.upstream.base import Call, UpstreamProtocolError
from tests.upstream.helpers import call, feed_in_pieces

ANTHROPIC = SERVICES["anthropic"]
OPENAI = SERVICES["openai"]
SPLIT: dict[str, Any] = {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 3,
         "cache_creation_input_tokens": 600,
         "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 500}}  # fmt: skip


def messages(**fields: Any) -> Call:
    return call("messages", {"model": "m", "max_tokens": 9, "messages": []},
                service="anthropic", auth="x-api-key", **fields)  # fmt: skip


def message(usage: Any) -> bytes:
    return json.dumps({"type": "message", "role": "assistant", "content": [],
                       "stop_reason": "end_turn", "usage": usage}).encode()  # fmt: skip


def test_one_hour_writes_are_apart_from_five_minute_writes() -> None:
    reply = ANTHROPIC.reply(messages(), 200, message(SPLIT), {})
    assert reply.usage == Usage(10, 7, 3, cache_write_tokens=100, cache_write_1h_tokens=500)
    assert reply.usage is not None and reply.usage.tokens == 620


def test_without_the_split_every_write_is_a_five_minute_write() -> None:
    plain = {k: v for k, v in SPLIT.items() if k != "cache_creation"}
    assert ANTHROPIC.reply(messages(), 200, message(plain), {}).usage == Usage(10, 7, 3, 600)


def test_only_the_split_reported() -> None:
    only = {"input_tokens": 1, "output_tokens": 1, "cache_creation": SPLIT["cache_creation"]}
    assert ANTHROPIC.reply(messages(), 200, message(only), {}).usage == Usage(1, 1, 0, 100, 500)


def test_a_one_hour_count_above_the_total_is_capped() -> None:
    odd = {**SPLIT, "cache_creation": {"ephemeral_1h_input_tokens": 900}}
    assert ANTHROPIC.reply(messages(), 200, message(odd), {}).usage == Usage(10, 7, 3, 0, 600)


@pytest.mark.parametrize("bad", [-1, 1.5, "9", True, 10**10])
def test_a_bad_split_count_is_a_protocol_error(bad: object) -> None:
    broken = {**SPLIT, "cache_creation": {"ephemeral_1h_input_tokens": bad}}
    with pytest.raises(UpstreamProtocolError):
        ANTHROPIC.reply(messages(), 200, message(broken), {})


@pytest.mark.parametrize("size", [1, 17, 4096])
def test_the_split_streamed(size: int) -> None:
    start = {"type": "message_start", "message": {"usage": {**SPLIT, "output_tokens": 1}}}
    delta = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 42}}
    stream = b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode()
        for e in (start, delta, {"type": "message_stop"})
    )
    translator = ANTHROPIC.stream(messages(stream=True))
    assert feed_in_pieces(translator, stream, size) == stream
    assert translator.usage == Usage(10, 42, 3, 100, 500)


@pytest.mark.parametrize(
    ("reported", "tier"),
    [("flex", "flex"), ("priority", "priority"), ("default", "default"), ("scale", "default"),
     (None, None), (3, None)],
)  # fmt: skip
def test_openai_service_tier_is_kept_with_the_usage(reported: object, tier: str | None) -> None:
    answer: dict[str, Any] = {"object": "chat.completion", "choices": [],
              "usage": {"prompt_tokens": 5, "completion_tokens": 2}}  # fmt: skip
    if reported is not None:
        answer["service_tier"] = reported
    reply = OPENAI.reply(call(), 200, json.dumps(answer).encode(), {})
    assert reply.usage is not None and reply.usage.service_tier == tier


def test_openai_service_tier_streamed() -> None:
    chunk = {"object": "chat.completion.chunk", "choices": [], "service_tier": "flex",
             "usage": {"prompt_tokens": 5, "completion_tokens": 2}}  # fmt: skip
    translator = OPENAI.stream(call(stream=True, include_usage=True))
    translator.feed(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())
    assert translator.usage is not None and translator.usage.service_tier == "flex"
