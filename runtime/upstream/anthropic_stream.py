"""Anthropic Messages streams: relayed to an Anthropic client (NativeStream), or translated
to Chat Completions chunks for an OpenAI client (ChatStream).

A Messages stream is `message_start` (id, model, input and cache usage), then per content
block `content_block_start` / `content_block_delta`* / `content_block_stop`, `ping`s, then
`message_delta` (stop reason, output usage) and `message_stop`; `error` may come instead.
"""

from __future__ import annotations

import json
import time
from typing import Any

from runtime.bundle.money import Usage
from runtime.upstream import anthropic_wire as wire
from runtime.upstream import openai
from runtime.upstream.base import Call, UpstreamProtocolError
from runtime.upstream.common import dumps, load_object
from runtime.upstream.sse import Event, SSEParser, client_bytes

MAX_TOOL_CALLS = 4096  # per answer: the index map must not grow without bound
# characters held in one answer for blocks not ended yet, to be given whole at their end:
# thinking text and signatures, tool inputs given at a block's start (64,000 tokens of
# thinking are ~256,000 characters). A stream that goes past it is malformed.
MAX_HELD = 8 * 1024 * 1024
_USAGE_EVENTS = frozenset({"message_start", "message_delta", "message_stop", "error"})


class NativeStream:
    """Relays the upstream's events unchanged, metering usage; done on `message_stop`."""

    __slots__ = ("_meter", "_parser", "done", "failed", "final", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.done = self.failed = self.final = False
        self._meter = wire.Meter()
        self._parser = SSEParser()

    def feed(self, data: bytes) -> bytes:
        return b"" if self.done else client_bytes(self, self._parser.feed(data), self._step)

    def _step(self, event: Event, out: list[bytes]) -> None:
        out.append(event.raw)
        if event.data is not None and (event.event is None or event.event in _USAGE_EVENTS):
            self._watch(load_object(event.data, "stream event"))

    def _watch(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message")
            if isinstance(message, dict):
                self.usage = self._meter.add(message.get("usage"), "message.usage")
        elif kind == "message_delta":
            self.usage = self._meter.add(payload.get("usage"), "usage")
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":  # relayed as it came; nothing follows it
            self.done = self.failed = True

    def finish(self) -> bytes:
        return b""

    def error_event(self, status: int, message: str) -> bytes:
        return b"event: error\ndata: " + wire.error_body(status, message) + b"\n\n"


class ChatStream:
    """Translates Messages events into Chat Completions chunks as they arrive: a role chunk,
    text deltas, tool calls (one index per tool_use block, arguments streamed as the
    upstream's partial JSON), thinking as `reasoning_content` deltas and, at each thinking
    block's end, the block whole in `thinking_blocks` (with its signature: what a client
    sends back), a last chunk with the finish reason, the usage chunk if the client asked
    for it (`stream_options.include_usage`), then `data: [DONE]`."""

    __slots__ = (
        "_created", "_finish", "_held", "_id", "_meter", "_model", "_parser", "_quiet",
        "_started", "_thinking", "_thought", "_tools", "_with_usage", "done", "failed", "final",
        "usage",
    )  # fmt: skip

    def __init__(self, call: Call) -> None:
        self.usage: Usage | None = None
        self.done = self.failed = self.final = False
        self._meter = wire.Meter()
        self._parser = SSEParser()
        self._with_usage = call.include_usage
        self._created = int(time.time())
        self._id = "chatcmpl-anthropic"
        self._started = False  # `message_start` came: an answer, even an empty one, began
        self._model = str(call.body.get("model") or "")
        self._finish = "stop"
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        # tool_use blocks no argument text has come for yet -> their arguments if none comes:
        # the input their start gave, as JSON text ("{}" at least)
        self._quiet: dict[int, str] = {}
        # thinking blocks begun and not ended: content block index -> [text parts, signature]
        self._thinking: dict[int, list[Any]] = {}
        self._thought = 0  # thinking blocks sent whole so far
        self._held = 0  # characters held for blocks in this answer, at most MAX_HELD

    def feed(self, data: bytes) -> bytes:
        return b"" if self.done else client_bytes(self, self._parser.feed(data), self._step)

    def _step(self, event: Event, out: list[bytes]) -> None:
        if event.data is None or event.event == "ping":
            return
        if event.event != "content_block_stop" or self._quiet or self._thinking:
            self._translate(event.data, out)

    def _translate(self, data: str, out: list[bytes]) -> None:
        payload = load_object(data, "stream event")
        kind = payload.get("type")
        if kind == "content_block_delta":
            self._delta(payload, out)
        elif kind == "content_block_start":
            self._block_start(payload, out)
        elif kind == "message_start":
            self._start(payload, out)
        elif kind == "message_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                self._finish = wire.finish_reason(delta["stop_reason"])
            self.usage = self._meter.add(payload.get("usage"), "usage")
        elif kind == "content_block_stop":
            self._block_stop(_index(payload), out)
        elif kind == "message_stop":
            if not self._started:  # an empty success to the client, from no answer at all
                raise UpstreamProtocolError("upstream ended its stream before `message_start`")
            for block in [*self._quiet, *self._thinking]:
                self._block_stop(block, out)
            self._stop(out)
        elif kind == "error":  # the upstream's own: in OpenAI's shape, and nothing after it
            error = payload.get("error")
            error = error if isinstance(error, dict) else {}
            message = error.get("message") if isinstance(error.get("message"), str) else None
            kind = error.get("type") if isinstance(error.get("type"), str) else "api_error"
            body = openai.error_body(502, message or "upstream stream error", kind)
            out.append(b"data: " + body + b"\n\n")
            self.done = self.failed = True

    def _start(self, payload: dict[str, Any], out: list[bytes]) -> None:
        message = payload.get("message")
        if not isinstance(message, dict):
            raise UpstreamProtocolError("upstream `message_start` has no message")
        self._started = True
        if isinstance(message.get("id"), str):
            self._id = message["id"]
        if isinstance(message.get("model"), str):
            self._model = message["model"]
        self.usage = self._meter.add(message.get("usage"), "message.usage")
        out.append(self._chunk({"role": "assistant", "content": ""}))

    def _block_start(self, payload: dict[str, Any], out: list[bytes]) -> None:
        block = payload.get("content_block")
        if not isinstance(block, dict):
            return
        if block.get("type") == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                # as a whole answer's: a client's SDK cannot read a call without them
                raise UpstreamProtocolError("upstream tool_use block needs a string id and name")
            index = len(self._tools)
            if index >= MAX_TOOL_CALLS:
                raise UpstreamProtocolError(f"upstream began over {MAX_TOOL_CALLS} tool calls")
            self._tools[_index(payload)] = index
            given = block.get("input")
            text = "{}"
            if isinstance(given, dict) and given:  # as a whole answer's `_tool_call` writes it
                text = json.dumps(given, ensure_ascii=False, separators=(",", ":"))
                self._hold(len(text))
            self._quiet[_index(payload)] = text
            call = {
                "index": index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            out.append(self._chunk({"tool_calls": [call]}))
        elif block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
            out.append(self._chunk({"content": block["text"]}))
        elif block.get("type") == "thinking":
            if len(self._thinking) >= MAX_TOOL_CALLS:
                raise UpstreamProtocolError(f"upstream began over {MAX_TOOL_CALLS} thinking blocks")
            self._thinking[_index(payload)] = [[], block.get("signature")]
            self._think(payload, block.get("thinking"), out)
        elif block.get("type") == "redacted_thinking":  # whole at its start, nothing to read
            out.append(self._thinking_block(wire.thinking_block(block)))

    def _delta(self, payload: dict[str, Any], out: list[bytes]) -> None:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str):
            out.append(self._chunk({"content": delta["text"]}))
        elif kind == "input_json_delta" and isinstance(delta.get("partial_json"), str):
            block = _index(payload)
            index = self._tools.get(block)
            if index is None:
                raise UpstreamProtocolError("upstream sent tool input for a block it never started")
            if delta["partial_json"]:
                self._quiet.pop(block, None)
                self._tool_arguments(index, delta["partial_json"], out)
        elif kind == "thinking_delta":
            self._think(payload, delta.get("thinking"), out)
        elif kind == "signature_delta" and isinstance(delta.get("signature"), str):
            self._hold(len(delta["signature"]))
            self._thought_of(payload)[1] = delta["signature"]

    def _think(self, payload: dict[str, Any], text: Any, out: list[bytes]) -> None:
        if not isinstance(text, str) or not text:
            return
        self._hold(len(text))
        self._thought_of(payload)[0].append(text)
        out.append(self._chunk({"reasoning_content": text}))

    def _hold(self, size: int) -> None:
        self._held += size
        if self._held > MAX_HELD:
            raise UpstreamProtocolError(
                f"upstream blocks not ended hold over {MAX_HELD:,} characters"
            )

    def _thought_of(self, payload: dict[str, Any]) -> list[Any]:
        thought = self._thinking.get(_index(payload))
        if thought is None:
            raise UpstreamProtocolError("upstream sent thinking for a block it never started")
        return thought

    def _block_stop(self, block: int, out: list[bytes]) -> None:
        thought = self._thinking.pop(block, None)
        if thought is None:
            self._arguments(block, out)
            return
        whole = {"type": "thinking", "thinking": "".join(thought[0]), "signature": thought[1]}
        out.append(self._thinking_block(wire.thinking_block(whole)))

    def _thinking_block(self, block: dict[str, Any]) -> bytes:
        """One block whole, with its place among the answer's thinking blocks as `index`:
        the openai SDK's stream helpers merge a list in a delta by its entries' `index`
        (a second block without one made them raise). Sent back, `index` is dropped."""
        block["index"] = self._thought
        self._thought += 1
        return self._chunk({"thinking_blocks": [block]})

    def _arguments(self, block: int, out: list[bytes]) -> None:
        """A tool_use block ended with no argument text (a tool without parameters streams
        `partial_json: ""`): its arguments are the input its start gave, `{}` at least, as
        in a whole answer; a client parsing them as JSON never gets an empty string."""
        if block in self._quiet:
            self._tool_arguments(self._tools[block], self._quiet.pop(block), out)

    def _tool_arguments(self, index: int, text: str, out: list[bytes]) -> None:
        out.append(self._chunk({"tool_calls": [{"index": index, "function": {"arguments": text}}]}))

    def _stop(self, out: list[bytes]) -> None:
        out.append(self._chunk({}, self._finish))
        if self._with_usage and self.usage is not None:
            chunk = self._envelope()
            chunk["choices"] = []
            chunk["usage"] = wire.chat_usage(self.usage)
            out.append(b"data: " + dumps(chunk) + b"\n\n")
        out.append(b"data: [DONE]\n\n")
        self.done = True

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = self._envelope()
        chunk["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        return b"data: " + dumps(chunk) + b"\n\n"

    def finish(self) -> bytes:
        return b""

    def error_event(self, status: int, message: str) -> bytes:
        return b"data: " + openai.error_body(status, message) + b"\n\n"


def _index(payload: dict[str, Any]) -> int:
    index = payload.get("index")
    if type(index) is not int:
        raise UpstreamProtocolError("upstream content block event has no integer `index`")
    return index
