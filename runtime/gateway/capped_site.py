"""The listening site, with a bound on open client connections.

Every connection holds a descriptor, and the process needs descriptors of its own for the
upstreams and the store: a flood of connections (each lives up to `--client-timeout` idle)
must not leave none for them, or every caller gets 502s. At `--max-connections`, a new
connection takes the place of the oldest one that is waiting for a request (idle between
requests, or its headers not complete): one client opening connections and sending nothing
cannot keep the others out, and an idle keep-alive connection costs its client only a
reconnect. So does one whose last request was answered before its body was all read
(aiohttp then reads and drops the rest for up to 10 s, so that the client can read the
answer): a caller without a key could otherwise hold connections that way. Failing those,
the request whose body has been arriving the longest is cut: a caller with a key trickling
bodies could otherwise hold every connection for the client timeout (a body that came with
its headers, as almost all do, is never among them). When every open connection has a
request in progress otherwise, the new one is answered 503 with `Retry-After: 1` and closed
at once, before aiohttp reads anything from it.
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import socket
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from runtime.gateway.connection import adopt, raw_answer
from runtime.gateway.replies import error_body

CAP = 10_000  # connections, at most, when chosen from the descriptor limit
SCAN = 256  # the oldest connections looked at for one waiting for a request
PRUNE = 256  # Lingering's entries, at least, before those no longer lingering are dropped
REFUSAL = raw_answer("503 Service Unavailable", error_body(
    503, "the gateway has too many open connections; retry", "too_many_connections"),
    "Retry-After: 1\r\n")  # fmt: skip


def default_max_connections() -> int:
    """Half the process's descriptors (the rest for upstreams, the store, files), at most
    CAP, at least 64."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return CAP
    return max(64, min(CAP, soft // 2))


class Lingering:
    """Connections whose last request was answered with its body not all read (the app tells
    `add`): aiohttp reads and drops the rest before the next request, or closes, for up to
    10 s; and it keeps the connection in its table that long even once the client has gone
    (its lingering read waits on the body, which a closed connection never ends): `release`
    ends that read, so that the connection leaves the table and its slot is free."""

    __slots__ = ("_bodies", "_prune_at")

    def __init__(self) -> None:
        self._bodies: dict[Any, Any] = {}  # aiohttp's connection -> the unread body's stream
        self._prune_at = PRUNE

    def add(self, handler: Any, body: Any) -> None:
        self._bodies[handler] = body
        if len(self._bodies) >= self._prune_at:  # those drained or given up since go
            self._bodies = {h: b for h, b in self._bodies.items() if _lingering(b)}
            self._prune_at = max(PRUNE, 2 * len(self._bodies))

    def holds(self, handler: Any) -> bool:
        body = self._bodies.get(handler)
        return body is not None and _lingering(body)

    def release(self, handler: Any) -> bool:
        """End aiohttp's lingering read on `handler`, if there is one; True if there was."""
        body = self._bodies.pop(handler, None)
        if body is None or not _lingering(body):
            return False
        body.feed_eof()
        return True


def close_unread(handler: Any) -> None:
    """Close `handler`'s connection once its answer is written, without aiohttp's lingering
    read: for a body the client was never invited to send (`Expect: 100-continue`), so
    that none is in flight to be cut off. (Private: aiohttp has no public switch for it; if
    it goes, the connection lingers as before, and the tests say so.)"""
    if hasattr(handler, "_lingering_time"):
        handler._lingering_time = 0.0


def _lingering(body: Any) -> bool:
    """aiohttp still reads the rest of `body`: neither all read, nor given up (it then sets
    an exception on the body)."""
    return not body.is_eof() and body.exception() is None


class Reading:
    """Requests whose body is still arriving (the app tells `start` and `finish`; a body that
    came whole with its headers is never here), oldest first."""

    __slots__ = ("_cut", "_since")

    def __init__(self) -> None:
        self._since: dict[Any, float] = {}  # aiohttp's connection -> loop time its body began
        self._cut: set[Any] = set()  # of those, the ones the cap closed

    def start(self, handler: Any, now: float) -> None:
        """`now`: the loop's time, which aiohttp's keep-alive times are in too."""
        self._since[handler] = now

    def finish(self, handler: Any) -> bool:
        """Forget `handler`; True if the cap closed it (idempotent)."""
        self._since.pop(handler, None)
        if handler in self._cut:
            self._cut.discard(handler)
            return True
        return False

    def slowest(self) -> tuple[Any, float] | None:
        """The connection whose body has been arriving longest, and since when (loop time)."""
        for handler, since in self._since.items():
            if handler.transport is not None and handler not in self._cut:
                return handler, since
        return None

    def cut(self, handler: Any) -> None:
        self._cut.add(handler)
        handler.force_close()  # the body's read fails; `finish` tells the app why


class Rotor:
    """Where to look past the oldest SCAN connections when none of those can go (all busy):
    each such newcomer looks at the next SCAN in turn, so that an idle connection anywhere in
    the table is found within len/SCAN newcomers, at a bounded cost for each."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = SCAN

    def window(self, live: dict[Any, Any]) -> Iterator[Any]:
        if self.at >= len(live):
            self.at = SCAN
        start, self.at = self.at, self.at + SCAN
        return itertools.islice(live, start, start + SCAN)


def evict_waiting(live: dict[Any, Any], lingering: Lingering, reading: Reading,
                  rotor: Rotor | None = None) -> bool:  # fmt: skip
    """Make room for one connection; False if there is none to take. First one that serves
    no one: a connection aiohttp lingers on, closed or answered before its body was read.
    Else the one waiting for a request (its first, or its next) since longest. Only when no
    connection waits is a body still arriving cut, the one arriving since longest: a body
    is a request under way, and a client opening connections that send nothing must not
    cut it (it did, for every body begun before the flood). Only the oldest SCAN connections
    are looked at, and, if none of those can go, the next SCAN of the `rotor`'s turn. Reads
    aiohttp's private `_waiter` (the future a connection awaits between requests),
    `_request_in_progress` and `_next_keepalive_close_time`: the cap's tests fail if they
    are renamed."""
    let_go, idlest, _ = _scan(itertools.islice(live, SCAN), lingering)
    if not let_go and idlest is None and rotor is not None and len(live) > SCAN:
        let_go, idlest, _ = _scan(rotor.window(live), lingering)
    if let_go:
        return True
    if idlest is not None:
        return _evict(idlest, lingering)
    slowest = reading.slowest()
    if slowest is not None:
        reading.cut(slowest[0])
        return True
    return False


def _scan(handlers: Iterator[Any], lingering: Lingering) -> tuple[bool, Any, float]:
    """(True, …) if one of `handlers` was let go; else the one waiting for a request since
    longest (or None), and since when."""
    idlest, since = None, float("inf")
    for handler in handlers:
        if handler.transport is None:  # closed; aiohttp may still be lingering on it
            if lingering.release(handler):
                return True, None, since  # it leaves `live` once the read has ended
            continue
        waiter = getattr(handler, "_waiter", None)
        if waiter is not None and not waiter.done():
            # aiohttp closes an idle connection at this time: it has idled since then less
            # the keep-alive timeout (since it opened, before its first request)
            idle = getattr(handler, "_next_keepalive_close_time", 0.0) - handler.keepalive_timeout
            if idle < since:
                idlest, since = handler, idle
        elif lingering.holds(handler) and not getattr(handler, "_request_in_progress", True):
            return _evict(handler, lingering), None, since
    return False, idlest, since


def _evict(handler: Any, lingering: Lingering) -> bool:
    lingering.release(handler)
    handler.force_close()  # leaves `live` when its transport is closed
    return True


class _Refuse(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(REFUSAL)  # type: ignore[attr-defined]
        transport.close()


class CappedSite(web.SockSite):
    """`web.SockSite` that keeps at most `limit` connections (aiohttp has no such bound)."""

    __slots__ = ("_limit", "_lingering", "_reading")

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, limit: int,
                 lingering: Lingering, reading: Reading) -> None:  # fmt: skip
        super().__init__(runner, sock)
        self._limit = limit
        self._lingering, self._reading = lingering, reading

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; SockSite.start would serve
        server: Any = self._runner.server
        assert server is not None
        live: dict[Any, Any] = server._connections  # aiohttp's own count of open ones
        limit, lingering, reading = self._limit, self._lingering, self._reading
        rotor = Rotor()

        def accept() -> asyncio.BaseProtocol:
            # each connection past the cap takes an evicted one's place (which leaves `live`
            # once its transport has closed, a loop turn later)
            if len(live) >= limit and not evict_waiting(live, lingering, reading, rotor):
                return _Refuse()
            return adopt(server())

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(accept, sock=self._sock, backlog=self._backlog)
