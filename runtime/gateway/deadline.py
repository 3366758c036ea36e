"""A deadline on one task's awaits, cheaper than `asyncio.timeout` where it moves often.

A stream's idle timeout starts again at every chunk. `asyncio.timeout` per chunk creates a
context and starts and stops a loop timer (a libuv timer under uvloop): ~25,000
instructions a chunk, as much as the rest of relaying it. A `Deadline` keeps one timer and
moves only its own due time; when the timer fires early it is set again for the due time,
so there is about one timer per idle period, not one per chunk. Paused (while the client is
written to, which is not the upstream's silence) it does not expire.

Expiry cancels the task, and the `async with` block turns that cancellation into
TimeoutError exactly as `asyncio.timeout` does: only when no one else cancelled the task
meanwhile (`Task.uncancel` counts the requests), else the cancellation goes on.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadline:
    """`async with Deadline(seconds) as deadline:`; `restart()` begins a new period,
    `pause()` stops the clock until the next `restart()`."""

    __slots__ = ("_cancelling", "_due", "_handle", "_loop", "_seconds", "_task", "expired")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._loop = asyncio.get_running_loop()
        self._due: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self.expired = False

    async def __aenter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._due = self._loop.time() + self._seconds
        self._handle = self._loop.call_at(self._due, self._fire)
        return self

    def restart(self) -> None:
        self._due = self._loop.time() + self._seconds  # the timer fires no later than this

    def pause(self) -> None:
        self._due = None

    def _fire(self) -> None:
        now = self._loop.time()
        due = self._due
        if due is None or now < due:  # moved on (or paused) since it was set: set it again
            self._handle = self._loop.call_at(now + self._seconds if due is None else due,
                                              self._fire)  # fmt: skip
            return
        self.expired = True
        self._handle = None
        self._task.cancel()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self.expired:
            # as asyncio.timeout: its cancel request is taken back whatever ended the block
            only_ours = self._task.uncancel() <= self._cancelling
            if only_ours and kind is asyncio.CancelledError:
                raise TimeoutError from exc
