"""Laws of the Chat Completions <-> Messages translation, on any input: a hostile upstream
stream or a hostile client body ends in a typed refusal, never another exception; and
thinking, however it is split, reaches the client whole and goes back unchanged."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk

from runtime.bundle.money import Usage
from runtime.upstream import SERVICES
from runtime.upstream.anthropic_request import to_messages
from runtime.upstream.anthropic_wire import Meter, usage_of
from runtime.upstream.base import Unsupported, UpstreamProtocolError
from tests.upstream.helpers import call, data_lines, feed_in_pieces

ANTHROPIC = SERVICES["anthropic"]
KINDS = ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
         "message_delta", "message_stop", "ping", "error"]  # fmt: skip
BLOCKS = ["text", "thinking", "redacted_thinking", "tool_use", "server_tool_use", None, 3]
DELTAS = ["text_delta", "thinking_delta", "signature_delta", "input_json_delta", None]
junk = st.one_of(st.none(), st.booleans(), st.integers(-2, 5), st.text(max_size=6),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                     st.integers(), max_size=2))  # fmt: skip


@st.composite
def events(draw: Any) -> bytes:
    out = []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(KINDS))
        body: dict[str, Any] = {"type": kind, "index": draw(st.one_of(st.integers(0, 3), junk))}
        if kind == "content_block_start":
            body["content_block"] = {"type": draw(st.sampled_from(BLOCKS)), "text": draw(junk),
                                     "thinking": draw(junk), "signature": draw(junk),
                                     "data": draw(junk), "id": draw(junk), "name": draw(junk),
                                     "input": draw(junk)}  # fmt: skip
        elif kind == "content_block_delta":
            body["delta"] = {"type": draw(st.sampled_from(DELTAS)), "text": draw(junk),
                             "thinking": draw(junk), "signature": draw(junk),
                             "partial_json": draw(junk)}  # fmt: skip
        elif kind in ("message_start", "message_delta"):
            body["message"] = {"id": draw(junk), "model": draw(junk), "usage": draw(junk)}
            body["usage"] = draw(junk)
            body["delta"] = {"stop_reason": draw(junk)}
        out.append(f"event: {kind}\ndata: {json.dumps(body)}\n\n".encode())
    return b"".join(out)


@settings(max_examples=300, deadline=None)
@given(events(), st.integers(1, 64), st.booleans(), st.booleans())
def test_any_upstream_stream_is_translated_or_refused_as_a_protocol_error(
    stream: bytes, size: int, native: bool, include_usage: bool
) -> None:
    endpoint = "messages" if native else "chat"
    translator = ANTHROPIC.stream(call(endpoint, {"model": "m", "messages": []}, stream=True,
                                       service="anthropic", include_usage=include_usage))  # fmt: skip
    try:
        out = feed_in_pieces(translator, stream, size)
    except UpstreamProtocolError:
        return
    for payload in data_lines(out):  # what the client gets is JSON a client can read
        if not native and payload != "[DONE]" and "error" not in payload:
            ChatCompletionChunk.model_validate(payload)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["role", "content", "thinking_blocks", "tool_calls",
                                        "reasoning_content"]),
                       st.one_of(junk, st.just("assistant"), st.lists(st.fixed_dictionaries({
                           "type": st.sampled_from(["thinking", "redacted_thinking", "text",
                                                    "refusal"]),
                           "thinking": junk, "signature": junk, "data": junk, "text": junk})))))  # fmt: skip
def test_any_assistant_turn_is_translated_or_refused_with_a_400(message: dict[str, Any]) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}, message]}
    try:
        to_messages(body, {}, stream=False)
    except Unsupported as refused:
        assert refused.status == 400


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60), st.lists(st.integers(1, 20), max_size=8),
       st.text(max_size=20), st.integers(1, 50))  # fmt: skip
def test_thinking_split_anyhow_arrives_whole_and_goes_back_unchanged(
    text: str, cuts: list[int], signature: str, size: int
) -> None:
    pieces, at = [], 0
    for cut in cuts:
        pieces.append(text[at : at + cut])
        at += cut
    pieces.append(text[at:])

    def ev(kind: str, **body: Any) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **body})}\n\n".encode()

    stream = b"".join([
        ev("message_start", message={"id": "msg_1", "model": "m", "usage": {"input_tokens": 1}}),
        ev("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
        *[ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": p})
          for p in pieces],
        ev("content_block_delta", index=0, delta={"type": "signature_delta", "signature": signature}),
        ev("content_block_stop", index=0), ev("message_stop"),
    ])  # fmt: skip
    translator = ANTHROPIC.stream(call("chat", {"model": "m", "messages": []}, stream=True,
                                       service="anthropic"))  # fmt: skip
    chunks = data_lines(feed_in_pieces(translator, stream, size))[:-1]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == text
    blocks = [b for d in deltas for b in d.get("thinking_blocks", [])]
    whole = {"type": "thinking", "thinking": text, "signature": signature}
    assert blocks == [{**whole, "index": 0}]
    turn = {"role": "assistant", "content": "ok", "thinking_blocks": blocks}
    sent = to_messages({"model": "m", "messages": [{"role": "user", "content": "q"}, turn]}, {},
                       stream=False)  # fmt: skip
    assert sent["messages"][1]["content"][0] == whole  # as Anthropic signed it


def test_the_openai_sdk_s_stream_helper_merges_several_thinking_blocks() -> None:
    """A review: a thinking block and a redacted one made the SDK's `accumulate_delta`
    (what `chat.completions.stream()` runs) raise, for want of each entry's `index`."""
    from openai.lib.streaming._deltas import accumulate_delta

    def ev(kind: str, **body: Any) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **body})}\n\n".encode()

    thought = [
        ("thinking_delta", "thinking", "Let me think."),
        ("signature_delta", "signature", "c2ln"),
    ]
    stream = b"".join([
        ev("message_start", message={"id": "msg_1", "model": "m", "usage": {"input_tokens": 1}}),
        ev("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
        *[ev("content_block_delta", index=0, delta={"type": t, k: v}) for t, k, v in thought],
        ev("content_block_stop", index=0),
        ev("content_block_start", index=1, content_block={"type": "redacted_thinking", "data": "RW13"}),
        ev("content_block_stop", index=1),
        ev("content_block_start", index=2, content_block={"type": "thinking", "thinking": "More."}),
        ev("content_block_stop", index=2),
        ev("content_block_start", index=3, content_block={"type": "text", "text": ""}),
        ev("content_block_delta", index=3, delta={"type": "text_delta", "text": "Hi"}),
        ev("content_block_stop", index=3), ev("message_stop"),
    ])  # fmt: skip
    translator = ANTHROPIC.stream(call("chat", {"model": "m", "messages": []}, stream=True,
                                       service="anthropic"))  # fmt: skip
    merged: dict[object, object] = {}
    for chunk in data_lines(translator.feed(stream))[:-1]:
        accumulate_delta(merged, chunk["choices"][0]["delta"])
    assert merged["content"] == "Hi"
    blocks = merged["thinking_blocks"]
    assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking", "thinking"]  # type: ignore[attr-defined]
    turn = {"role": "assistant", "content": "Hi", "thinking_blocks": blocks}
    sent = to_messages({"model": "m", "messages": [{"role": "user", "content": "q"}, turn]}, {},
                       stream=False)  # fmt: skip
    assert sent["messages"][1]["content"][:3] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "RW13"},
        {"type": "thinking", "thinking": "More."},
    ]


# Every count of a Messages answer's usage is a running total: what is charged is the
# largest value each was reported at, whatever the order of the events or the zeros a
# server fills a delta's counts with (a review: a `message_delta` with `input_tokens: 0`
# wiped 5,000 input tokens; a delta ahead of `message_start` charged 1 output token).
_COUNT_NAMES = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                "cache_creation_input_tokens")  # fmt: skip
_reports = st.lists(
    st.dictionaries(st.sampled_from(_COUNT_NAMES), st.integers(0, 10**6)), min_size=1, max_size=6
)


@given(_reports)
def test_metered_usage_is_the_largest_of_each_count_reported_in_any_order(
    reports: list[dict[str, int]],
) -> None:
    meter = Meter()
    for report in reports:
        meter.add(report, "usage")
    got = meter.usage()
    most = {
        name: max((r[name] for r in reports if name in r), default=None) for name in _COUNT_NAMES
    }
    if most["input_tokens"] is None or most["output_tokens"] is None:
        assert got is None  # no usage: settled as one the upstream did not report
        return
    assert got is not None
    assert (got.input_tokens, got.output_tokens) == (most["input_tokens"], most["output_tokens"])
    assert got.cache_read_tokens == (most["cache_read_input_tokens"] or 0)
    assert got.cache_write_tokens == (most["cache_creation_input_tokens"] or 0)


def test_a_delta_s_zero_input_and_an_early_delta_lower_nothing() -> None:
    start = {"input_tokens": 5000, "output_tokens": 1}
    for events in ([start, {"output_tokens": 7, "input_tokens": 0}],
                   [{"output_tokens": 7}, start]):  # fmt: skip
        meter = Meter()
        for usage in events:
            meter.add(usage, "usage")
        assert meter.usage() == Usage(5000, 7, 0, 0, 0)
    assert usage_of({"output_tokens": 5}) is None  # input not reported: not zero input
