"""Streaming: relayed chunk by chunk, settled exactly from the upstream's final usage; a cut
upstream is an error for the client, never a clean finish; a client that goes away closes
the upstream call and pays for what was consumed."""

from __future__ import annotations

import json
import socket
import struct
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from portkey_ai import Portkey

from tests.gateway.fakes import Answer, Fakes, Tokens
from tests.gateway.harness import (
    TEAM_KEY,
    GatewayProcess,
    check_logged,
    expected_cost,
    trace_id,
    user,
)

BROKEN = (openai.APIError, httpx.HTTPError)  # an error event, or a body that never ends well


def stream(client: openai.OpenAI, model: str, trace: str, **kw: Any) -> Any:
    return client.chat.completions.create(
        model=model, messages=user(), stream=True,
        extra_headers={"x-portkey-trace-id": trace}, **kw,
    )  # fmt: skip


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_stream_with_usage_settles_exactly(gateway: GatewayProcess, fakes: Fakes,
                                           client: openai.OpenAI, bundle: Path) -> None:  # fmt: skip
    used = Tokens(input=40, output=12, cache_read=8)
    fakes.openai.script(Answer(usage=used))
    trace = trace_id()
    chunks = list(stream(client, "@openai-main/gpt-4o-mini", trace,
                         stream_options={"include_usage": True}))  # fmt: skip
    assert text_of(chunks) == "fake gpt-4o-mini says hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    (usage,) = [c.usage for c in chunks if c.usage is not None]  # the upstream's usage chunk
    assert (usage.prompt_tokens, usage.completion_tokens) == (48, 12)
    sent = fakes.openai.requests[0].json
    assert sent["stream"] is True and sent["stream_options"]["include_usage"] is True
    check_logged(gateway.request_line(trace), workspace="team", provider="openai-main",
                 model="gpt-4o-mini", status=200, used=used,
                 cost=expected_cost(bundle, "openai-main", "gpt-4o-mini", used))  # fmt: skip


def test_stream_without_usage_still_settles_exactly(gateway: GatewayProcess, fakes: Fakes,
                                                    client: openai.OpenAI, bundle: Path) -> None:  # fmt: skip
    """The gateway asks the upstream for usage itself and removes the extra chunk: the client
    sees the stream it asked for; the log has the exact cost."""
    used = Tokens(input=33, output=7)
    fakes.backup.script(Answer(usage=used))
    trace = trace_id()
    chunks = list(stream(client, "@backup/backup-chat", trace))
    assert text_of(chunks) == "fake backup-chat says hello"
    assert all(c.choices for c in chunks), "a usage chunk the client did not ask for"
    assert all(getattr(c, "usage", None) is None for c in chunks)
    assert fakes.backup.requests[0].json["stream_options"]["include_usage"] is True
    check_logged(gateway.request_line(trace), workspace="team", provider="backup",
                 model="backup-chat", status=200, used=used,
                 cost=expected_cost(bundle, "backup", "backup-chat", used))  # fmt: skip


def test_portkey_sdk_stream(gateway: GatewayProcess, fakes: Fakes, bundle: Path) -> None:
    used = Tokens(input=9, output=4)
    fakes.backup.script(Answer(usage=used))
    trace = trace_id()
    client = Portkey(base_url=gateway.v1, api_key=TEAM_KEY, provider="@backup", trace_id=trace)
    chunks = list(client.chat.completions.create(model="backup-chat", messages=user(),
                                                 stream=True))  # fmt: skip
    assert text_of(chunks) == "fake backup-chat says hello"
    line = gateway.request_line(trace)
    assert Decimal(line["cost_usd"]) == expected_cost(bundle, "backup", "backup-chat", used)


def test_chunks_are_relayed_as_they_come(fakes: Fakes, client: openai.OpenAI) -> None:
    """The client holds early chunks while the upstream is still writing later ones."""
    fakes.openai.script(Answer(chunk_delay=0.1, text=" ".join(["w"] * 8)))
    it = iter(stream(client, "@openai-main/gpt-4o-mini", trace_id()))
    next(it), next(it), next(it)
    assert not fakes.openai.requests[0].completed, "the gateway buffered the whole stream"
    assert text_of(list(it)).strip().endswith("w")


@pytest.mark.parametrize("cut", ["abort", "eof"])
def test_upstream_cut_is_an_error_not_a_clean_finish(gateway: GatewayProcess, fakes: Fakes,
                                                     client: openai.OpenAI, cut: str) -> None:  # fmt: skip
    """abort: the upstream connection drops mid-body; eof: the body ends without the final
    chunk and [DONE]. Either way the client's iteration fails and the log says so."""
    fakes.openai.script(Answer(cut_after=3, cut=cut))
    trace = trace_id()
    received: list[Any] = []
    with pytest.raises(BROKEN):
        for chunk in stream(client, "@openai-main/gpt-4o-mini", trace):
            received.append(chunk)
    assert text_of(received) == "fake gpt-4o-mini "  # what came before the cut was relayed
    line = gateway.request_line(trace)
    assert line["status"] != 200, line
    assert Decimal(line["cost_usd"]) >= 0


def test_anthropic_cut_settles_what_the_upstream_reported(gateway: GatewayProcess, fakes: Fakes,
                                                          client: openai.OpenAI, bundle: Path) -> None:  # fmt: skip
    """Anthropic reports the input (with cache tokens) in message_start: a stream cut after it
    pays at least that, and at most that plus the output the request allowed (max_tokens)."""
    used = Tokens(input=100, output=20, cache_read=1000, cache_write=50)
    fakes.anthropic.script(Answer(usage=used, cut_after=5))  # start, ping, block, 2 deltas
    trace = trace_id()
    with pytest.raises(BROKEN):
        list(stream(client, "@claude/claude-sonnet-4-5-20250929", trace, max_tokens=50))
    line = gateway.request_line(trace)
    assert line["status"] != 200, line
    model = "claude-sonnet-4-5-20250929"
    floor = expected_cost(bundle, "claude", model, Tokens(100, 0, 1000, 50))
    ceiling = expected_cost(bundle, "claude", model, Tokens(100, 50, 1000, 50))
    assert floor <= Decimal(line["cost_usd"]) <= ceiling


def test_client_disconnect_closes_upstream_and_settles(gateway: GatewayProcess, fakes: Fakes,
                                                       client: openai.OpenAI) -> None:  # fmt: skip
    fakes.openai.script(Answer(chunk_delay=0.05, text=" ".join(["word"] * 400)))
    trace = trace_id()
    response = stream(client, "@openai-main/gpt-4o-mini", trace)
    it = iter(response)
    next(it), next(it), next(it)
    response.close()
    (rec,) = fakes.openai.wait_for(lambda rs: len(rs) == 1 and rs[0].aborted, timeout=10)
    assert not rec.completed
    line = gateway.request_line(trace, timeout=10)
    assert line["status"] != 200 or line.get("stream") not in (None, "ok"), line
    assert Decimal(line["cost_usd"]) > 0  # the input was consumed: it is paid for


def raw_stream(gateway: GatewayProcess, trace: str) -> socket.socket:
    """A connection that has sent a streamed chat request (the test decides how it ends)."""
    body = json.dumps({"model": "@openai-main/gpt-4o-mini", "messages": user(), "stream": True})
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TEAM_KEY}"
            f"\r\nx-portkey-trace-id: {trace}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
    host, port = gateway.origin.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.encode() + body.encode())
    return sock


def test_a_client_gone_before_the_stream_began_is_settled_once_and_the_upstream_closed(
    gateway: GatewayProcess, fakes: Fakes
) -> None:
    """The client resets while the upstream is still to answer: writing the stream's
    headers failed, which was logged as an internal error, the request written to the books
    twice (502, then 500), and the upstream left streaming to no one."""
    faults = sum(1 for line in gateway.lines() if line.get("event") == "internal_error")
    fakes.openai.script(Answer(latency=0.6, chunk_delay=0.05, text=" ".join(["word"] * 200)))
    trace = trace_id()
    with raw_stream(gateway, trace) as sock:
        fakes.openai.wait_for(lambda rs: len(rs) == 1, timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    (rec,) = fakes.openai.wait_for(lambda rs: rs[0].aborted, timeout=10)
    assert not rec.completed
    line = gateway.request_line(trace, timeout=10)
    assert (line["status"], line["stream"]) == (499, "client_gone"), line
    time.sleep(0.3)  # a second line, or a fault, would be written by now
    assert len(gateway.request_lines(trace)) == 1
    assert sum(1 for line in gateway.lines() if line.get("event") == "internal_error") == faults


def test_a_client_gone_while_the_upstream_is_silent_is_noticed_at_once(
    gateway: GatewayProcess, fakes: Fakes
) -> None:
    """The client left while the upstream thought: the gateway noticed only at the
    upstream's next chunk (its call, lease and reservation held until then, or until the
    request's timeout)."""
    fakes.openai.script(Answer(chunk_delay=5.0, text="slow thinker"))
    trace = trace_id()
    with raw_stream(gateway, trace) as sock:
        got = b""
        while b"data: " not in got:  # the first event: the upstream is under way
            got += sock.recv(65536)
    left = time.monotonic()
    line = gateway.request_line(trace, timeout=6)
    assert time.monotonic() - left < 3, "noticed only at the upstream's next chunk"
    assert (line["status"], line["stream"]) == (499, "client_gone"), line
    (rec,) = fakes.openai.wait_for(lambda rs: rs[0].aborted, timeout=15)
    assert not rec.completed
