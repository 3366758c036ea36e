"""runtime/gateway/deadline.py: expires as asyncio.timeout does, counts only unpaused waiting,
never swallows someone else's cancellation, and keeps about one loop timer per period."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.gateway.deadline import Deadline


def run(coro: Any) -> Any:
    return asyncio.run(coro)


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
        loop = asyncio.get_running_loop()
        timers = 0
        call_at = loop.call_at

        def counted(*args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            nonlocal timers
            timers += 1
            return call_at(*args, **kwargs)

        monkeypatch.setattr(loop, "call_at", counted)
        async with Deadline(0.2) as deadline:
            for _ in range(200):  # a fast stream: 200 chunks within one period or two
                deadline.restart()
                await asyncio.sleep(0)
                deadline.pause()
        return timers

    assert run(main()) <= 3
