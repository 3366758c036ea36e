"""W3C trace context and OpenTelemetry spans (issue 14, point 5).

Over the session's gateway process (no OpenTelemetry SDK configured there): a client's
valid `traceparent` reaches the upstream unchanged, a malformed one is dropped. In this
process, with the SDK and its in-memory exporter: the request is a server span in the
client's trace, each upstream attempt a client span under it, and the upstream sees that
span as its parent."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from runtime import Bundle
from runtime.gateway.app import Gateway, build_app
from runtime.gateway.books import Books
from runtime.gateway.execute import Engine
from runtime.gateway.live import Live
from runtime.gateway.tracing import Tracing, trace_context
from runtime.gateway.transport import Transport
from runtime.limits.memory import MemoryStore
from runtime.routing.router import Router
from tests.gateway.fakes import Answer, Fakes
from tests.gateway.harness import TEAM_KEY, UPSTREAM_ENV, GatewayProcess, http, user

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def chat(origin: str, headers: dict[str, str]) -> int:
    status, _, _ = http("POST", origin + "/v1/chat/completions",
                        {"model": "@openai-main/gpt-4o-mini", "messages": user()},
                        {"authorization": f"Bearer {TEAM_KEY}", **headers})  # fmt: skip
    return status


def test_a_valid_trace_context_is_forwarded_upstream(gateway: GatewayProcess,
                                                     fakes: Fakes) -> None:  # fmt: skip
    assert chat(gateway.origin, {"traceparent": PARENT, "tracestate": "vendor=abc"}) == 200
    (got,) = fakes.openai.requests
    assert got.headers["traceparent"] == PARENT and got.headers["tracestate"] == "vendor=abc"


@pytest.mark.parametrize("bad", [
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
    f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # the forbidden version
    f"00-{'0' * 32}-00f067aa0ba902b7-01",  # an all-zero trace id
    f"00-{TRACE_ID}-{'0' * 16}-01",  # an all-zero parent id
    f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",  # upper case is not allowed
    "00-" + "a" * 5000,
])  # fmt: skip
def test_a_malformed_trace_context_is_dropped_not_refused(
    gateway: GatewayProcess, fakes: Fakes, bad: str
) -> None:
    assert chat(gateway.origin, {"traceparent": bad, "tracestate": "x=1"}) == 200
    (got,) = fakes.openai.requests
    assert "traceparent" not in got.headers and "tracestate" not in got.headers
    assert trace_context({"traceparent": bad}) == {}


@pytest.fixture
def exporter() -> Any:
    """The SDK's in-memory exporter behind the global tracer provider (set once)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


async def _serve_once(bundle: Path, request: dict[str, str]) -> int:
    live = Live.of(Bundle.load(bundle), False)
    router = Router(live.bundle, MemoryStore())
    transport = Transport()
    await transport.open()
    tracing = Tracing()
    assert tracing.on
    gw = Gateway(router, live, Engine(router, transport, tracing), "memory",
                 books=Books(tracing=tracing))  # fmt: skip
    runner = web.AppRunner(build_app(gw))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as client:
            resp = await client.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json={"model": "anything", "messages": user()},
                headers={"authorization": f"Bearer {TEAM_KEY}", **request},
            )
            await resp.read()
            return resp.status
    finally:
        await runner.cleanup()
        await transport.close()


def test_spans_follow_the_clients_trace_and_reach_the_upstream(
    bundle: Path, fakes: Fakes, exporter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in UPSTREAM_ENV.items():
        monkeypatch.setenv(name, value)
    assert os.environ["TEST_FAKE_OPENAI_KEY"]
    fakes.openai.script(Answer.error(503))  # the config falls back to the backup
    status = asyncio.run(_serve_once(bundle, {"traceparent": PARENT,
                                              "x-portkey-config": "fallback-cfg"}))  # fmt: skip
    assert status == 200
    spans = {s.name: s for s in exporter.get_finished_spans() if s.name != "upstream"}
    attempts = [s for s in exporter.get_finished_spans() if s.name == "upstream"]
    server = spans["POST /v1/chat/completions"]
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert format(server.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert server.attributes["catalog.workspace"] == "team"
    assert server.attributes["http.response.status_code"] == 200
    assert [a.attributes["catalog.provider"] for a in attempts] == ["openai-main", "backup"]
    assert [a.attributes["http.response.status_code"] for a in attempts] == [503, 200]
    for attempt, fake in zip(attempts, (fakes.openai, fakes.backup), strict=True):
        assert attempt.parent.span_id == server.context.span_id
        (got,) = fake.requests
        sent = got.headers["traceparent"].split("-")
        assert sent[1] == TRACE_ID and sent[2] == format(attempt.context.span_id, "016x")
    assert "quokka" not in str([dict(s.attributes) for s in exporter.get_finished_spans()])
