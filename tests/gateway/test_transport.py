"""The upstream transport on real sockets: what it keeps between requests."""

from __future__ import annotations

import gzip
import tracemalloc

import pytest

from runtime.gateway.transport import Transport
from runtime.upstream.base import Outbound
from tests.gateway.fakes import Answer, Fakes


def test_an_upstream_cookie_is_not_kept_for_later_requests(fakes: Fakes) -> None:
    """One connection pool serves every workspace: a cookie an upstream sets must not ride
    along on the next request, someone else's perhaps. (By a host name: aiohttp's default
    jar already ignores cookies from IP addresses.)"""
    fakes.openai.script(Answer(headers={"Set-Cookie": "session=FAKE-upstream-state; Path=/"}))
    url = fakes.openai.url.replace("127.0.0.1", "localhost") + "/chat/completions"
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    out = Outbound("POST", url, {"content-type": "application/json"}, body)

    async def twice() -> list[int]:
        transport = Transport()
        await transport.open()
        try:
            statuses = []
            for _ in range(2):
                resp = await transport.send(out, "openai", {})
                await resp.read(1 << 20)
                statuses.append(resp.status)
            return statuses
        finally:
            await transport.close()

    assert fakes.loop.run(twice()) == [200, 200]
    first, second = fakes.openai.requests
    assert "cookie" not in first.headers and "cookie" not in second.headers


def test_a_decompression_bomb_is_cut_at_the_read_limit(fakes: Fakes) -> None:
    """256 MiB of zeros gzipped to a few hundred KiB: the answer is refused once its
    decompressed size passes the read limit, decompressed a bounded step at a time, never
    held whole."""
    limit = 8 << 20
    bomb = gzip.compress(b"\0" * (256 << 20), compresslevel=9)
    fakes.openai.script(Answer(body=bomb, headers={"Content-Encoding": "gzip"}))
    out = Outbound("POST", fakes.openai.url + "/chat/completions",
                   {"content-type": "application/json"}, b"{}")  # fmt: skip

    async def read() -> tuple[str, int]:
        transport = Transport()
        await transport.open()
        try:
            resp = await transport.send(out, "openai", {})
            tracemalloc.start()
            try:
                with pytest.raises(ValueError) as refused:
                    await resp.read(limit)
                return str(refused.value), tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        finally:
            await transport.close()

    message, peak = fakes.loop.run(read(), timeout=60)
    assert f"larger than {limit} bytes" in message
    assert peak < 2 * limit, f"{peak >> 20} MiB held at the peak"
