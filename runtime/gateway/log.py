"""One JSON object per line on stderr: start, reloads, and one line per request. Only
catalog slugs, statuses, counts, costs and timings: never a key, a credential or prompt text."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

from runtime.bundle.errors import clip
from runtime.gateway.log_sink import PIPE_BUF, Sink, own_sink
from runtime.upstream.json_codec import dumps_line

_pending: list[str] = []  # lines of this event-loop turn, written together at its end
_sink: Sink | None = None  # while serving: stderr without blocking the loop (log_sink.py)
FINISH_WAIT = 2.0  # seconds the last lines may wait for a slow reader at exit
# bytes of a line, at most: what a pipe writes whole (PIPE_BUF). Workers share stderr, and a
# longer line could be torn by another's write (a reload error listing many references was)
MAX_LINE = PIPE_BUF
CLIPPED = 256  # characters of each string a line too long keeps


def log(event: str, **fields: Any) -> None:
    """Write one line. Inside a running loop, the lines of one turn go out in one write
    after it (a write and a flush per request cost as much as the rest of the log line)."""
    text = _render(event, fields)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _write(text)
        return
    if not _pending:
        loop.call_soon(flush)
    _pending.append(text)


def _render(event: str, fields: dict[str, Any]) -> str:
    """One line's text: within MAX_LINE bytes, its strings clipped if it would be longer."""
    line = {"ts": round(time.time(), 3), "event": event, **fields}
    text = dumps_line(line) + "\n"
    if len(text) > MAX_LINE // 4 and len(text.encode()) > MAX_LINE:  # UTF-8: 4 bytes a char
        text = _fit(line)
    return text


def _fit(line: dict[str, Any]) -> str:
    """A line past MAX_LINE with its strings clipped (and saying so), or its event alone."""
    shorter = {key: _clip(value) for key, value in line.items()}
    shorter["clipped"] = True
    text = dumps_line(shorter) + "\n"
    if len(text.encode()) <= MAX_LINE:
        return text
    return dumps_line({"ts": line["ts"], "event": line["event"], "clipped": True}) + "\n"


def _clip(value: Any) -> Any:
    if isinstance(value, str):
        return clip(value, CLIPPED)
    if isinstance(value, dict):
        return {key: _clip(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clip(item) for item in value[:16]]
    return value


def flush() -> None:
    if _pending:
        text = "".join(_pending)
        _pending.clear()
        _write(text)


def _write(text: str) -> None:
    if _sink is not None:
        _sink.write(text.encode())
        return
    err = sys.stderr
    if err is None:  # started with stderr closed: nowhere to write
        return
    try:
        err.write(text)
        err.flush()
    except (OSError, ValueError):  # a closed or full stderr must not fail a request
        pass


def _dropped(lines: int) -> bytes:
    return _render("log_dropped", {"lines": lines}).encode()


def open_sink() -> None:
    """From here on, lines go to stderr without ever waiting for its reader (log_sink.py).
    Called by each serving process in its loop, and by the supervisor of workers."""
    global _sink
    try:
        _sink = own_sink(sys.stderr, sys.__stderr__, _dropped)
    except (OSError, ValueError):  # no descriptor behind it
        _sink = None
    if _sink is not None and _sink.blocking_reason is not None:
        log("log_blocking", reason=_sink.blocking_reason)


def close_sink(deadline: float | None = None) -> None:
    """Write what waits, trying until `deadline` (time.monotonic(); FINISH_WAIT from now by
    default), and go back to plain stderr."""
    global _sink
    flush()
    if _sink is not None:
        sink, _sink = _sink, None
        sink.finish(time.monotonic() + FINISH_WAIT if deadline is None else deadline)


def retry_sink() -> None:
    """Lines waiting for a stalled reader are tried again (the supervisor has no loop)."""
    if _sink is not None:
        _sink.retry()


def _forget_inherited() -> None:
    """A forked child does not write its parent's waiting lines (they would appear twice)."""
    global _sink
    _sink = None
    _pending.clear()


os.register_at_fork(after_in_child=_forget_inherited)


MAX_TEMPLATE = 200  # characters of another library's message template kept


class JsonLines(logging.Handler):
    """Library log records (the Redis store's warnings, aiohttp's) as our JSON lines.
    Only our own modules' messages are kept whole. aiohttp's server errors quote the start
    of a bad request line or header, which may be a client's key: for those only the
    exception's type is kept. Other libraries fill their templates with what they were
    given, a client's `tracestate` member say (OpenTelemetry's warning): their template is
    kept, never its arguments."""

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {"logger": record.name, "level": record.levelname.lower()}
        if record.name == "runtime" or record.name.startswith("runtime."):
            fields["message"] = record.getMessage()
        elif record.name.startswith("aiohttp"):
            kind = record.exc_info[0] if record.exc_info else None
            fields["error"] = kind.__name__ if kind is not None else "unknown"
        else:
            fields["message"] = str(record.msg)[:MAX_TEMPLATE]
        log("library", **fields)


def route_library_logs() -> None:
    """Every logger's records go through JsonLines, nothing else prints."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(JsonLines())
    root.setLevel(logging.WARNING)
