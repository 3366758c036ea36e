"""An upstream's own error mid-stream: relayed once, as it came, and the stream ends there;
billed for what was used (nothing, when it came first); never carrying the credential the
gateway sent. And what came before a malformed event still reaches the client."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.gateway.fakes import Answer, Fakes, Tokens, sse
from tests.gateway.harness import (
    ANTHROPIC_UPSTREAM_KEY,
    OPENAI_UPSTREAM_KEY,
    TEAM_KEY,
    GatewayProcess,
    expected_cost,
    http,
    trace_id,
    user,
)

SONNET = "claude-sonnet-4-5-20250929"
GPT = "gpt-4o-mini"


def ev(kind: str, **body: Any) -> bytes:
    return sse({"type": kind, **body}, event=kind)


def start(input_tokens: int) -> bytes:
    usage = {"input_tokens": input_tokens, "output_tokens": 1}
    return ev("message_start", message={"id": "msg_1", "type": "message", "role": "assistant",
                                        "model": SONNET, "content": [], "usage": usage})  # fmt: skip


def text_block(*pieces: str) -> list[bytes]:
    return [ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            *(ev("content_block_delta", index=0, delta={"type": "text_delta", "text": p})
              for p in pieces)]  # fmt: skip


def error(message: str = "Overloaded") -> bytes:
    return ev("error", error={"type": "overloaded_error", "message": message})


def chat_stream(gateway: GatewayProcess, model: str, trace: str) -> tuple[int, bytes]:
    status, _, data = http("POST", gateway.v1 + "/chat/completions",
                           {"model": model, "messages": user(), "stream": True},
                           {"authorization": f"Bearer {TEAM_KEY}", "x-portkey-trace-id": trace})  # fmt: skip
    return status, data


def native_stream(gateway: GatewayProcess, trace: str) -> tuple[int, bytes]:
    body = {"model": f"@claude/{SONNET}", "max_tokens": 64, "stream": True, "messages": user()}
    headers = {"x-portkey-api-key": TEAM_KEY, "anthropic-version": "2023-06-01",
               "x-portkey-trace-id": trace}  # fmt: skip
    status, _, data = http("POST", gateway.v1 + "/messages", body, headers)
    return status, data


def errors_in(data: bytes) -> list[Any]:
    """The error payloads among a stream's events."""
    found = []
    for block in data.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                payload = json.loads(line[6:])
                if "error" in payload:
                    found.append(payload["error"])
    return found


@pytest.mark.parametrize("endpoint", ["chat", "messages"])
def test_an_error_before_anything_is_relayed_once_and_not_billed(
    gateway: GatewayProcess, fakes: Fakes, endpoint: str
) -> None:
    """Anthropic answers 200, then `error` before `message_start`: nothing was processed.
    (It was charged the request's bytes, and the client got a second, gateway-made error.)"""
    fakes.anthropic.script(Answer(events=(error(),)))
    trace = trace_id()
    if endpoint == "chat":
        status, data = chat_stream(gateway, f"@claude/{SONNET}", trace)
    else:
        status, data = native_stream(gateway, trace)
    assert status == 200
    (said,) = errors_in(data)
    assert said["message"] == "Overloaded", data
    line = gateway.request_line(trace)
    assert line["stream"] == "upstream_error" and line["status"] == 502, line
    assert Decimal(line["cost_usd"]) == 0, line


def test_an_error_after_text_is_billed_for_what_was_reported_and_relayed(
    gateway: GatewayProcess, fakes: Fakes, bundle: Path, client: openai.OpenAI
) -> None:
    fakes.anthropic.script(Answer(events=(start(100), *text_block("one ", "two ", "three"),
                                          error())))  # fmt: skip
    trace = trace_id()
    got: list[str] = []
    with pytest.raises(openai.APIError, match="Overloaded"):
        for chunk in client.chat.completions.create(
            model=f"@claude/{SONNET}", messages=user(), stream=True, max_tokens=50,
            extra_headers={"x-portkey-trace-id": trace},
        ):  # fmt: skip
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "one two three"
    line = gateway.request_line(trace)
    assert line["stream"] == "upstream_error", line
    # the input reported; the output: one token per event relayed (role and three texts)
    assert Decimal(line["cost_usd"]) == expected_cost(bundle, "claude", SONNET, Tokens(100, 4))


def test_an_openai_family_error_chunk_ends_the_stream(
    gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI
) -> None:
    """Some OpenAI-compatible servers (OpenRouter) end a failing stream with a chunk holding
    `error`; the SDK raises on it, and the gateway adds no error of its own."""
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": GPT,
             "choices": [{"index": 0, "delta": {"content": "partial "}, "finish_reason": None}]}  # fmt: skip
    failed = {**chunk, "error": {"code": "server_error", "message": "provider disconnected"},
              "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}  # fmt: skip
    fakes.openai.script(Answer(events=(sse(chunk), sse(failed), sse(chunk), b"data: [DONE]\n\n")))
    trace = trace_id()
    status, data = chat_stream(gateway, f"@openai-main/{GPT}", trace)
    assert status == 200 and data.count(b"partial ") == 1, data  # nothing after the error
    assert [e["message"] for e in errors_in(data)] == ["provider disconnected"]
    assert gateway.request_line(trace)["stream"] == "upstream_error"


@pytest.mark.parametrize("where", ["chat", "messages", "openai", "whole"])
def test_the_credential_an_upstream_echoes_never_reaches_the_client(
    gateway: GatewayProcess, fakes: Fakes, where: str
) -> None:
    """Error bodies answered whole were scrubbed; a stream's error events, and a 2xx answer,
    were relayed as they came."""
    trace = trace_id()
    echo = f"invalid x-api-key {ANTHROPIC_UPSTREAM_KEY}"
    if where in ("chat", "messages"):
        fakes.anthropic.script(Answer(events=(start(5), error(echo))))
        status, data = (chat_stream(gateway, f"@claude/{SONNET}", trace) if where == "chat"
                        else native_stream(gateway, trace))  # fmt: skip
        key = ANTHROPIC_UPSTREAM_KEY
    elif where == "openai":
        failed = {"error": {"message": f"bad key {OPENAI_UPSTREAM_KEY}", "code": "auth"}}
        fakes.openai.script(Answer(events=(sse(failed),)))
        status, data = chat_stream(gateway, f"@openai-main/{GPT}", trace)
        key = OPENAI_UPSTREAM_KEY
    else:
        answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": GPT,
                  "choices": [{"index": 0, "finish_reason": "stop", "message": {
                      "role": "assistant", "content": f"your key is {OPENAI_UPSTREAM_KEY}"}}],
                  "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}  # fmt: skip
        fakes.openai.script(Answer(body=answer))
        status, _, data = http("POST", gateway.v1 + "/chat/completions",
                               {"model": f"@openai-main/{GPT}", "messages": user()},
                               {"authorization": f"Bearer {TEAM_KEY}"})  # fmt: skip
        key = OPENAI_UPSTREAM_KEY
    assert status == 200, data
    assert key.encode() not in data and b"[redacted]" in data, data


def test_what_came_before_a_malformed_event_is_relayed(
    gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI
) -> None:
    """Text and a malformed event in one upstream write: the text was dropped with it."""
    one_write = b"".join([start(5), *text_block("kept ", "too"), b"event: content_block_delta\n"
                          b"data: {not json\n\n"])  # fmt: skip
    fakes.anthropic.script(Answer(events=(one_write,)))
    got: list[str] = []
    with pytest.raises(openai.APIError, match="malformed"):
        for chunk in client.chat.completions.create(model=f"@claude/{SONNET}", messages=user(),
                                                    stream=True):  # fmt: skip
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "kept too"


@pytest.mark.parametrize("after", ["lingers", "resets"])
def test_a_finished_stream_stays_finished_whatever_the_upstream_does_after(
    gateway: GatewayProcess, fakes: Fakes, bundle: Path, after: str
) -> None:
    """After its usage chunk and `[DONE]` the upstream keeps the body open past the
    request's timeout, or resets the connection: the client got an error event after
    `[DONE]`, the log a 502, and the settlement was the estimate, not the usage reported."""
    used = {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": GPT,
             "choices": [{"index": 0, "delta": {"content": "done "}, "finish_reason": "stop"}]}  # fmt: skip
    whole = sse(chunk) + sse({**chunk, "choices": [], "usage": used}) + b"data: [DONE]\n\n"
    if after == "lingers":
        fakes.openai.script(Answer(events=(whole,), chunk_delay=4.0))
    else:
        fakes.openai.script(Answer(events=(whole, b""), cut_after=1, cut="abort"))
    trace = trace_id()
    status, _, data = http("POST", gateway.v1 + "/chat/completions",
                           {"model": f"@openai-main/{GPT}", "messages": user(), "stream": True},
                           {"authorization": f"Bearer {TEAM_KEY}", "x-portkey-trace-id": trace,
                            "x-portkey-request-timeout": "1500"})  # fmt: skip
    assert status == 200 and data.endswith(b"data: [DONE]\n\n") and not errors_in(data), data
    line = gateway.request_line(trace)
    assert line["status"] == 200 and line["stream"] == "ok", line
    assert Decimal(line["cost_usd"]) == expected_cost(bundle, "openai-main", GPT, Tokens(7, 4))


# -- what a cut stream is billed for: its data events, however they end ------------------------
def chunk(text: str, end: bytes = b"\n\n") -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": GPT,
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}  # fmt: skip
    return b"data: " + json.dumps(body).encode() + end


@pytest.mark.parametrize(("events", "output"), [
    ((chunk("a", b"\r\n\r\n"),) * 50, 50),  # CRLF-ended events (sse-starlette's default): 1
    ((b": keep-alive\n\n",) * 300, 0),  # comments are no output: they were 301
    ((), 0),  # headers, then the cut: the gateway's own error event was 1
])  # fmt: skip
def test_a_cut_stream_is_billed_for_its_data_events_only(
    gateway: GatewayProcess, fakes: Fakes, events: tuple[bytes, ...], output: int
) -> None:
    fakes.openai.script(Answer(events=(*events, chunk("never")), cut_after=len(events)))
    trace = trace_id()
    status, data = chat_stream(gateway, f"@openai-main/{GPT}", trace)
    assert status == 200 and errors_in(data)  # the cut reaches the client as an error event
    line = gateway.request_line(trace)
    assert line["stream"] in ("upstream_cut", "upstream_error")  # a reset is the latter
    assert line["tokens"]["output"] == output


def test_a_failed_response_is_booked_as_the_upstreams_error(gateway: GatewayProcess,
                                                            fakes: Fakes) -> None:  # fmt: skip
    """/v1/responses: `response.failed` ended the stream as a success (200, `ok`), charged
    the estimate; now as the upstream's own error event is (502 `upstream_error`)."""
    failed = {"type": "response.failed", "response": {"id": "resp_1", "status": "failed",
              "error": {"code": "server_error", "message": "boom"}, "usage": None}}  # fmt: skip
    created = {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}}
    fakes.openai.script(Answer(events=(sse(created, event="response.created"),
                                       sse(failed, event="response.failed"))))  # fmt: skip
    trace = trace_id()
    status, _, data = http("POST", gateway.v1 + "/responses",
                           {"model": f"@openai-main/{GPT}", "input": "hi", "stream": True},
                           {"authorization": f"Bearer {TEAM_KEY}", "x-portkey-trace-id": trace})  # fmt: skip
    assert status == 200 and b"response.failed" in data
    line = gateway.request_line(trace)
    assert line["status"] == 502 and line["stream"] == "upstream_error"


def test_a_failed_response_is_charged_the_usage_it_reports(gateway: GatewayProcess,
                                                            fakes: Fakes, bundle: Path) -> None:  # fmt: skip
    """`response.failed` with its usage is the response's whole account (as the same answer
    whole is charged): it was charged the relayed events as output instead (a review)."""
    usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    failed = {"type": "response.failed", "response": {"id": "resp_1", "status": "failed",
              "error": {"code": "server_error", "message": "boom"}, "usage": usage}}  # fmt: skip
    created = {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}}
    deltas = [sse({"type": "response.output_text.delta", "delta": f"w{i} "},
                  event="response.output_text.delta") for i in range(6)]  # fmt: skip
    fakes.openai.script(Answer(events=(sse(created, event="response.created"), *deltas,
                                       sse(failed, event="response.failed"))))  # fmt: skip
    trace = trace_id()
    status, _, _ = http("POST", gateway.v1 + "/responses",
                        {"model": f"@openai-main/{GPT}", "input": "hi", "stream": True},
                        {"authorization": f"Bearer {TEAM_KEY}", "x-portkey-trace-id": trace})  # fmt: skip
    assert status == 200
    line = gateway.request_line(trace)
    assert line["stream"] == "upstream_error"
    assert (line["tokens"]["input"], line["tokens"]["output"]) == (10, 2)
    cost = expected_cost(bundle, "openai-main", GPT, Tokens(input=10, output=2))
    assert Decimal(line["cost_usd"]) == cost


@pytest.mark.parametrize("stream", [False, True])
def test_nan_from_an_upstream_is_its_protocol_error_not_ours(gateway: GatewayProcess,
                                                             fakes: Fakes, stream: bool) -> None:  # fmt: skip
    """JSON with NaN or Infinity, which no answer to a client may carry: a 500 internal
    error (whole), a stream cut with no error event (streamed); now the upstream's 502."""
    if stream:
        bad = (
            b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,'
            b'"total_tokens":2},"logprobs":NaN}\n\n'
        )
        fakes.openai.script(Answer(events=(chunk("a"), bad, b"data: [DONE]\n\n")))
    else:
        fakes.openai.script(Answer(status=400, body=b'{"error": {"message": "x", "code": NaN}}'))
    trace = trace_id()
    if stream:
        _, data = chat_stream(gateway, f"@openai-main/{GPT}", trace)
    else:
        _, _, data = http("POST", gateway.v1 + "/chat/completions",
                          {"model": f"@openai-main/{GPT}", "messages": user()},
                          {"authorization": f"Bearer {TEAM_KEY}", "x-portkey-trace-id": trace})  # fmt: skip
    line = gateway.request_line(trace)
    assert "internal_error" not in gateway.log_text()
    if stream:  # the upstream's own protocol error, told the client
        assert line["status"] == 502 and errors_in(data) and b"NaN" not in data
    else:  # the upstream's 400, its body unreadable: said so, in OpenAI's shape
        assert line["status"] == 400 and json.loads(data)["error"]["message"]
