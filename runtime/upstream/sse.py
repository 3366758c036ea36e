"""An incremental server-sent-events parser (the WHATWG `text/event-stream` rules) that keeps
each event's raw bytes, so a pass-through relays exactly what the upstream sent.

Bytes arrive in any split: mid-line, mid-`\\r\\n`, mid-UTF-8 sequence. An event is dispatched
as soon as its blank line ends (no waiting for more bytes). Lines end with `\\n`,
`\\r\\n` or a lone `\\r`; a blank line ends an event; `:` lines are comments; several `data:`
lines join with `\\n`. Memory is bounded: an event (or a line that never ends) larger than
`max_event` bytes is an UpstreamProtocolError, never an ever-growing buffer; the events
the same chunk completed before it are returned first, and the error raised at the next
feed (they were whole: a client is owed them, and the books count them). Bytes that are
not UTF-8 are decoded with replacement characters: the parser never raises on content.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from runtime.bundle.values import value
from runtime.upstream.base import UpstreamProtocolError
from runtime.upstream.held import SMALL, Held

# One event must fit here. Chat chunks are a few hundred bytes, but the Responses API's
# `response.completed` repeats the whole answer (an image generation's base64 result, a
# few MB): an event may be as large as a whole answer may be (execute.MAX_ANSWER_BYTES).
MAX_EVENT = 64 * 1024 * 1024

_CR, _LF = 0x0D, 0x0A
_CONTENT = re.compile(rb"[^\r\n]")  # where a run of line ends stops


@value
class Event:
    """One dispatched block: `data` is None for a block of comments only (a keep-alive)."""

    event: str | None  # the `event:` field (last one wins); None when absent
    data: str | None  # `data:` lines joined with "\n"
    raw: bytes  # the block exactly as received, terminating blank line included


class SSEParser:
    """Feed bytes, get the events they complete; `pending` says whether a block is open."""

    __slots__ = ("_cr", "_data", "_event", "_failed", "_held", "_line", "_max", "_open", "_raw")

    def __init__(self, max_event: int = MAX_EVENT) -> None:
        self._max = max_event
        self._held = Held()  # the current event's bytes, in the process's sum (held.py)
        self._line = bytearray()  # the current line, not yet terminated
        self._raw = bytearray()  # the current block's complete lines, terminators included
        self._cr = False  # the last line ended with `\r`: a `\n` first in the next feed joins it
        self._data: list[bytes] = []
        self._event: bytes | None = None
        self._open = False  # the current block has a non-blank line
        self._failed: UpstreamProtocolError | None = None  # raised at the next feed

    @property
    def pending(self) -> bool:
        """Bytes of an unfinished block are buffered (the stream ended mid-event?)."""
        return bool(self._raw or self._line)

    def feed(self, chunk: bytes) -> list[Event]:
        if self._failed is not None:
            raise self._failed
        if not (self._raw or self._line or self._cr) and b"\r" not in chunk:
            whole = self._whole_data_events(chunk)
            if whole is not None:
                return whole
        return self._feed(chunk)

    def _whole_data_events(self, chunk: bytes) -> list[Event] | None:
        """The common chunk, parsed in one go: whole events of one `data:` line each
        (`data: …\n\n` …), nothing pending before it. None: anything else, for `_feed`,
        which reads it line by line to the same events."""
        if not chunk.endswith(b"\n\n"):
            return None
        events = []
        for block in chunk[:-2].split(b"\n\n"):
            if not block.startswith(b"data:") or b"\n" in block or len(block) + 2 > self._max:
                return None
            value = block[6:] if block[5:6] == b" " else block[5:]
            events.append(Event(None, value.decode("utf-8", "replace"), block + b"\n\n"))
        return events

    def _feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        try:
            self._lines(chunk, events)
        except UpstreamProtocolError as exc:
            if not events:
                raise
            self._failed = exc
        return events

    def _lines(self, chunk: bytes, events: list[Event]) -> None:
        start, size = 0, len(chunk)
        if self._cr and size and chunk[0] == _LF:
            # the second half of a `\r\n` split across feeds; after a blank line the event
            # has gone already, so it is dropped (the one split that changes the raw bytes,
            # not what any reader sees)
            if self._open:
                self._raw.append(_LF)
            start = 1
        if size:
            self._cr = False  # (an empty feed keeps it: the `\n` may still come)
        # next `\r` / `\n` positions, recomputed only once passed: linear in the chunk
        next_cr = chunk.find(b"\r", start)
        next_lf = chunk.find(b"\n", start)
        while start < size:
            if not self._open and not self._line and chunk[start] in (_CR, _LF):
                # blank lines between blocks, skipped in one C call: a line at a time, a
                # flood of them (64 MiB gzipped to 64 KiB) held the process for a minute
                found = _CONTENT.search(chunk, start)
                start = found.start() if found is not None else size
                self._cr = False
                continue
            if next_cr != -1 and next_cr < start:
                next_cr = chunk.find(b"\r", start)
            if next_lf != -1 and next_lf < start:
                next_lf = chunk.find(b"\n", start)
            end = _first(next_cr, next_lf)
            if end == -1:
                self._line += chunk[start:]
                self._check()
                break
            if chunk[end] == _CR:
                if end + 1 < size:
                    stop = end + 2 if chunk[end + 1] == _LF else end + 1
                else:
                    stop = end + 1
                    self._cr = True
            else:
                stop = end + 1
            self._line_done(chunk, start, end, stop, events)
            start = stop

    def _line_done(
        self, chunk: bytes, start: int, end: int, stop: int, events: list[Event]
    ) -> None:
        if self._line:
            self._line += chunk[start:end]
            line = bytes(self._line)
            self._line.clear()
        else:
            line = chunk[start:end]
        self._raw += line
        self._raw += chunk[end:stop]
        self._check()
        if line:
            self._open = True
            self._field(line)
        elif self._open:
            events.append(self._dispatch())
        else:
            self._raw.clear()  # blank lines between blocks: nothing to dispatch or relay

    def _field(self, line: bytes) -> None:
        if line[0] == 0x3A:  # ":" a comment
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        # `id`, `retry` and unknown fields stay in the raw bytes only

    def _dispatch(self) -> Event:
        data = b"\n".join(self._data).decode("utf-8", "replace") if self._data else None
        name = self._event.decode("utf-8", "replace") if self._event is not None else None
        event = Event(name, data, bytes(self._raw))
        self._raw.clear()
        self._held.release()
        self._data = []
        self._event = None
        self._open = False
        return event

    def _check(self) -> None:
        size = len(self._raw) + len(self._line)
        if size <= SMALL and size <= self._max and not self._held.counted:
            return  # the common event: nothing to count
        try:
            if size > self._max:
                raise UpstreamProtocolError(
                    f"upstream sent a stream event larger than {self._max:,} bytes "
                    f"({size:,} so far)"
                )
            self._held.grow(size, "a stream event")
        except UpstreamProtocolError:
            self._raw.clear()
            self._line.clear()
            self._held.release()
            raise


def client_bytes(
    translator: Any, events: list[Event], step: Callable[[Event, list[bytes]], None]
) -> bytes:
    """The client's bytes for `events`, each through `step`, until `translator.done`. A
    malformed event keeps what the events before it gave: `UpstreamProtocolError.partial`,
    sent ahead of the error event (the relay charges for what the client was sent)."""
    out: list[bytes] = []
    try:
        for event in events:
            if translator.done:
                break
            step(event, out)
    except UpstreamProtocolError as exc:
        exc.partial = b"".join(out)
        raise
    return b"".join(out)


def _first(a: int, b: int) -> int:
    """The smaller of two `find` results, -1 meaning absent."""
    if a == -1:
        return b
    if b == -1:
        return a
    return a if a < b else b
