"""How many bytes of request bodies one gateway process holds at once.

Each request's body is bounded (`--max-body-bytes`), but not their sum: a caller with a key
sending a few hundred large bodies at once (each is read whole, parsed, and serialized again
for the upstream: about three times its size in memory) could take gigabytes and get the
process killed for everyone. The budget counts the bytes of bodies being read or served;
a body that would take the sum past `--max-body-memory`, or its workspace's share past half
of it, is refused with 503 and Retry-After as it arrives, before it is read further. The
share keeps one workspace's flood from taking every other workspace's large bodies down
with it. Bodies of up to SMALL bytes always pass (they are counted): the connection cap
bounds their sum, and no caller's large bodies must keep anyone's ordinary requests out.
Bytes count as they are read, not as a Content-Length announces them: a client cannot hold
the budget with headers alone."""

from __future__ import annotations

SMALL = 64 * 1024  # bytes of one body that pass whatever the sum
DEFAULT_LIMIT = 256 * 1024 * 1024
SHARE = 2  # one workspace holds at most 1/SHARE of the limit


class BodyBudget:
    """One per process; `lease()` per request."""

    __slots__ = ("by_workspace", "held", "limit")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.held = 0  # bytes of all open leases
        self.by_workspace: dict[str, int] = {}  # of those, per workspace (none left at 0)

    def lease(self) -> Lease:
        return Lease(self)


class Lease:
    """One request's share of the budget, given back whole by `close` (idempotent).
    `workspace` is set once the caller is known, before any of the body is read."""

    __slots__ = ("budget", "size", "workspace")

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.size = 0
        self.workspace = ""

    def fits(self, size: int) -> bool:
        """Would `size` more bytes of this body be taken now?"""
        budget = self.budget
        own = budget.by_workspace.get(self.workspace, 0)
        return self.size + size <= SMALL or (
            budget.held + size <= budget.limit and own + size <= budget.limit // SHARE
        )

    def take(self, size: int) -> bool:
        """Add `size` bytes of this body; False (nothing taken) if they do not fit."""
        if not size:
            return True
        if not self.fits(size):
            return False
        budget = self.budget
        own = budget.by_workspace.get(self.workspace, 0)
        self.size += size
        budget.held += size
        budget.by_workspace[self.workspace] = own + size
        return True

    def close(self) -> None:
        if not self.size:
            return
        budget = self.budget
        budget.held -= self.size
        left = budget.by_workspace[self.workspace] - self.size
        if left:
            budget.by_workspace[self.workspace] = left
        else:
            del budget.by_workspace[self.workspace]
        self.size = 0
