"""How many bytes of request bodies one gateway process holds at once.

Each request's body is bounded (`--max-body-bytes`), but not their sum: a caller with a key
sending a few hundred large bodies at once (each is read whole, parsed, and serialized again
for the upstream: about three times its size in memory) could take gigabytes and get the
process killed for everyone. The budget counts the bytes of bodies being read or served;
a body that would take the sum past `--max-body-memory` is refused with 503 and Retry-After
as it arrives, before it is read further. Bodies of up to SMALL bytes always pass (they are
counted): the connection cap bounds their sum, and one caller's large bodies must not keep
everyone's ordinary requests out. Bytes count as they are read, not as a Content-Length
announces them: a client cannot hold the budget with headers alone."""

from __future__ import annotations

SMALL = 64 * 1024  # bytes of one body that pass whatever the sum
DEFAULT_LIMIT = 256 * 1024 * 1024


class BodyBudget:
    """One per process; `lease()` per request."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.held = 0  # bytes of all open leases

    def lease(self) -> Lease:
        return Lease(self)


class Lease:
    """One request's share of the budget, given back whole by `close` (idempotent)."""

    __slots__ = ("budget", "size")

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.size = 0

    def take(self, size: int) -> bool:
        """Add `size` bytes of this body; False (nothing taken) if they do not fit."""
        budget = self.budget
        if self.size + size > SMALL and budget.held + size > budget.limit:
            return False
        self.size += size
        budget.held += size
        return True

    def close(self) -> None:
        self.budget.held -= self.size
        self.size = 0
