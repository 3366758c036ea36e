"""A request leaves none of the gateway's objects in a reference cycle, whatever happens to
it. The server runs the cyclic collector's young passes rarely (runtime/gateway/server.py,
YOUNG_COLLECTION_EVERY), trusting reference counting to free each request; a cycle through a
refused request (an exception kept with its traceback, whose frames hold the request) keeps
the request and its body, up to the body limit, alive until the next pass: a client sending
bad requests could hold gigabytes.

The gateway runs in this process (the app over a real socket on 127.0.0.1, on the fakes'
loop) with the collector off while the requests run; then one collection reports what was
only reachable through cycles. Anything of ours among it (an object of a `runtime` class,
or a frame of `runtime` code) fails the test."""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.gateway.fakes import Answer, Fakes
from tests.gateway.harness import LIMITED_KEY, PROMPT, TEAM_KEY
from tests.gateway.in_process import MAX_BODY, InProcess

REPEAT = 5  # requests per case: a cycle made once per request shows five times


def chat(model: str, **extra: Any) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], **extra}
    return json.dumps(body).encode()


TEAM = {"Authorization": f"Bearer {TEAM_KEY}"}
LIMITED = {"Authorization": f"Bearer {LIMITED_KEY}"}
CHAT = "/v1/chat/completions"
MINI = "@openai-main/gpt-4o-mini"
HAIKU = "@claude/claude-haiku-4-5-20251001"


@dataclass(frozen=True)
class Case:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: TEAM)
    answer: Answer | None = None  # what the upstream answers (default: a success)
    anthropic: bool = False  # the upstream is the Anthropic fake
    path: str = CHAT
    hang_up: bool = False  # the client goes away after the first bytes

    def send(self, server: InProcess) -> int:
        if self.hang_up:
            return server.cut_stream(self.body, self.headers)
        return server.post(self.path, self.body, self.headers)


CASES = {
    "answered": Case(200, chat(MINI)),
    "streamed": Case(200, chat(MINI, stream=True)),
    "no key": Case(401, chat(MINI), {}),
    "not JSON": Case(400, b"{not json" + b" " * 65_536),
    "bad stream flag": Case(400, chat(MINI, stream=3)),
    "bad config header": Case(400, chat("gpt-4o-mini"), {**TEAM, "x-portkey-config": "{bad"}),
    "unknown model": Case(404, chat("@openai-main/nope")),
    "denied": Case(403, chat("@openai-main/gpt-4.1-mini")),
    "budget": Case(412, chat("@broke/gpt-4o-mini"), LIMITED),
    "mode": Case(400, chat("@openai-main/text-embedding-3-small")),
    "body too large": Case(413, b" " * (MAX_BODY + 1)),
    "no such path": Case(404, b"{}", path="/v1/nothing"),
    "upstream error": Case(500, chat(MINI), answer=Answer.error(500)),
    "upstream garbage": Case(502, chat(MINI), answer=Answer(body=b"not json")),
    "timeout": Case(
        408, chat(MINI), {**TEAM, "x-portkey-request-timeout": "50"}, answer=Answer(latency=1.0)
    ),
    "stream cut upstream": Case(200, chat(MINI, stream=True), answer=Answer(cut_after=1)),
    "client gone": Case(
        200, chat(MINI, stream=True), answer=Answer(chunk_delay=0.05), hang_up=True
    ),
    "messages, stream cut upstream": Case(
        200,
        chat(HAIKU, stream=True, max_tokens=64),
        answer=Answer(cut_after=2),
        anthropic=True,
        path="/v1/messages",
    ),
    "anthropic upstream error": Case(529, chat(HAIKU), answer=Answer.error(529), anthropic=True),
}


def ours(found: object) -> bool:
    """An object of a `runtime` class, or a frame running `runtime` code."""
    frame = getattr(found, "f_code", None)
    if frame is not None:
        return "/runtime/" in frame.co_filename
    return type(found).__module__.startswith("runtime.")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_request_leaves_no_cycle_of_ours(in_process: InProcess, fakes: Fakes, case: str) -> None:
    this = CASES[case]
    fake = fakes.anthropic if this.anthropic else fakes.openai
    # once first: imports, pools and caches made on first use are not per-request garbage
    if this.answer is not None:
        fake.script(this.answer)
    assert this.send(in_process) == this.status
    fakes.loop.run(_settled())
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(REPEAT):
            if this.answer is not None:
                fake.script(this.answer)
            assert this.send(in_process) == this.status
        fakes.loop.run(_settled())
        gc.collect()
        kept = [o for o in gc.garbage if ours(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    kinds = sorted({type(o).__name__ if not hasattr(o, "f_code") else
                    f"frame of {o.f_code.co_name}" for o in kept})  # fmt: skip
    assert not kept, f"{case}: {len(kept)} objects of ours in cycles: {kinds}"


async def _settled() -> None:
    """Let the handlers finish what follows the answer (settling, the log line)."""
    import asyncio

    for _ in range(20):
        await asyncio.sleep(0.01)
