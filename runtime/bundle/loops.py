"""One object per event loop: the deadlines' clock, the Redis store's pipe and clients.

A gateway runs one loop for its life; a library user or a test may run many, one after
another (`asyncio.run` per call) or in threads. What belongs to one loop (connections,
timers) cannot serve another, so each loop gets its own, found by the loop's id. Two
things make that safe for many loops:
- an id is reused once its loop is freed: an entry counts only for the very loop it was
  made for;
- entries of closed loops are dropped whenever one is added, so a process that runs loop
  after loop keeps only its live ones (the dropped connections' sockets close when they are
  collected: a closed loop can no longer close them); at most `limit` are kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
LIMIT = 64  # live event loops remembered (a process runs one; tests run many)


class PerLoop(Generic[T]):
    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int = LIMIT) -> None:
        self._entries: dict[int, tuple[asyncio.AbstractEventLoop, T]] = {}
        self._limit = limit

    def get(self, loop: asyncio.AbstractEventLoop, make: Callable[..., T], *args: Any) -> T:
        """`loop`'s object, `make(*args)` the first time."""
        found = self._entries.get(id(loop))
        if found is not None and found[0] is loop:
            return found[1]
        value = make(*args)
        self._add(loop, value)
        return value

    def find(self, loop: asyncio.AbstractEventLoop) -> T | None:
        found = self._entries.get(id(loop))
        return found[1] if found is not None and found[0] is loop else None

    def pop(self, loop: asyncio.AbstractEventLoop) -> T | None:
        found = self.find(loop)
        if found is not None:
            self._entries.pop(id(loop), None)
        return found

    def __len__(self) -> int:
        return len(self._entries)

    def _add(self, loop: asyncio.AbstractEventLoop, value: T) -> None:
        entries = self._entries
        # snapshots: another thread may add its loop's entry meanwhile
        for key, (other, _) in list(entries.items()):
            if other.is_closed():
                entries.pop(key, None)
        for key in list(entries)[: max(0, len(entries) - self._limit + 1)]:
            entries.pop(key, None)  # the oldest live ones, past the limit
        entries[id(loop)] = (loop, value)
