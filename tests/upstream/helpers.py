"""Small builders shared by the adapter tests."""

from __future__ import annotations

import json
from typing import Any

from runtime.upstream.base import Call, StreamTranslator


def call(endpoint: str = "chat", body: dict[str, Any] | None = None, **fields: Any) -> Call:
    body = (
        body
        if body is not None
        else {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    )
    fields.setdefault("base_url", "https://api.example.com/v1")
    return Call(endpoint=endpoint, body=body, stream=fields.pop("stream", False), **fields)


def feed_in_pieces(translator: StreamTranslator, data: bytes, size: int) -> bytes:
    out = b"".join(translator.feed(data[i : i + size]) for i in range(0, len(data), size))
    return out + (translator.finish() if translator.done else b"")


def data_lines(stream: bytes) -> list[Any]:
    """The `data:` payloads of an SSE byte stream, JSON-decoded (`[DONE]` kept as text)."""
    out: list[Any] = []
    for line in stream.split(b"\n"):
        if line.startswith(b"data: "):
            payload = line[6:]
            out.append(payload.decode() if payload == b"[DONE]" else json.loads(payload))
    return out
