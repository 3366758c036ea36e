"""A fake OpenAI-shaped upstream fast enough not to be what a gateway benchmark measures.

    python -m benchmarks.gateway.upstream --port 9100 [--chunk-ms 2]

A bare asyncio Protocol on uvloop (when installed) that answers every POST with a
pre-rendered reply: no HTTP framework, no JSON parsing, no per-request allocation beyond
reading the request. It does ~5x what the fastest Python proxy in front of it can, on one
core (benchmarks/RESULTS.md, "Gateway").

- a body with `"stream": true` gets a chunked `text/event-stream` answer: a role event at
  once (with the headers, in one write: what time-to-first-byte measures), then one event per
  word every `--chunk-ms`, a finish event, a usage event only if the body asked
  `"include_usage": true`, and `data: [DONE]`. The pause before the second event is what
  makes a buffering proxy visible: its first byte would come with the last one.
- any other body gets one `chat.completion` with usage (12 prompt, 8 completion tokens).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import Callable

STREAM = re.compile(rb'"stream"\s*:\s*true')
INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')
MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
WORDS = ["The", " quick", " brown", " fox", " jumps", " over", " the", " dog"]
USAGE = {"prompt_tokens": 12, "completion_tokens": len(WORDS), "total_tokens": 12 + len(WORDS)}
MODEL = "bench-model"


def _completion() -> bytes:
    body = json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1767225600,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(WORDS)},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": USAGE,
    }, separators=(",", ":")).encode()  # fmt: skip
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


def _event(delta: dict[str, str], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1767225600,
        "model": MODEL, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }  # fmt: skip
    return _chunked(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
COMPLETION = _completion()
FIRST = STREAM_HEAD + _event({"role": "assistant", "content": ""})
WORD_EVENTS = [_event({"content": word}) for word in WORDS]
FINISH = _event({}, "stop")
USAGE_CHUNK = {"id": "chatcmpl-bench", "object": "chat.completion.chunk",
               "created": 1767225600, "model": MODEL, "choices": [], "usage": USAGE}  # fmt: skip
USAGE_EVENT = _chunked(
    b"data: " + json.dumps(USAGE_CHUNK, separators=(",", ":")).encode() + b"\n\n"
)
DONE = _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
TAIL = [*WORD_EVENTS, FINISH]


class Upstream(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length or chunked request bodies, answers in order."""

    chunk_s = 0.002

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.streaming:
            request = self._take()
            if request is None:
                return
            self._answer(*request)

    def _take(self) -> tuple[bytes, bytes] | None:
        """The next complete request (head, body), or None until more bytes arrive."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._close()
            return None
        head = bytes(self.buffer[:end]).lower()
        start = end + 4
        if b"transfer-encoding: chunked" in head:
            try:
                parsed = _dechunk(self.buffer, start)
            except ValueError:  # too large or a malformed size line
                self._close()
                return None
            if parsed is None:
                return None
            body, stop = parsed
        else:
            match = re.search(rb"content-length:\s*(\d+)", head)
            length = int(match.group(1)) if match else 0
            if length > MAX_BODY:
                self._close()
                return None
            stop = start + length
            if len(self.buffer) < stop:
                return None
            body = bytes(self.buffer[start:stop])
        del self.buffer[:stop]
        return head, body

    def _answer(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        if not STREAM.search(body):
            self.transport.write(COMPLETION)
        else:
            self.transport.write(FIRST)
            tail = [*TAIL, USAGE_EVENT] if INCLUDE_USAGE.search(body) else list(TAIL)
            self.streaming = True
            asyncio.get_running_loop().call_later(self.chunk_s, self._next, tail)
        if b"connection: close" in head:
            self._close()

    def _next(self, tail: list[bytes]) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(tail.pop(0))
        if tail:
            asyncio.get_running_loop().call_later(self.chunk_s, self._next, tail)
            return
        self.transport.write(DONE)
        self.streaming = False
        if self.buffer:  # a request that arrived while streaming
            self.data_received(b"")

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    body = bytearray()
    pos = start
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buffer[pos:line_end]).split(b";")[0] or b"0", 16)
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 4
        if len(body) + size > MAX_BODY:
            raise ValueError("request body too large")
        if len(buffer) < line_end + 2 + size + 2:
            return None
        body += buffer[line_end + 2 : line_end + 2 + size]
        pos = line_end + 2 + size + 2


def install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


async def serve(host: str, port: int, protocol: Callable[[], asyncio.Protocol] = Upstream) -> None:
    """Serve `protocol` (floor_tcp.py serves its relay the same way) until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, host, port, backlog=1024)
    print(json.dumps({"event": "listening", "port": port}), flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunk-ms", type=float, default=2.0)
    args = parser.parse_args()
    Upstream.chunk_s = args.chunk_ms / 1000
    install_uvloop()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
