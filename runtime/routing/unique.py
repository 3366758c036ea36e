"""Ids unique across processes, replicas and forked workers, without a system call for
randomness on every id: a random prefix per process and a counter. The prefix is drawn
again in every forked child (`--workers` forks its workers after the imports): drawn once at
import, every worker handed out the same trace ids, and a router built before a fork the
same request ids (a review)."""

from __future__ import annotations

import itertools
import os
import uuid


class Ids:
    """`next()`: the prefix, then the counter in `digits` hex digits (0: in decimal)."""

    def __init__(self, prefix_length: int, digits: int = 0, separator: str = "") -> None:
        self._length, self._digits, self._separator = prefix_length, digits, separator
        self._count = itertools.count()
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self._prefix = uuid.uuid4().hex[: self._length] + self._separator

    def next(self) -> str:
        n = next(self._count)
        return f"{self._prefix}{n:0{self._digits}x}" if self._digits else f"{self._prefix}{n}"
