"""Progress events from the pipeline; only the CLI decides whether to draw them (TTY only)."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    def start(self, stage: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...


class NullProgress:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


class TerminalProgress:
    """A one-line counter on stderr, redrawn at most ten times a second, for long stages."""

    MIN_TOTAL = 500

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.stage = ""
        self.total = 0
        self.done = 0
        self.last = 0.0
        self.drawn = False

    def start(self, stage: str, total: int) -> None:
        self.stage, self.total, self.done, self.drawn = stage, total, 0, False

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.total >= self.MIN_TOTAL and now - self.last > 0.1:
            self.last = now
            self.drawn = True
            self.stream.write(f"\r{self.stage}: {self.done}/{self.total}")
            self.stream.flush()

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
