"""Usage events for chargeback: one JSON line per request that was admitted and settled
(docs/usage-events.md is the format; `catalogc report` sums them).

The file is appended and rotated by size: PATH, PATH.1 … PATH.KEEP. Worker processes may
share one PATH: each batch is one write() on an O_APPEND descriptor (whole lines, never
interleaved), rotation happens under an flock on PATH.lock, and a writer whose file was
rotated away by another process notices (another inode) and reopens. A failed write never
fails a request: it is logged once per kind of error and counted in `dropped`."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from runtime.bundle.money import Usage, dollars, usd
from runtime.bundle.price_tables import requested_tier
from runtime.gateway.log import FINISH_WAIT, log
from runtime.gateway.log_sink import Sink, own_sink
from runtime.routing.ticket import Ticket

VERSION = 1
MAX_BYTES = 64 * 1024 * 1024
KEEP = 5


class EventLog:
    def __init__(self, path: str, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.failed = 0  # events whose write failed
        self._pending: list[str] = []
        self._fd: int | None = None
        self._errors: set[str] = set()
        self._stdout: Sink | None = None  # PATH "-": a reader that stops must not stop us

    @property
    def dropped(self) -> int:
        """Events lost: failed writes, and those a stalled stdout reader had no room for."""
        return self.failed + (self._stdout.lost if self._stdout is not None else 0)

    def add(self, event: dict[str, Any]) -> None:
        """Queue one event; inside a running loop the events of one turn go out together."""
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._pending.append(line)
            self.flush()
            return
        if not self._pending:
            loop.call_soon(self.flush)
        self._pending.append(line)

    def flush(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8")
        count = len(self._pending)
        self._pending.clear()
        try:
            if self.path == "-":
                self._to_stdout(data)
                return
            fd = self._current()
            if os.fstat(fd).st_size + len(data) > self.max_bytes:
                fd = self._rotate(len(data))
            os.write(fd, data)
        except (OSError, ValueError) as exc:
            self.failed += count
            kind = type(exc).__name__
            if kind not in self._errors:  # once per kind: a full disk must not flood the log
                self._errors.add(kind)
                log("usage_events_failed", error=kind, dropped=self.dropped)

    def close(self, deadline: float | None = None) -> None:
        """Write what waits; on a stalled stdout, trying until `deadline` (time.monotonic())."""
        self.flush()
        if self._stdout is not None:
            self._stdout.finish(time.monotonic() + FINISH_WAIT if deadline is None else deadline)
            if self._stdout.lost:
                log("usage_events_dropped", dropped=self.dropped)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _to_stdout(self, data: bytes) -> None:
        if self._stdout is None:
            self._stdout = own_sink(sys.stdout, sys.__stdout__, self._stalled)
        if self._stdout is not None:
            self._stdout.write(data)
            return
        sys.stdout.buffer.write(data)  # stdout replaced in this process: write through it
        sys.stdout.buffer.flush()

    def _stalled(self, lines: int) -> bytes:
        """The stdout reader reads again after `lines` events found no room: say so in the
        log, not in the events (their readers expect usage events only)."""
        log("usage_events_dropped", lines=lines, dropped=self.dropped)
        return b""

    def _current(self) -> int:
        """The descriptor of PATH as it is now (reopened if another process rotated it)."""
        if self._fd is not None:
            try:
                if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                    return self._fd
            except FileNotFoundError:
                pass
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        return self._fd

    def _rotate(self, incoming: int) -> int:
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fd = self._current()  # another process may have rotated meanwhile
            if os.fstat(fd).st_size and os.fstat(fd).st_size + incoming > self.max_bytes:
                for k in range(self.keep - 1, 0, -1):
                    older = f"{self.path}.{k}"
                    if os.path.exists(older):
                        os.replace(older, f"{self.path}.{k + 1}")
                os.replace(self.path, f"{self.path}.1")
                fd = self._current()
            return fd


def usage_event(
    *,
    tickets: Iterable[Ticket],
    workspace: str,
    provider: str | None,
    model: str | None,
    endpoint: str,
    status: int,
    attempts: int,
    stream: bool,
    trace_id: str | None,
    bundle: str,
) -> dict[str, Any] | None:
    """The event of one request from its settled tickets (None: nothing was settled)."""
    settled = [t for t in tickets if t.usage is not None]
    if not settled:
        return None
    tokens = Usage()
    catalog = 0  # units of 1e-16 USD
    chargeback = Decimal(0)
    for ticket in settled:
        used = ticket.usage
        assert used is not None
        tokens = Usage(tokens.input_tokens + used.input_tokens,
                       tokens.output_tokens + used.output_tokens,
                       tokens.cache_read_tokens + used.cache_read_tokens,
                       tokens.cache_write_tokens + used.cache_write_tokens,
                       tokens.cache_write_1h_tokens + used.cache_write_1h_tokens)  # fmt: skip
        if ticket.billed:
            rates = ticket.attempt.catalog_rates or ticket.attempt.rates
            catalog += rates.cost(used, requested_tier(ticket.attempt.params))
        chargeback += ticket.cost or Decimal(0)
    return {
        "v": VERSION,
        "event": "usage",
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "request_id": settled[0].request_id,
        "trace_id": trace_id,
        "workspace": workspace,
        "provider": provider,
        "model": model,
        "endpoint": endpoint,
        "status": status,
        "attempts": attempts,
        "stream": stream,
        "tokens": {
            "input": tokens.input_tokens,
            "output": tokens.output_tokens,
            "cache_read": tokens.cache_read_tokens,
            "cache_write": tokens.cache_write_tokens + tokens.cache_write_1h_tokens,
        },
        "catalog_cost_usd": dollars(usd(catalog)),
        "chargeback_usd": dollars(chargeback),
        "bundle": bundle,
    }
