"""The upstream transport on real sockets: what it keeps between requests."""

from __future__ import annotations

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
