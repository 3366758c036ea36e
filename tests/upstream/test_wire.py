"""The adapters against fake upstreams on real sockets (127.0.0.1), read the way the gateway
reads: aiohttp's client, chunks as they arrive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientSession, web

from runtime.bundle.money import Usage
from runtime.upstream import adapter_for
from runtime.upstream.base import Call, StreamTranslator
from tests.upstream import fixtures as fx
from tests.upstream.helpers import data_lines

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def upstream(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def dribble(stream: bytes, seen: list[dict[str, Any]], size: int = 5) -> Handler:
    """An upstream that records the request and streams `stream` a few bytes per write."""

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append({"path": request.path, "query": dict(request.query),
                     "headers": dict(request.headers), "body": await request.json()})  # fmt: skip
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for i in range(0, len(stream), size):
            await response.write(stream[i : i + size])
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    return handler


async def relay(call: Call) -> tuple[StreamTranslator, bytes]:
    adapter = adapter_for(call.service)
    out = adapter.prepare(call)
    translator = adapter.stream(call)
    client_bytes = b""
    async with (
        ClientSession() as session,
        session.request(out.method, out.url, headers=dict(out.headers), data=out.body) as response,
    ):
        assert response.status == 200
        async for chunk in response.content.iter_any():
            client_bytes += translator.feed(chunk)
    if translator.done:
        client_bytes += translator.finish()
    return translator, client_bytes


def test_openai_stream_over_a_socket() -> None:
    seen: list[dict[str, Any]] = []

    async def run() -> tuple[StreamTranslator, bytes]:
        async with upstream(dribble(fx.OPENAI_STREAM, seen)) as base:
            body = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
            }
            return await relay(Call("chat", body, True, base, secrets={"api_key": fx.FAKE_KEY}))

    translator, out = asyncio.run(run())
    (request,) = seen
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {fx.FAKE_KEY}"
    assert request["body"]["stream_options"] == {"include_usage": True}
    assert out == b"".join(fx.OPENAI_STREAM_EVENTS) + fx.OPENAI_DONE
    assert translator.done and translator.usage == Usage(19, 3)


def test_anthropic_translation_over_a_socket() -> None:
    seen: list[dict[str, Any]] = []

    async def run() -> tuple[StreamTranslator, bytes]:
        async with upstream(dribble(fx.ANTHROPIC_STREAM, seen, size=3)) as base:
            body = {"model": "claude-sonnet-4-20250514", "stream": True,
                    "messages": [{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": "Weather in SF?"}]}  # fmt: skip
            call = Call("chat", body, True, base, secrets={"api_key": fx.ANTHROPIC_KEY},
                        include_usage=True, service="anthropic", auth="x-api-key")  # fmt: skip
            return await relay(call)

    translator, out = asyncio.run(run())
    (request,) = seen
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == fx.ANTHROPIC_KEY
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    assert request["body"]["system"] == "Be brief." and request["body"]["max_tokens"] == 4096
    chunks = data_lines(out)
    assert chunks[-1] == "[DONE]"
    assert chunks[-2]["usage"]["prompt_tokens"] == 2572
    assert translator.usage == Usage(472, 89, 2000, 100)


def test_azure_request_over_a_socket() -> None:
    seen: list[dict[str, Any]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "query": dict(request.query),
                     "headers": dict(request.headers)})  # fmt: skip
        return web.Response(body=fx.OPENAI_CHAT, content_type="application/json")

    async def run() -> Any:
        async with upstream(answer) as base:
            call = Call("chat", {"model": "gpt-4o", "messages": []}, False, base + "/openai",
                        secrets={"api_key": fx.FAKE_KEY}, service="azure-openai", auth="api-key",
                        settings={"deployment": "prod-4o"})  # fmt: skip
            adapter = adapter_for("azure-openai")
            out = adapter.prepare(call)
            async with (
                ClientSession() as session,
                session.post(out.url, headers=dict(out.headers), data=out.body) as response,
            ):
                return adapter.reply(
                    call, response.status, await response.read(), dict(response.headers)
                )

    reply = asyncio.run(run())
    (request,) = seen
    assert request["path"] == "/v1/openai/deployments/prod-4o/chat/completions"
    assert request["query"] == {"api-version": "2024-10-21"}
    assert request["headers"]["api-key"] == fx.FAKE_KEY
    assert json.loads(reply.body)["id"].startswith("chatcmpl-")
    assert reply.usage == Usage(86, 300, 1920)
