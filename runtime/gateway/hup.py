"""SIGHUP while the gateway is still starting: its default action would kill the process (a
reload hook that fires during a start, or a supervisor passing one on). `catch` notes it
instead, as early as the process can; `server.run` makes the reload once it serves (the
supervisor notes one too for a worker it starts while its siblings retry a failed reload).
This module imports nothing heavy, so that `python -m runtime.gateway` can call it first."""

from __future__ import annotations

import signal

pending: list[int] = []  # the SIGHUPs noted before the event loop took the signal over


def catch() -> None:
    signal.signal(signal.SIGHUP, lambda signum, frame: pending.append(signum))
