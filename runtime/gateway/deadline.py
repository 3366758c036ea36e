"""A deadline on one task's awaits, cheaper than `asyncio.timeout` where it moves often
and where there are many.

A stream's idle timeout starts again at every chunk. `asyncio.timeout` per chunk creates a
context and starts and stops a loop timer (a libuv timer under uvloop): ~25,000
instructions a chunk, as much as the rest of relaying it. A `Deadline` only moves its own
due time. The deadlines of one event loop share one loop timer (`_Clock`), set for the
earliest of them; when it fires it expires those that are due and is set again for the
next, so a request no longer starts and stops a timer of its own (2.4 µs of the 4.6 µs a
deadline cost per request). Paused (while the client is written to, which is not the
upstream's silence) a deadline does not expire.

Expiry cancels the task, and the `async with` block turns that cancellation into
TimeoutError exactly as `asyncio.timeout` does: only when no one else cancelled the task
meanwhile (`Task.uncancel` counts the requests), else the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

from runtime.bundle.loops import PerLoop


class _Clock:
    """The live deadlines of one event loop, and the one timer set for the earliest. A
    deadline that ends early leaves the timer as it is: it fires once for nothing (at most
    a period later), which costs less than stopping and starting it per request."""

    __slots__ = ("at", "handle", "live", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.live: dict[Deadline, None] = {}
        self.handle: asyncio.TimerHandle | None = None
        self.at = math.inf

    def add(self, deadline: Deadline, due: float) -> None:
        self.live[deadline] = None
        if due < self.at:
            self._set(due)

    def _set(self, at: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.at = at
        self.handle = self.loop.call_at(at, self._tick)

    def _tick(self) -> None:
        self.handle, self.at = None, math.inf
        now = self.loop.time()
        after = math.inf
        for deadline in list(self.live):
            due = deadline._due
            if due is None:  # paused: looked at again a period from now
                due = now + deadline._seconds
            elif due <= now:
                del self.live[deadline]
                deadline._fire()
                continue
            after = min(after, due)
        if after < math.inf:
            self._set(after)


_clocks: PerLoop[_Clock] = PerLoop()


def _clock(loop: asyncio.AbstractEventLoop) -> _Clock:
    return _clocks.get(loop, _Clock, loop)


class Deadline:
    """`async with Deadline(seconds) as deadline:`; `restart()` begins a new period,
    `pause()` stops the clock until the next `restart()`."""

    __slots__ = ("_cancelling", "_clock", "_due", "_seconds", "_task", "expired")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._due: float | None = None
        self.expired = False

    async def __aenter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        clock = self._clock = _clock(task.get_loop())
        self._due = due = clock.loop.time() + self._seconds
        clock.add(self, due)
        return self

    def restart(self) -> None:
        # later than before: the clock's timer fires no later than this
        self._due = self._clock.loop.time() + self._seconds

    def pause(self) -> None:
        self._due = None

    def _fire(self) -> None:
        """Due: the clock took it off its list."""
        self.expired = True
        self._task.cancel()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._clock.live.pop(self, None)
        if self.expired:
            # as asyncio.timeout: its cancel request is taken back whatever ended the block
            only_ours = self._task.uncancel() <= self._cancelling
            if only_ours and kind is asyncio.CancelledError:
                raise TimeoutError from exc
