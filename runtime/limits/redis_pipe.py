"""One pipelined connection per event loop to a single Redis server, for the store's hot
commands: the EVALSHA of every admission and settlement.

redis-py's asyncio client checks a connection out of a pool, writes, awaits its own
reader and checks the connection back in, per command: ~47 µs of CPU per EVALSHA at 32
concurrent callers on the benchmark machine, against ~14 µs for a command written on one
shared connection and answered in order (benchmarks/RESULTS.md). Redis runs one command
at a time anyway, so one connection in order loses nothing: each caller's future is
answered by the reply in its place.

What redis-py's callers rely on is kept: replies are read by hiredis as redis-py reads them
(bytes, ints, lists); an error reply raises redis-py's own class for it (NoScriptError,
ReadOnlyError, ...: the same `parse_error`); a connection that fails raises
`redis.ConnectionError` ("connecting" in the text when nothing was sent, which is how
`redis_codec._maybe_ran` tells that a command cannot have run); a reply later than the
store's timeout raises `redis.TimeoutError` and drops the connection, failing every command
on it (their replies would come out of order otherwise). The next command connects again.

Only a plain `redis://` server without client options beyond credentials and the database
uses it (`pipe_address`), and only with hiredis installed; TLS, unix sockets, RESP3,
Sentinel and Cluster keep redis-py's clients, as do a store's rarer commands.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping
from typing import Any

import redis
from redis._parsers.base import BaseParser
from redis.exceptions import DataError, InvalidResponse

try:  # the `redis` extra installs it (redis[hiredis]); without it, redis-py's client serves
    import hiredis
except ImportError:  # pragma: no cover - exercised by the fallback test
    hiredis = None  # type: ignore[assignment]

# redis-py URL options the pipe understands; any other (TLS, RESP3, a client name, socket
# options...) means the URL asks for something only redis-py's client does
_PLAIN_OPTIONS = frozenset({"host", "port", "db", "username", "password"})


def pipe_address(options: Mapping[str, Any]) -> tuple[str, int, int, str | None, str | None] | None:
    """(host, port, db, username, password) of a plain `redis://` URL's parsed options, or
    None when the URL needs redis-py's client."""
    if hiredis is None or not set(options) <= _PLAIN_OPTIONS or "host" not in options:
        return None
    return (options["host"], int(options.get("port") or 6379), int(options.get("db") or 0),
            options.get("username"), options.get("password"))  # fmt: skip


def pack(args: tuple[Any, ...]) -> bytes:
    """A command in RESP, encoding arguments as redis-py does (str as UTF-8, numbers as
    their repr); anything else is a DataError, as there."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            data = arg
        elif kind is str:
            data = arg.encode()
        elif kind is int or kind is float:
            data = repr(arg).encode()
        else:
            raise DataError(f"Invalid input of type: '{kind.__name__}'. Convert to a bytes, "
                            "string, int or float first.")  # fmt: skip
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


class _Wire(asyncio.Protocol):
    """The connection: replies matched to waiting commands in order."""

    def __init__(self, timeout: float) -> None:
        self.reader = hiredis.Reader(
            protocolError=InvalidResponse, replyError=BaseParser.parse_error
        )
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.broken: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        if self.broken is not None or self.transport is None or self.transport.is_closing():
            raise redis.ConnectionError("Connection closed by server.")
        data = pack(args)
        future = self._loop.create_future()
        due = self._loop.time() + self.timeout
        self.waiting.append((future, due))
        self.transport.write(data)
        if self._timer is None:  # one timer, moved along only when it fires (cheap per call)
            self._timer = self._loop.call_at(due, self._check)
        return future

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not False:
                if not self.waiting:  # an answer no one asked for: not a Redis we understand
                    raise InvalidResponse("Redis sent a reply no command was waiting for")
                future, _ = self.waiting.popleft()
                if future.done():  # its caller was cancelled: the reply is dropped
                    continue
                if isinstance(reply, redis.RedisError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except InvalidResponse as exc:
            self.fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(redis.ConnectionError("Connection closed by server."))

    def _check(self) -> None:
        self._timer = None
        if not self.waiting:
            return
        due = self.waiting[0][1]
        if due <= self._loop.time():
            self.fail(redis.TimeoutError("Timeout reading from socket"))
        else:
            self._timer = self._loop.call_at(due, self._check)

    def fail(self, error: BaseException) -> None:
        """Every waiting command fails with `error` (each with its own copy), and the
        connection is dropped."""
        # kept on the wire: a traceback's frames would hold the wire, a cycle; and one
        # instance raised in many tasks would gather all their frames on it
        error.__traceback__ = None
        if self.broken is None:
            self.broken = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self.waiting = self.waiting, collections.deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(type(error)(*error.args))
        if self.transport is not None:
            self.transport.abort()


class Pipe:
    """Commands to one server on one connection of the running event loop, opened at first
    use and again after it broke."""

    def __init__(self, address: tuple[str, int, int, str | None, str | None],
                 timeout: float) -> None:  # fmt: skip
        self.host, self.port, self.db, self.username, self.password = address
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self._wire: _Wire | None = None
        self._opening: asyncio.Task[_Wire] | None = None

    async def call(self, *args: Any) -> Any:
        wire = self._wire
        if wire is None or wire.broken is not None:
            wire = await self._connected()
        return await wire.send(args)

    def close(self) -> None:
        """Drop the connection (the next call opens another: after a failover behind a DNS
        name, that one reaches the new primary)."""
        if self._wire is not None:
            self._wire.fail(redis.ConnectionError("Connection closed by the store."))
            self._wire = None

    async def _connected(self) -> _Wire:
        # one attempt at a time, in its own task: the callers meanwhile share it, and one
        # of them being cancelled does not cancel it for the others
        if self._opening is None:
            self._opening = self.loop.create_task(self._open())
            self._opening.add_done_callback(self._opened)
        return await asyncio.shield(self._opening)

    def _opened(self, task: asyncio.Task[_Wire]) -> None:
        self._opening = None
        if not task.cancelled() and task.exception() is None:
            self._wire = task.result()

    async def _open(self) -> _Wire:
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self.timeout):
                _, wire = await self.loop.create_connection(
                    lambda: _Wire(self.timeout), self.host, self.port
                )
        except TimeoutError:
            raise redis.TimeoutError(f"Timeout connecting to {where}.") from None
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise redis.ConnectionError(
                f"Error {exc.errno} connecting to {where}. {why}."
            ) from None
        try:  # the handshake's replies come within the wire's own timeout
            if self.password is not None:
                auth = (self.username, self.password) if self.username else (self.password,)
                await wire.send(("AUTH", *auth))
            if self.db:
                await wire.send(("SELECT", self.db))
        except redis.RedisError as exc:
            wire.fail(exc)
            raise redis.ConnectionError(f"Error connecting to {where}: {type(exc).__name__}: "
                                        f"{exc}") from None  # fmt: skip
        return wire
