"""One JSON object per line on stderr: start, reloads, and one line per request. Only
catalog slugs, statuses, counts, costs and timings: never a key, a credential or prompt text."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


def log(event: str, **fields: Any) -> None:
    line = {"ts": round(time.time(), 3), "event": event, **fields}
    try:
        sys.stderr.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or full stderr must not fail a request
        pass


class JsonLines(logging.Handler):
    """Library log records (the Redis store's warnings, aiohttp's) as our JSON lines.
    aiohttp's server errors quote the start of a bad request line or header, which may be
    a client's key: for those only the exception's type is kept."""

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {"logger": record.name, "level": record.levelname.lower()}
        if record.name.startswith("aiohttp"):
            kind = record.exc_info[0] if record.exc_info else None
            fields["error"] = kind.__name__ if kind is not None else "unknown"
        else:
            fields["message"] = record.getMessage()
        log("library", **fields)


def route_library_logs() -> None:
    """Every logger's records go through JsonLines, nothing else prints."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(JsonLines())
    root.setLevel(logging.WARNING)
