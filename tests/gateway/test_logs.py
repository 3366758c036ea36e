"""The gateway's log: JSON lines only, one access line per request with exact money, never a
key or prompt text; SIGTERM drains what is in flight before the process exits."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from tests.gateway.fakes import Answer, Fakes
from tests.gateway.harness import (
    PROMPT_MARKER,
    TEAM_KEY,
    GatewayProcess,
    http,
    openai_client,
    secrets_in,
    trace_id,
    user,
)

REQUEST_FIELDS = {"workspace", "provider", "model", "status", "tokens", "cost_usd", "latency_ms",
                  "attempts", "trace_id"}  # fmt: skip


def test_one_json_line_per_request_and_nothing_secret(gateway: GatewayProcess, fakes: Fakes,
                                                      client: openai.OpenAI) -> None:  # fmt: skip
    fakes.openai.script(Answer.error(500, message="upstream trouble"))
    traces = [trace_id() for _ in range(4)]
    client.chat.completions.create(model="@backup/backup-chat", messages=user(),
                                   extra_headers={"x-portkey-trace-id": traces[0]})  # fmt: skip
    list(client.chat.completions.create(model="@backup/backup-chat", messages=user(), stream=True,
                                        extra_headers={"x-portkey-trace-id": traces[1]}))  # fmt: skip
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="@openai-main/gpt-4o-mini", messages=user(),
                                       extra_headers={"x-portkey-trace-id": traces[2]})  # fmt: skip
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="@backup/nope", messages=user(),
                                       extra_headers={"x-portkey-trace-id": traces[3]})  # fmt: skip
    ok, streamed, failed, unknown = (gateway.request_line(t) for t in traces)
    for line in (ok, streamed, failed):
        assert set(line) >= REQUEST_FIELDS, line
        assert isinstance(line["cost_usd"], str)  # an exact decimal, never a float
        Decimal(line["cost_usd"])
    assert ok["status"] == streamed["status"] == 200
    assert failed["status"] >= 500 and unknown["status"] == 404
    assert unknown["workspace"] == "team"
    text = gateway.log_text()
    for raw in text.splitlines():
        assert isinstance(json.loads(raw), dict), raw  # JSON objects, nothing else
    assert not secrets_in(text)
    assert PROMPT_MARKER not in text


def test_listening_line(gateway: GatewayProcess, bundle: Path) -> None:
    line = gateway.listening
    assert line["host"] == "127.0.0.1" and line["port"] == gateway.port
    assert line["digest"] == json.loads(bundle.read_text())["digest"]


def test_sigterm_drains_in_flight_requests(bundle: Path, fakes: Fakes, tmp_path: Path) -> None:
    """A request in flight when SIGTERM arrives still gets its answer and its log line."""
    gw = GatewayProcess(bundle, tmp_path / "draining.log").start()
    try:
        fakes.backup.script(Answer(latency=1.0))
        trace = trace_id()
        answers: list[object] = []

        def call() -> None:
            with openai_client(gw, key=TEAM_KEY) as c:
                answers.append(c.chat.completions.create(
                    model="@backup/backup-chat", messages=user(),
                    extra_headers={"x-portkey-trace-id": trace}))  # fmt: skip

        thread = threading.Thread(target=call)
        thread.start()
        fakes.backup.wait_for(lambda rs: len(rs) == 1)  # in flight upstream
        assert gw.stop() == 0
        thread.join(10)
        assert len(answers) == 1, "the in-flight request was dropped"
        assert gw.request_line(trace, timeout=0)["status"] == 200
        with pytest.raises(OSError):
            http("GET", gw.origin + "/healthz", timeout=2)
    finally:
        gw.stop()


def test_library_records_keep_only_what_cannot_quote_a_client(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another library's message is its template, never the values it was filled with:
    OpenTelemetry's warning about a bad `tracestate` member quoted the client's text, which
    may hold anything (review, 2026-12-03). Our own modules' messages are ours, kept whole;
    aiohttp's server errors keep only the exception's type."""
    import logging

    from runtime.gateway.log import MAX_TEMPLATE, JsonLines

    handler = JsonLines()
    leaked = "Bearer sk-live-FAKE-0000"

    def emit(name: str, msg: str, *args: object, exc: BaseException | None = None) -> dict:
        info = (type(exc), exc, None) if exc is not None else None
        handler.emit(logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, info))
        line = capsys.readouterr().err.splitlines()[-1]
        assert leaked not in line
        return dict(json.loads(line))

    otel = emit("opentelemetry.trace.span", "Member doesn't match the w3c format %s", leaked)
    assert otel["message"] == "Member doesn't match the w3c format %s"
    assert len(emit("other.lib", "x" * 5000)["message"]) == MAX_TEMPLATE
    ours = emit("runtime.limits.redis", "replayed %d settlements", 3)
    assert ours["message"] == "replayed 3 settlements"
    server = emit("aiohttp.server", "Error handling request %s", leaked, exc=ValueError(leaked))
    assert server["error"] == "ValueError" and "message" not in server
