"""One recording fake upstream for both gateways: OpenAI-shaped, on real sockets (127.0.0.1),
served by an aiohttp event loop in a background thread.

`POST /<target-id>/v1/chat/completions` records the call (which lane — the gateway it came
from —, the target id from the path, the arrival time, the body's model, the body, a few
headers) and answers from that target's script: a queue of steps per target, and when the
queue is empty a 200 `chat.completion` with `usage`.

The server listens on two ports, one *lane* per gateway (`portkey`, `ours`), so both gateways
can run the same case at the same time against the same scripts: each lane keeps its own copy
of the queues and its own record. Everything else (the answers, the clock) is shared.

A script step is a short text, so a reported difference prints readably:

| step | answer |
|---|---|
| `200` | a chat.completion with usage |
| `246` | a 2xx guardrail-like answer: the chat.completion plus `hook_results` |
| `400`, `408`, `500`, `502`, `503`, `504` | OpenAI's error body with that status |
| `429` | OpenAI's rate-limit body, no Retry-After |
| `429/ra=0`, `429/ra=1` | ... with `Retry-After: 0` (or 1) |
| `429/ra-ms=5` | ... with `retry-after-ms: 5` |
| `hang` | sleeps `HANG_SECONDS` (longer than any case's `request_timeout`), then 200 |
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

LANES = ("portkey", "ours")
HANG_SECONDS = 4.0
# Headers worth keeping from each call (lower-case).
KEPT_HEADERS = ("authorization", "content-type", "x-portkey-trace-id", "retry-count")
USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}

Script = Mapping[str, Sequence[str]]  # target id -> steps


@dataclass(frozen=True)
class Call:
    """One request as the upstream received it."""

    lane: str
    target: str
    at: float  # time.monotonic() on arrival
    model: Any
    body: dict[str, Any]
    headers: dict[str, str]
    step: str  # the script step that answered it

    def brief(self) -> str:
        return f"{self.target}:{self.model}->{self.step}"


@dataclass
class _Lane:
    queues: dict[str, deque[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)


def check_step(step: str) -> str:
    """A step is valid or ValueError (scripts are written by tests and generated)."""
    head, _, option = step.partition("/")
    if head == "hang" and not option:
        return step
    if not head.isdigit() or not 200 <= int(head) <= 599:
        raise ValueError(f"bad script step {step!r}")
    if option and not (head == "429" and option.split("=")[0] in ("ra", "ra-ms")):
        raise ValueError(f"bad script step {step!r}")
    return step


def completion(model: Any, ident: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-parity-{ident}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model if isinstance(model, str) else "unknown",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "parity says hello"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": dict(USAGE),
    }


def error_body(status: int) -> dict[str, Any]:
    kind = {
        400: "invalid_request_error",
        408: "timeout",
        429: "rate_limit_exceeded",
    }.get(status, "server_error")
    return {
        "error": {
            "message": f"scripted upstream status {status}",
            "type": kind,
            "param": None,
            "code": kind,
        }
    }


class Recorder:
    """The fake upstream. `load(script)` before a case, `calls(lane)` after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lanes = {lane: _Lane() for lane in LANES}
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="parity-upstream",
                                        daemon=True)  # fmt: skip
        self._runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Recorder:
        self._thread.start()
        for lane in LANES:
            self.ports[lane] = self._run(self._serve(lane))
        return self

    def stop(self) -> None:
        for runner in self._runners:
            self._run(runner.cleanup())
        self._runners.clear()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self, coro: Any, timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _serve(self, lane: str) -> int:
        app = web.Application()

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._answer(lane, request)

        app.router.add_post("/{target}/v1/chat/completions", handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runners.append(runner)
        port: int = runner.addresses[0][1]
        return port

    # -- what tests use ----------------------------------------------------------------------
    def origin(self, lane: str) -> str:
        return f"http://127.0.0.1:{self.ports[lane]}"

    def base_url(self, lane: str, target: str) -> str:
        """What a gateway's target `target` points at (…/v1, like OpenAI's API)."""
        return f"{self.origin(lane)}/{target}/v1"

    def load(self, script: Script, lanes: Sequence[str] = LANES) -> None:
        """Forget every call and queue, then queue `script` on each lane."""
        with self._lock:
            for lane in lanes:
                state = self._lanes[lane] = _Lane()
                for target, steps in script.items():
                    state.queues[target] = deque(check_step(s) for s in steps)

    def calls(self, lane: str) -> list[Call]:
        with self._lock:
            return list(self._lanes[lane].calls)

    def pending(self, lane: str) -> dict[str, list[str]]:
        with self._lock:
            return {t: list(q) for t, q in self._lanes[lane].queues.items() if q}

    def wait_quiet(self, lane: str, settle: float = 0.05, timeout: float = 5.0) -> list[Call]:
        """The calls of `lane`, once none arrived for `settle` seconds."""
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            now = len(self.calls(lane))
            if now == seen:
                break
            seen = now
            time.sleep(settle)
        return self.calls(lane)

    # -- serving -----------------------------------------------------------------------------
    async def _answer(self, lane: str, request: web.Request) -> web.StreamResponse:
        target = request.match_info["target"]
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"<unparsed>": raw.decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {"<non-object>": body}
        with self._lock:
            state = self._lanes[lane]
            queue = state.queues.get(target)
            step = queue.popleft() if queue else "200"
            headers = {k.lower(): v for k, v in request.headers.items()
                       if k.lower() in KEPT_HEADERS}  # fmt: skip
            state.calls.append(Call(lane, target, time.monotonic(), body.get("model"), body,
                                    headers, step))  # fmt: skip
        ident = str(next(self._ids))
        model = body.get("model")
        if step == "hang":
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await asyncio.sleep(HANG_SECONDS)
            return web.json_response(completion(model, ident))
        head, _, option = step.partition("/")
        status = int(head)
        if status == 200:
            return web.json_response(completion(model, ident))
        if 200 < status < 300:
            answer = completion(model, ident)
            answer["hook_results"] = {"before_request_hooks": [], "after_request_hooks": []}
            return web.json_response(answer, status=status)
        extra: dict[str, str] = {}
        if option:
            name, _, value = option.partition("=")
            extra["retry-after" if name == "ra" else "retry-after-ms"] = value
        return web.json_response(error_body(status), status=status, headers=extra)


@contextlib.contextmanager
def running_recorder() -> Iterator[Recorder]:
    recorder = Recorder().start()
    try:
        yield recorder
    finally:
        recorder.stop()
