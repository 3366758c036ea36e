"""What one process holds of upstream answers still arriving: a whole answer being read, a
stream's event not ended yet. Each is bounded (64 MiB); their sum is bounded here, so that
an upstream sending large answers on many requests at once (or starting large events and
stalling) cannot take the process's memory: past `LIMIT`, the answer that would grow the
sum is refused as the upstream's protocol error (502, or a stream's error event).

Only what is past `SMALL` counts: chat chunks and ordinary answers never touch the sum."""

from __future__ import annotations

from runtime.upstream.base import UpstreamProtocolError

LIMIT = 256 * 1024 * 1024  # every answer held at once, per process
SMALL = 1024 * 1024  # an answer or event up to this is not counted
_total = [0]  # one per process (the gateway serves from one event loop)


class Held:
    """One answer's (or one stream's current event's) bytes, as counted in the sum."""

    __slots__ = ("counted",)

    def __init__(self) -> None:
        self.counted = 0

    def grow(self, size: int, what: str) -> None:
        """`size` bytes are held now; UpstreamProtocolError if the sum would pass LIMIT."""
        counted = size if size > SMALL else 0
        delta = counted - self.counted
        if not delta:
            return
        _total[0] += delta
        self.counted = counted
        if delta > 0 and _total[0] > LIMIT:
            self.release()
            raise UpstreamProtocolError(
                f"{what}: the upstream answers this process holds would pass {LIMIT:,} bytes"
            )

    def release(self) -> None:
        _total[0] -= self.counted
        self.counted = 0

    def __del__(self) -> None:  # an answer abandoned mid-way (a client gone, a cut)
        self.release()


def total() -> int:
    return _total[0]
