"""One JSON object per line on stderr: start, reloads, and one line per request. Only
catalog slugs, statuses, counts, costs and timings: never a key, a credential or prompt text."""

from __future__ import annotations

import json
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
