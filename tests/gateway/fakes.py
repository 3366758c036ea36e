"""Fake upstreams for the gateway tests: an OpenAI-shaped and an Anthropic-shaped HTTP server,
each on a real socket (127.0.0.1, a free port), all served by one event loop in a background
thread.

A test scripts the next answers (`fake.script(Answer(...), ...)`: status, body, headers,
latency, pauses between stream events, a cut mid-stream) and reads back every request the
gateway sent (`fake.requests`: method, path, headers, body) to assert what went upstream:
the credential taken from the catalog's secret reference, `stream_options` added, the
Chat Completions -> Messages translation. Without a script a fake answers a deterministic
success whose usage is `Answer.usage` (DEFAULT_USAGE), so a test can compute the exact cost
the gateway must settle.

Both fakes speak their API's real wire format closely enough for the real SDKs: OpenAI's
chat completions (whole and SSE, with and without `include_usage`), legacy completions,
embeddings (float and base64) and responses; Anthropic's messages (whole and SSE with
message_start / content_block_* / message_delta / message_stop, tool use, cache tokens)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

UPSTREAM_BODY_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Tokens:
    """What a fake reports as used. `input` excludes cached input (runtime.bundle.money.Usage's rule):
    OpenAI's prompt_tokens is input + cache_read; Anthropic reports the four apart."""

    input: int = 13
    output: int = 5
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0  # Anthropic: cache writes of the 1-hour TTL

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write + self.cache_write_1h

    def openai(self) -> dict[str, Any]:
        prompt = self.input + self.cache_read
        return {
            "prompt_tokens": prompt,
            "completion_tokens": self.output,
            "total_tokens": prompt + self.output,
            "prompt_tokens_details": {"cached_tokens": self.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    def responses(self) -> dict[str, Any]:
        prompt = self.input + self.cache_read
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": self.cache_read},
            "output_tokens": self.output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + self.output,
        }

    def anthropic(self, output: int | None = None) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_write + self.cache_write_1h,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": self.output if output is None else output,
        }
        if self.cache_write_1h:  # the writes by TTL, as the API reports them beside the total
            usage["cache_creation"] = {"ephemeral_5m_input_tokens": self.cache_write,
                                       "ephemeral_1h_input_tokens": self.cache_write_1h}  # fmt: skip
        return usage


DEFAULT_USAGE = Tokens()


@dataclass(frozen=True)
class Answer:
    """One scripted answer. A status >= 400 without `body` gets the API's own error body.
    `body` (a JSON value, or bytes sent as they are) replaces the generated body entirely."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0  # seconds before the status line
    chunk_delay: float = 0.0  # seconds between stream events
    cut_after: int | None = None  # stream: stop after this many events, without the last one
    cut: str = "abort"  # abort: drop the TCP connection | eof: end the body cleanly, early
    text: str | None = None  # the reply text; default: "fake <model> says hello"
    usage: Tokens = DEFAULT_USAGE
    tool_call: tuple[str, dict[str, Any]] | None = None  # (name, arguments): call a tool
    message: str = "scripted failure"  # the error message of a status >= 400
    service_tier: str | None = None  # OpenAI chat: the tier the answer says it was served at
    events: tuple[bytes, ...] | None = None  # stream: these writes instead of the generated ones

    @classmethod
    def error(cls, status: int, retry_after: int | str | None = None, **kw: Any) -> Answer:
        headers = dict(kw.pop("headers", {}))
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return cls(status=status, headers=headers, **kw)


@dataclass
class Recorded:
    """One request as the fake received it. `aborted`: the caller closed the connection
    before the answer was complete (seen on the next write after it went away)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() on arrival
    aborted: bool = False
    completed: bool = False  # the whole answer was written

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Loop:
    """One event loop in a daemon thread, hosting every fake of a test session."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fakes", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; `data` JSON-encoded unless already text."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def words(text: str) -> list[str]:
    """The pieces a fake streams: each word with the space after it."""
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]] if text else []


class FakeUpstream:
    """The server half both families share: scripting, recording, the socket."""

    family = "base"

    def __init__(self, loop: Loop, name: str) -> None:
        self.loop = loop
        self.name = name
        self._lock = threading.Lock()
        self._script: deque[Answer] = deque()
        self._requests: list[Recorded] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._waits: set[asyncio.Future[None]] = set()  # scripted latencies under way
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeUpstream:
        self.loop.run(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=UPSTREAM_BODY_LIMIT)
        self.routes(app)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    def stop(self) -> None:
        if self._runner is not None:
            self.hurry()  # the server's cleanup waits for its handlers
            self.loop.run(self._runner.cleanup())
            self._runner = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The base URL a catalog integration points at (`…/v1`, like the real APIs)."""
        return f"{self.origin}/v1"

    # -- what tests use --------------------------------------------------------------------
    def script(self, *answers: Answer) -> None:
        """The next answers, in order; after them, default successes."""
        with self._lock:
            self._script.extend(answers)

    def hurry(self) -> None:
        """End every scripted latency under way now (after a test that hung many)."""

        def end() -> None:
            for wait in list(self._waits):
                if not wait.done():
                    wait.set_result(None)

        self.loop.loop.call_soon_threadsafe(end)

    async def _latency(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, lambda: done.done() or done.set_result(None))
        self._waits.add(done)
        try:
            await done
        finally:
            timer.cancel()
            self._waits.discard(done)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """Scripted answers not yet used."""
        with self._lock:
            return len(self._script)

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> list[Recorded]:
        """Poll until predicate(requests) is true; the requests then (AssertionError after
        `timeout`: the gateway never did it)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.requests
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: condition not met; requests: {seen!r}")
            time.sleep(0.02)

    # -- serving ---------------------------------------------------------------------------
    def _next(self) -> Answer:
        with self._lock:
            return self._script.popleft() if self._script else Answer()

    async def _record(self, request: web.Request) -> Recorded:
        body = await request.read()
        rec = Recorded(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            time.monotonic(),
        )
        with self._lock:
            self._requests.append(rec)
        return rec

    async def serve(self, request: web.Request, kind: str) -> web.StreamResponse:
        rec = await self._record(request)
        answer = self._next()
        if answer.latency:
            await self._latency(answer.latency)
        if answer.body is not None or answer.status >= 300:
            body = answer.body if answer.body is not None else self.error_body(answer)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            rec.completed = True
            return web.Response(
                status=answer.status, body=data, headers=answer.headers,
                content_type="application/json",
            )  # fmt: skip
        payload = json.loads(rec.body)
        refusal = self.refuse(payload)
        if refusal is not None:
            rec.completed = True
            body = self.error_body(Answer(status=400, message=refusal))
            return web.json_response(body, status=400)
        if payload.get("stream"):
            events = self.events(kind, payload, answer) if answer.events is None else answer.events
            return await self.stream(request, rec, answer, list(events))
        rec.completed = True
        return web.json_response(
            self.whole(kind, payload, answer), status=answer.status, headers=answer.headers
        )

    async def stream(
        self, request: web.Request, rec: Recorded, answer: Answer, events: list[bytes]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                 **answer.headers},
        )  # fmt: skip
        await resp.prepare(request)
        try:
            for i, event in enumerate(events):
                if answer.cut_after is not None and i >= answer.cut_after:
                    if answer.cut == "abort":  # the body never ends: the client sees a broken read
                        if request.transport is not None:
                            request.transport.abort()
                        return resp
                    break
                await resp.write(event)
                if answer.chunk_delay:
                    await asyncio.sleep(answer.chunk_delay)
            await resp.write_eof()
            rec.completed = answer.cut_after is None or answer.cut_after >= len(events)
        except ConnectionError:  # the gateway went away (aiohttp's reset is one of these)
            rec.aborted = True
        return resp

    def next_id(self, prefix: str) -> str:
        return f"{prefix}fake{next(self._ids):06d}"

    def error_body(self, answer: Answer) -> Any:
        raise NotImplementedError

    def refuse(self, payload: dict[str, Any]) -> str | None:
        """Why the real API would answer this request 400 (None: it would not)."""
        return None

    def whole(self, kind: str, payload: dict[str, Any], answer: Answer) -> Any:
        raise NotImplementedError

    def events(self, kind: str, payload: dict[str, Any], answer: Answer) -> list[bytes]:
        raise NotImplementedError


def reply_text(payload: dict[str, Any], answer: Answer) -> str:
    return answer.text if answer.text is not None else f"fake {payload.get('model')} says hello"


# -- OpenAI -----------------------------------------------------------------------------------
OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                      403: "permission_error", 404: "not_found_error", 429: "rate_limit_exceeded"}  # fmt: skip
CREATED = 1_750_000_000


class FakeOpenAI(FakeUpstream):
    family = "openai"

    def routes(self, app: web.Application) -> None:
        for path, kind in (("/v1/chat/completions", "chat"), ("/v1/completions", "completions"),
                           ("/v1/embeddings", "embeddings"), ("/v1/responses", "responses")):  # fmt: skip
            app.router.add_post(path, self._handler(kind))

    def _handler(self, kind: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, kind)

        return handle

    def error_body(self, answer: Answer) -> Any:
        kind = OPENAI_ERROR_TYPES.get(answer.status, "server_error")
        return {"error": {"message": answer.message, "type": kind, "param": None,
                          "code": kind if answer.status == 429 else None}}  # fmt: skip

    # whole answers
    def whole(self, kind: str, payload: dict[str, Any], answer: Answer) -> Any:
        return getattr(self, f"_{kind}")(payload, answer)

    def _chat(self, payload: dict[str, Any], answer: Answer) -> Any:
        message: dict[str, Any] = {"role": "assistant", "content": reply_text(payload, answer),
                                   "refusal": None}  # fmt: skip
        finish = "stop"
        if answer.tool_call is not None:
            name, args = answer.tool_call
            message["tool_calls"] = [{"id": "call_fake_1", "type": "function",
                                      "function": {"name": name, "arguments": json.dumps(args)}}]  # fmt: skip
            finish = "tool_calls"
        return {
            "id": self.next_id("chatcmpl-"), "object": "chat.completion", "created": CREATED,
            "model": payload["model"], "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": answer.usage.openai(),
            **({"service_tier": answer.service_tier} if answer.service_tier else {}),
        }  # fmt: skip

    def _completions(self, payload: dict[str, Any], answer: Answer) -> Any:
        return {
            "id": self.next_id("cmpl-"), "object": "text_completion", "created": CREATED,
            "model": payload["model"],
            "choices": [{"text": reply_text(payload, answer), "index": 0, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": answer.usage.openai(),
        }  # fmt: skip

    def _embeddings(self, payload: dict[str, Any], answer: Answer) -> Any:
        raw = payload.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        data = []
        for i, item in enumerate(inputs):
            vector = embedding(json.dumps(item))
            encoded: Any = vector
            if payload.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        return {"object": "list", "data": data, "model": payload["model"],
                "usage": {"prompt_tokens": answer.usage.input, "total_tokens": answer.usage.input}}  # fmt: skip

    def _responses(self, payload: dict[str, Any], answer: Answer) -> Any:
        return self._response_object(payload, answer, "completed", reply_text(payload, answer))

    def _response_object(
        self, payload: dict[str, Any], answer: Answer, status: str, text: str | None
    ) -> dict[str, Any]:
        output = []
        if text is not None:
            output.append({"type": "message", "id": "msg_fake_1", "status": "completed",
                           "role": "assistant",
                           "content": [{"type": "output_text", "text": text,
                                        "annotations": []}]})  # fmt: skip
        return {
            "id": "resp_fake_1", "object": "response", "created_at": CREATED, "status": status,
            "model": payload["model"], "output": output, "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "temperature": 1.0, "top_p": 1.0,
            "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
            "usage": answer.usage.responses() if status == "completed" else None,
        }  # fmt: skip

    # streams
    def events(self, kind: str, payload: dict[str, Any], answer: Answer) -> list[bytes]:
        if kind == "responses":
            return self._response_events(payload, answer)
        if kind == "embeddings":
            raise web.HTTPBadRequest(text="embeddings do not stream")
        include = bool((payload.get("stream_options") or {}).get("include_usage"))
        cid = self.next_id("chatcmpl-" if kind == "chat" else "cmpl-")
        head = {"id": cid, "created": CREATED, "model": payload["model"],
                "object": "chat.completion.chunk" if kind == "chat" else "text_completion"}  # fmt: skip
        if kind == "chat":
            head["system_fingerprint"] = "fp_fake"

        def chunk(choice: dict[str, Any] | None) -> bytes:
            body: dict[str, Any] = {**head, "choices": [] if choice is None else [choice]}
            if include:
                body["usage"] = None
            return sse(body)

        text = reply_text(payload, answer)
        out: list[bytes] = []
        if kind == "chat":
            out.append(chunk({"index": 0, "delta": {"role": "assistant", "content": ""},
                              "logprobs": None, "finish_reason": None}))  # fmt: skip
            for piece in words(text):
                out.append(chunk({"index": 0, "delta": {"content": piece}, "logprobs": None,
                                  "finish_reason": None}))  # fmt: skip
            finish = "stop"
            if answer.tool_call is not None:
                out += [chunk(c) for c in tool_call_deltas(*answer.tool_call)]
                finish = "tool_calls"
            out.append(chunk({"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}))
        else:
            for piece in words(text):
                out.append(chunk({"text": piece, "index": 0, "logprobs": None,
                                  "finish_reason": None}))  # fmt: skip
            out.append(chunk({"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}))
        if include:
            out.append(sse({**head, "choices": [], "usage": answer.usage.openai()}))
        out.append(sse("[DONE]"))
        return out

    def _response_events(self, payload: dict[str, Any], answer: Answer) -> list[bytes]:
        text = reply_text(payload, answer)
        seq = itertools.count()

        def ev(kind: str, **body: Any) -> bytes:
            return sse({"type": kind, "sequence_number": next(seq), **body}, event=kind)

        item = {"type": "message", "id": "msg_fake_1", "status": "in_progress",
                "role": "assistant", "content": []}  # fmt: skip
        part = {"type": "output_text", "text": "", "annotations": []}
        loc = {"item_id": "msg_fake_1", "output_index": 0, "content_index": 0}
        out = [
            ev(
                "response.created",
                response=self._response_object(payload, answer, "in_progress", None),
            ),
            ev("response.output_item.added", output_index=0, item=item),
            ev("response.content_part.added", part=part, **loc),
        ]
        out += [ev("response.output_text.delta", delta=piece, logprobs=[], **loc)
                for piece in words(text)]  # fmt: skip
        done_part = {**part, "text": text}
        out += [
            ev("response.output_text.done", text=text, logprobs=[], **loc),
            ev("response.content_part.done", part=done_part, **loc),
            ev("response.output_item.done", output_index=0,
               item={**item, "status": "completed", "content": [done_part]}),
            ev("response.completed", response=self._response_object(payload, answer, "completed", text)),
        ]  # fmt: skip
        return out


def tool_call_deltas(name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAI's streamed tool call: the id and name first, then the arguments in two pieces."""
    text = json.dumps(args)
    half = len(text) // 2
    first = {"index": 0, "id": "call_fake_1", "type": "function",
             "function": {"name": name, "arguments": ""}}  # fmt: skip
    pieces = [{"index": 0, "function": {"arguments": text[:half]}},
              {"index": 0, "function": {"arguments": text[half:]}}]  # fmt: skip
    return [{"index": 0, "delta": {"tool_calls": [c]}, "logprobs": None, "finish_reason": None}
            for c in (first, *pieces)]  # fmt: skip


def embedding(text: str) -> list[float]:
    """A deterministic 4-number vector (exact in float32, so base64 round-trips)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 256 for b in digest[:4]]


# -- Anthropic --------------------------------------------------------------------------------
ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                         403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                         429: "rate_limit_error", 529: "overloaded_error"}  # fmt: skip


class FakeAnthropic(FakeUpstream):
    family = "anthropic"

    def routes(self, app: web.Application) -> None:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, "messages")

        app.router.add_post("/v1/messages", handle)

    def error_body(self, answer: Answer) -> Any:
        kind = ANTHROPIC_ERROR_TYPES.get(answer.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": answer.message}}

    def refuse(self, payload: dict[str, Any]) -> str | None:
        """As Anthropic with `thinking` on: `max_tokens` above the thinking budget, and the
        assistant turn that made the tool calls being answered sent back beginning with its
        thinking block, signature intact."""
        if thinking_on(payload) and payload["max_tokens"] <= payload["thinking"]["budget_tokens"]:
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
        turns = [t for t in payload.get("messages", []) if t.get("role") == "assistant"]
        if not thinking_on(payload) or not turns or not isinstance(turns[-1]["content"], list):
            return None
        first, *_ = turns[-1]["content"] or [{}]
        if not any(b.get("type") == "tool_use" for b in turns[-1]["content"]):
            return None
        if first.get("type") == "redacted_thinking" or (
            first.get("type") == "thinking" and first.get("signature") == sign(first["thinking"])
        ):
            return None
        return ("messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but "
                f"found `{first.get('type')}`. When `thinking` is enabled, a final `assistant` "
                "message must start with a thinking block")  # fmt: skip

    def _content(self, payload: dict[str, Any], answer: Answer) -> tuple[list[Any], str]:
        content: list[Any] = [{"type": "text", "text": reply_text(payload, answer)}]
        if thinking_on(payload):
            thought = f"fake {payload.get('model')} thinks first"
            content.insert(0, {"type": "thinking", "thinking": thought, "signature": sign(thought)})
        if answer.tool_call is None:
            return content, "end_turn"
        name, args = answer.tool_call
        content.append({"type": "tool_use", "id": "toolu_fake_1", "name": name, "input": args})
        return content, "tool_use"

    def _message(self, payload: dict[str, Any], content: list[Any], usage: dict[str, Any],
                 stop: str | None) -> dict[str, Any]:  # fmt: skip
        return {"id": "msg_fake_1", "type": "message", "role": "assistant",
                "model": payload["model"], "content": content, "stop_reason": stop,
                "stop_sequence": None, "usage": usage}  # fmt: skip

    def whole(self, kind: str, payload: dict[str, Any], answer: Answer) -> Any:
        content, stop = self._content(payload, answer)
        return self._message(payload, content, answer.usage.anthropic(), stop)

    def events(self, kind: str, payload: dict[str, Any], answer: Answer) -> list[bytes]:
        content, stop = self._content(payload, answer)

        def ev(kind: str, **body: Any) -> bytes:
            return sse({"type": kind, **body}, event=kind)

        start = self._message(payload, [], answer.usage.anthropic(output=1), None)
        out = [ev("message_start", message=start), ev("ping")]
        for index, block in enumerate(content):
            if block["type"] == "text":
                out.append(ev("content_block_start", index=index,
                              content_block={"type": "text", "text": ""}))  # fmt: skip
                out += [ev("content_block_delta", index=index,
                           delta={"type": "text_delta", "text": piece})
                        for piece in words(block["text"])]  # fmt: skip
            elif block["type"] == "thinking":
                out.append(ev("content_block_start", index=index, content_block={
                    "type": "thinking", "thinking": ""}))  # fmt: skip
                out += [ev("content_block_delta", index=index,
                           delta={"type": "thinking_delta", "thinking": piece})
                        for piece in words(block["thinking"])]  # fmt: skip
                out.append(ev("content_block_delta", index=index, delta={
                    "type": "signature_delta", "signature": block["signature"]}))  # fmt: skip
            else:
                out.append(ev("content_block_start", index=index,
                              content_block={**block, "input": {}}))  # fmt: skip
                text = json.dumps(block["input"])
                half = len(text) // 2
                out += [ev("content_block_delta", index=index,
                           delta={"type": "input_json_delta", "partial_json": piece})
                        for piece in (text[:half], text[half:])]  # fmt: skip
            out.append(ev("content_block_stop", index=index))
        out.append(ev("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
                      usage={"output_tokens": answer.usage.output}))  # fmt: skip
        out.append(ev("message_stop"))
        return out


def thinking_on(payload: dict[str, Any]) -> bool:
    thinking = payload.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


def sign(thought: str) -> str:
    """A fake signature that changes with the text, as Anthropic's does."""
    return "sig-" + hashlib.sha256(thought.encode()).hexdigest()[:24]


@dataclass
class Fakes:
    """The session's fake upstreams: two OpenAI-shaped (a primary and a backup, so fallback
    is visible) and one Anthropic-shaped."""

    loop: Loop
    openai: FakeOpenAI
    backup: FakeOpenAI
    anthropic: FakeAnthropic

    def all(self) -> tuple[FakeUpstream, ...]:
        return (self.openai, self.backup, self.anthropic)

    def reset(self) -> None:
        for fake in self.all():
            fake.reset()


@contextlib.contextmanager
def running_fakes() -> Iterator[Fakes]:
    loop = Loop()
    fakes = Fakes(loop, FakeOpenAI(loop, "openai"), FakeOpenAI(loop, "backup"),
                  FakeAnthropic(loop, "anthropic"))  # fmt: skip
    try:
        for fake in fakes.all():
            fake.start()
        yield fakes
    finally:
        for fake in fakes.all():
            fake.stop()
        loop.close()
