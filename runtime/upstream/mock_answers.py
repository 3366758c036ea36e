"""What the mock upstream answers, in OpenAI's wire format, deterministically.

A mock "token" is a whitespace-separated word. The answer echoes the last user input
("echo: " + its text), cut to the request's output limit (then the finish reason is
`length`); the prompt counts the words of every message text. Ids derive from the
request's bytes and `created` is fixed, so one request always gets the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from collections.abc import Mapping
from typing import Any

from runtime.bundle.money import MAX_TOKENS
from runtime.upstream.common import dumps

CREATED = 1_700_000_000  # a fixed timestamp: answers are byte-for-byte reproducible
DIMENSIONS = 8
_WORD = re.compile(r"\S+")


class BadRequest(Exception):
    """The request is not one the mock (or OpenAI) would accept: a 400."""


def words(text: str) -> int:
    return len(text.split())


def pieces(text: str, most: int | None = None) -> list[str]:
    """`text` cut into words, each with the whitespace before it: joined, they give the
    text back (trailing whitespace aside), so a stream of them adds up to the whole. At
    most `most` of them (and one more, to tell that there were more)."""
    out, start = [], 0
    for match in _WORD.finditer(text):
        out.append(text[start : match.end()])
        start = match.end()
        if most is not None and len(out) > most:
            break
    return out


def text_of(content: Any, where: str) -> str:
    """The text of a message's content: a string, or its text parts joined by spaces."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequest(f"`{where}` must be a string or a list of content parts")
    texts = []
    for part in content:
        if not isinstance(part, Mapping):
            raise BadRequest(f"`{where}` has a part that is not an object")
        text = part.get("text")
        if part.get("type") in ("text", "input_text", "output_text") and isinstance(text, str):
            texts.append(text)
    return " ".join(texts)


def limit_of(body: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if type(value) is not int or not 0 <= value <= MAX_TOKENS:
            raise BadRequest(f"`{name}` must be a whole number from 0 to {MAX_TOKENS:,}")
        return value
    return None


MAX_CHOICES = 128  # OpenAI's bound on `n`
MAX_STOPS = 4  # OpenAI's bound on `stop` sequences
# the words of all `n` choices, past one (the mock's answers are built whole, in the
# gateway's process: one echo is the size of what the client sent, `n` would multiply it)
MAX_ALL_WORDS = 16_384


class Echo:
    """The reply to one request: its pieces, finish reason and token counts, and how many
    choices (`n`) carry it."""

    __slots__ = ("choices", "finish", "ident", "model", "pieces", "prompt_tokens")

    def __init__(self, body: Mapping[str, Any], raw: bytes, prompt_tokens: int,
                 last: str, limit: int | None, multi: bool = False) -> None:  # fmt: skip
        self.ident = hashlib.sha256(raw).hexdigest()[:24]
        model = body.get("model")
        self.model = model if isinstance(model, str) else "mock"
        self.prompt_tokens = prompt_tokens
        self.choices = choices_of(body) if multi else 1
        most = limit
        if self.choices > 1:
            most = min(MAX_ALL_WORDS // self.choices, MAX_ALL_WORDS if limit is None else limit)
        self.pieces = pieces(_stopped("echo: " + last, stops_of(body) if multi else ()), most)
        self.finish = "stop"
        if most is not None and len(self.pieces) > most:
            self.pieces, self.finish = self.pieces[:most], "length"

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def usage(self) -> dict[str, Any]:
        p, c = self.prompt_tokens, len(self.pieces) * self.choices
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
                "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}}  # fmt: skip


def choices_of(body: Mapping[str, Any]) -> int:
    """`n`: how many choices (each the same echo here), as OpenAI bounds it."""
    n = body.get("n")
    if n is None:
        return 1
    if type(n) is not int or not 1 <= n <= MAX_CHOICES:
        raise BadRequest(f"`n` must be a whole number from 1 to {MAX_CHOICES}")
    return n


def stops_of(body: Mapping[str, Any]) -> tuple[str, ...]:
    """`stop`: a string or up to four, where the reply ends (not included)."""
    stop = body.get("stop")
    if stop is None:
        return ()
    given = [stop] if isinstance(stop, str) else stop
    if (not isinstance(given, list) or len(given) > MAX_STOPS
            or not all(isinstance(s, str) and s for s in given)):  # fmt: skip
        raise BadRequest(f"`stop` must be a string or a list of up to {MAX_STOPS} strings")
    return tuple(given)


def _stopped(text: str, stops: tuple[str, ...]) -> str:
    found = [at for at in (text.find(s) for s in stops) if at >= 0]
    return text[: min(found)] if found else text


def chat_echo(body: Mapping[str, Any], raw: bytes) -> Echo:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("`messages` must be a non-empty list")
    prompt, last = 0, ""
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise BadRequest(f"`messages[{i}]` must be an object")
        text = text_of(message.get("content"), f"messages[{i}].content")
        prompt += words(text)
        if message.get("role") == "user":
            last = text
    limit = limit_of(body, "max_completion_tokens", "max_tokens")
    return Echo(body, raw, prompt, last, limit, multi=True)


def completion_echo(body: Mapping[str, Any], raw: bytes) -> Echo:
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise BadRequest("`prompt` must be a string or a non-empty list of strings")
    total = sum(words(p) for p in prompts)
    return Echo(body, raw, total, prompts[-1], limit_of(body, "max_tokens"), multi=True)


def responses_echo(body: Mapping[str, Any], raw: bytes) -> Echo:
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise BadRequest("`input` must be a string or a non-empty list of items")
    instructions = body.get("instructions")
    prompt = words(instructions) if isinstance(instructions, str) else 0
    last = ""
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise BadRequest(f"`input[{i}]` must be an object")
        text = text_of(item.get("content"), f"input[{i}].content")
        prompt += words(text)
        if item.get("role") == "user":
            last = text
    return Echo(body, raw, prompt, last, limit_of(body, "max_output_tokens"))


def chat_body(echo: Echo) -> bytes:
    message = {"role": "assistant", "content": echo.text, "refusal": None}
    return dumps({
        "id": f"chatcmpl-mock-{echo.ident}", "object": "chat.completion", "created": CREATED,
        "model": echo.model, "system_fingerprint": "mock",
        "choices": [{"index": i, "message": message, "logprobs": None,
                     "finish_reason": echo.finish} for i in range(echo.choices)],
        "usage": echo.usage(),
    })  # fmt: skip


def chat_events(echo: Echo, include_usage: bool) -> list[bytes]:
    head = {"id": f"chatcmpl-mock-{echo.ident}", "object": "chat.completion.chunk",
            "created": CREATED, "model": echo.model, "system_fingerprint": "mock"}  # fmt: skip

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _data({**head, "choices": [choice]})

    events = []
    for i in range(echo.choices):  # each choice's chunks in turn
        events.append(chunk(i, {"role": "assistant", "content": ""}))
        events += [chunk(i, {"content": piece}) for piece in echo.pieces]
        events.append(chunk(i, {}, echo.finish))
    if include_usage:
        events.append(_data({**head, "choices": [], "usage": echo.usage()}))
    return events


def completion_body(echo: Echo) -> bytes:
    choices = [{"text": echo.text, "index": i, "logprobs": None, "finish_reason": echo.finish}
               for i in range(echo.choices)]  # fmt: skip
    return dumps({"id": f"cmpl-mock-{echo.ident}", "object": "text_completion",
                  "created": CREATED, "model": echo.model, "choices": choices,
                  "usage": echo.usage()})  # fmt: skip


def completion_events(echo: Echo, include_usage: bool) -> list[bytes]:
    head = {"id": f"cmpl-mock-{echo.ident}", "object": "text_completion", "created": CREATED,
            "model": echo.model}  # fmt: skip

    def chunk(index: int, text: str, finish: str | None = None) -> bytes:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish}
        return _data({**head, "choices": [choice]})

    events = []
    for i in range(echo.choices):
        events += [chunk(i, piece) for piece in echo.pieces]
        events.append(chunk(i, "", echo.finish))
    if include_usage:
        events.append(_data({**head, "choices": [], "usage": echo.usage()}))
    return events


def embeddings_body(body: Mapping[str, Any]) -> bytes:
    texts, tokens = _embedded(body.get("input"))
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise BadRequest("`encoding_format` must be `float` or `base64`")
    size = body.get("dimensions", DIMENSIONS)
    if type(size) is not int or not 1 <= size <= MAX_DIMENSIONS:
        raise BadRequest(f"`dimensions` must be a whole number from 1 to {MAX_DIMENSIONS:,}")
    if len(texts) * size > MAX_NUMBERS:
        raise BadRequest(f"the mock answers at most {MAX_NUMBERS:,} numbers in all (inputs "
                         "times `dimensions`)")  # fmt: skip
    data = []
    for index, text in enumerate(texts):
        vector = vector_of(text, size)
        embedding: Any = vector
        if encoding == "base64":
            embedding = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    model = body.get("model") if isinstance(body.get("model"), str) else "mock"
    return dumps({"object": "list", "data": data, "model": model,
                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})  # fmt: skip


MAX_DIMENSIONS = 3_072  # text-embedding-3-large's
MAX_INPUTS = 2_048  # OpenAI's bound on the inputs of one request
MAX_NUMBERS = 1_048_576  # the mock's own bound on inputs x dimensions (built whole)
_INPUT_ERROR = ("`input` must be a string, a non-empty list of strings, a list of token ids "
                "or a non-empty list of such lists")  # fmt: skip


def _embedded(given: Any) -> tuple[list[str], int]:
    """The texts to embed and their tokens: strings (a token a word), or token ids as
    OpenAI also takes them (a token an id; the vector is the ids' text's)."""
    if isinstance(given, str):
        return [given], words(given)
    if not isinstance(given, list) or not given:
        raise BadRequest(_INPUT_ERROR)
    if len(given) > MAX_INPUTS and not all(type(t) is int for t in given):
        raise BadRequest(f"`input` holds at most {MAX_INPUTS:,} inputs")
    if all(isinstance(t, str) for t in given):
        return given, sum(words(t) for t in given)
    arrays = [given] if all(type(t) is int for t in given) else given
    if not all(isinstance(a, list) and a and all(type(t) is int and t >= 0 for t in a)
               for a in arrays):  # fmt: skip
        raise BadRequest(_INPUT_ERROR)
    return [" ".join(map(str, a)) for a in arrays], sum(len(a) for a in arrays)


def vector_of(text: str, size: int = DIMENSIONS) -> list[float]:
    """`size` numbers in [-1, 1) from the text's sha256 (and, past 16, the sha256 of it and
    a counter), exact in float32 (base64 = float)."""
    seed = text.encode("utf-8", "surrogatepass")
    stream = hashlib.sha256(seed).digest()
    block = 0
    while len(stream) < 2 * size:
        block += 1
        stream += hashlib.sha256(seed + block.to_bytes(4, "big")).digest()
    return [(int.from_bytes(stream[2 * i : 2 * i + 2], "big") - 32768) / 32768
            for i in range(size)]  # fmt: skip


def _data(value: Any) -> bytes:
    return b"data: " + dumps(value) + b"\n\n"


def responses_body(echo: Echo, body: Mapping[str, Any]) -> bytes:
    return dumps(_response(echo, body, done=True))


def responses_events(echo: Echo, body: Mapping[str, Any]) -> list[bytes]:
    """The Responses API's event sequence for one text message, a delta per word; the
    last event (`response.completed`, or `response.incomplete` when cut) is terminal."""
    item_id = f"msg_mock_{echo.ident}"
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": echo.text, "annotations": []}
    item = _message(echo, item_id, "completed")
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": _response(echo, body, done=False)}),
        ("response.output_item.added",
         {"output_index": 0, "item": {**_message(echo, item_id, "in_progress"), "content": []}}),
        ("response.content_part.added", {**where, "part": {**part, "text": ""}}),
    ]  # fmt: skip
    events += [("response.output_text.delta", {**where, "delta": p}) for p in echo.pieces]
    events += [
        ("response.output_text.done", {**where, "text": echo.text}),
        ("response.content_part.done", {**where, "part": part}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
    ]
    final = _response(echo, body, done=True)
    events.append((f"response.{final['status']}", {"response": final}))
    return [
        b"event: " + kind.encode() + b"\n" + _data({"type": kind, "sequence_number": n, **fields})
        for n, (kind, fields) in enumerate(events)
    ]


def _message(echo: Echo, item_id: str, status: str) -> dict[str, Any]:
    text = {"type": "output_text", "text": echo.text, "annotations": []}
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [text]}  # fmt: skip


def _response(echo: Echo, body: Mapping[str, Any], done: bool) -> dict[str, Any]:
    p, c = echo.prompt_tokens, len(echo.pieces)
    cut = echo.finish == "length"
    instructions = body.get("instructions")
    return {
        "id": f"resp_mock_{echo.ident}", "object": "response", "created_at": CREATED,
        "status": ("incomplete" if cut else "completed") if done else "in_progress",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if done and cut else None,
        "instructions": instructions if isinstance(instructions, str) else None,
        "max_output_tokens": body.get("max_output_tokens"),
        "model": echo.model,
        "output": [_message(echo, f"msg_mock_{echo.ident}", "completed")] if done else [],
        "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0,
        "tool_choice": "auto", "tools": [], "text": {"format": {"type": "text"}},
        "usage": {"input_tokens": p,
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens": c, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": p + c} if done else None,
    }  # fmt: skip
