"""runtime/gateway/deadline.py: expires as asyncio.timeout does, counts only unpaused waiting,
never swallows someone else's cancellation, and keeps about one loop timer per period."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.gateway.deadline import Deadline


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def count_timers(monkeypatch: pytest.MonkeyPatch, deadlines_only: bool = False) -> list[int]:
    """Counts the running loop's timers set from now on (in its one item)."""
    loop = asyncio.get_running_loop()
    count = [0]
    call_at = loop.call_at

    def counted(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        owner = getattr(callback, "__self__", None)
        if not deadlines_only or type(owner).__module__ == Deadline.__module__:
            count[0] += 1
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counted)
    return count


def test_a_wait_past_the_deadline_is_a_timeout() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError):
            async with Deadline(0.05):
                await asyncio.sleep(5)
        return loop.time() - start

    assert 0.045 <= run(main()) < 1.0


def test_restarts_keep_it_alive_and_the_task_usable_after() -> None:
    async def main() -> int:
        async with Deadline(0.05) as deadline:
            for _ in range(8):  # 0.16 s in all, each wait shorter than the deadline
                deadline.restart()
                await asyncio.sleep(0.02)
        await asyncio.sleep(0)  # no cancellation is left pending on the task
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert run(main()) == 0


def test_paused_time_does_not_count_and_a_restart_counts_again() -> None:
    async def main() -> None:
        async with Deadline(0.05) as deadline:
            deadline.pause()
            await asyncio.sleep(0.15)  # writing to a slow client
            deadline.restart()
            await asyncio.sleep(0.01)
        with pytest.raises(TimeoutError):
            async with Deadline(0.05) as deadline:
                deadline.pause()
                await asyncio.sleep(0.08)
                deadline.restart()
                await asyncio.sleep(5)

    run(main())


def test_someone_elses_cancellation_is_not_a_timeout() -> None:
    async def waiter(started: asyncio.Event) -> None:
        async with Deadline(5):
            started.set()
            await asyncio.sleep(5)

    async def main() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(waiter(started))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())


def test_a_cancellation_with_the_expiry_stays_a_cancellation() -> None:
    """The deadline expires and someone else cancels in the same loop turn: the task is
    cancelled (as asyncio.timeout leaves it), not answered with a timeout."""

    class Racing(Deadline):
        def _fire(self) -> None:
            super()._fire()
            if self.expired:
                self._task.cancel()  # a client gone, in the same turn

    async def main() -> bool:
        racing = Racing(0.02)
        with pytest.raises(asyncio.CancelledError):
            async with racing:
                await asyncio.sleep(5)
        return racing.expired

    assert run(main()) is True


def test_one_timer_per_period_not_per_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> int:
        timers = count_timers(monkeypatch)
        async with Deadline(0.2) as deadline:
            for _ in range(200):  # a fast stream: 200 chunks within one period or two
                deadline.restart()
                await asyncio.sleep(0)
                deadline.pause()
        return timers[0]

    assert run(main()) <= 3


def test_the_deadlines_of_a_loop_share_one_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests one after another, and many at once with the same timeout: one loop timer,
    not one each; a shorter deadline added later sets it earlier."""

    async def main() -> int:
        timers = count_timers(monkeypatch, deadlines_only=True)  # not asyncio.sleep's
        for _ in range(100):
            async with Deadline(30):
                await asyncio.sleep(0)

        async def one() -> None:
            async with Deadline(30):
                await asyncio.sleep(0.01)

        await asyncio.gather(*(one() for _ in range(100)))
        with pytest.raises(TimeoutError):
            async with Deadline(0.02):  # earlier than the shared timer: it is set again
                await asyncio.sleep(5)
        return timers[0]

    assert run(main()) <= 3


def test_deadlines_sharing_a_timer_expire_each_on_time() -> None:
    """Forty waits under deadlines of 30 to 200 ms, half of them longer than their own:
    exactly those time out, each no earlier than its deadline and not much later."""

    async def one(i: int) -> tuple[bool, float, float]:
        seconds = 0.03 + (i % 8) * 0.025
        wait = seconds * (2.0 if i % 2 else 0.3)
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with Deadline(seconds):
                await asyncio.sleep(wait)
        except TimeoutError:
            return True, loop.time() - start, seconds
        return False, loop.time() - start, seconds

    async def main() -> list[tuple[bool, float, float]]:
        return await asyncio.gather(*(one(i) for i in range(40)))

    for i, (timed_out, took, seconds) in enumerate(run(main())):
        assert timed_out == bool(i % 2)
        if timed_out:
            assert seconds * 0.95 <= took < seconds + 0.5
