"""The Redis store's pipelined connection (runtime/limits/redis_pipe.py) against a real
redis-server: the same replies and error classes as redis-py's client, each caller answered
in its own place however many are in flight, and a connection that breaks, stalls, lies or
refuses failing every command on it with the error redis-py would raise, then reconnecting."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.limits.redis_codec import _maybe_ran
from runtime.limits.redis_pipe import Pipe, pack, pipe_address
from runtime.limits.redis_store import RedisStore
from runtime.limits.redis_topology import parse
from tests.redis_server import RedisServer

ECHO = "return ARGV[1]"


def address(server: RedisServer, db: int = 0, password: str | None = None) -> Any:
    auth = f":{password}@" if password else ""
    found = pipe_address(parse(f"redis://{auth}127.0.0.1:{server.port}/{db}").options)
    assert found is not None
    return found


def run(coro_fn: Callable[[], Any], loop: str = "asyncio") -> Any:
    """On the standard loop, or on uvloop (the gateway's), whose transports differ."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro_fn())
    return asyncio.run(coro_fn())


LOOPS = pytest.mark.parametrize("loop", ["asyncio", "uvloop"])


def test_plain_urls_take_the_pipe_and_others_keep_redis_py() -> None:
    assert pipe_address(parse("redis://127.0.0.1:6380/2").options) == ("127.0.0.1", 6380, 2,
                                                                      None, None)  # fmt: skip
    assert pipe_address(parse("redis://u:pw@h/0").options) == ("h", 6379, 0, "u", "pw")
    for url in ("rediss://h:6379/0", "unix:///tmp/r.sock?db=1", "redis://h?socket_timeout=1",
                "redis://h?protocol=3", "redis://h?client_name=x"):  # fmt: skip
        assert pipe_address(parse(url).options) is None, url


# the values a script can answer with, and arguments of every kind redis-py encodes
ARG = st.one_of(st.text(max_size=40), st.binary(max_size=40),
                st.integers(-(2**70), 2**70), st.floats(allow_nan=False))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(args=st.lists(ARG, max_size=6))
def test_replies_are_redis_pys(redis_server: RedisServer, args: list[Any]) -> None:
    """EVAL echoing its arguments back as a list, as an error, as integers: the pipe's
    reply (or exception class and text) equals redis-py's for the same command."""
    script = ("local out = {} for i, a in ipairs(ARGV) do out[i] = a end "
              "if #ARGV > 0 and ARGV[1] == 'boom' then return redis.error_reply('ERR boom') end "
              "out[#out + 1] = #ARGV return out")  # fmt: skip

    async def both() -> tuple[Any, Any]:
        client = aioredis.Redis(port=redis_server.port)
        pipe = Pipe(address(redis_server), 2.0)
        try:
            return (await _outcome(client.eval(script, 0, *args)),
                    await _outcome(pipe.call("EVAL", script, 0, *args)))  # fmt: skip
        finally:
            pipe.close()
            await client.aclose()

    ours, theirs = run(both)
    assert ours == theirs


async def _outcome(awaitable: Any) -> Any:
    try:
        return ("ok", await awaitable)
    except redis.RedisError as exc:
        return ("error", type(exc), str(exc))


def test_error_replies_are_redis_pys_classes(redis_server: RedisServer) -> None:
    async def go() -> None:
        pipe = Pipe(address(redis_server), 2.0)
        with pytest.raises(redis.exceptions.NoScriptError):
            await pipe.call("EVALSHA", "0" * 40, 0)
        key = f"t-{uuid.uuid4().hex}"
        await pipe.call("SET", key, "x")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await pipe.call("LPUSH", key, "y")
        with pytest.raises(redis.ResponseError, match="unknown command"):
            await pipe.call("NOSUCHCOMMAND")
        assert await pipe.call("GET", key) == b"x"  # the connection survived the errors
        pipe.close()

    run(go)


@LOOPS
def test_every_caller_gets_its_own_reply(redis_server: RedisServer, loop: str) -> None:
    """2,000 commands in flight on one connection, some callers cancelled while waiting:
    each of the others gets the reply to its own command."""

    async def go() -> None:
        pipe = Pipe(address(redis_server), 5.0)
        sha = await pipe.call("SCRIPT", "LOAD", ECHO)
        tasks = [asyncio.ensure_future(pipe.call("EVALSHA", sha, 0, f"v{i}")) for i in range(2000)]
        await asyncio.sleep(0)
        for task in tasks[::7]:
            task.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        for i, reply in enumerate(done):
            if i % 7 == 0:
                assert isinstance(reply, asyncio.CancelledError) or reply == f"v{i}".encode()
            else:
                assert reply == f"v{i}".encode()
        assert await pipe.call("ECHO", "after") == b"after"
        pipe.close()

    run(go, loop)


@LOOPS
def test_a_stalled_server_times_out_every_command_on_the_connection(
    make_redis: Any, loop: str
) -> None:
    server = make_redis("--enable-debug-command", "yes")

    async def go() -> None:
        pipe = Pipe(address(server), 0.2)
        assert await pipe.call("PING") == b"PONG"
        sleeper = asyncio.ensure_future(pipe.call("DEBUG", "SLEEP", "0.6"))
        behind = asyncio.ensure_future(pipe.call("PING"))
        for task in (sleeper, behind):
            with pytest.raises(redis.TimeoutError) as caught:
                await task
            assert _maybe_ran(caught.value)  # it may have run: the store voids or replays
        await asyncio.sleep(0.6)  # the server wakes; a new connection is made
        assert await pipe.call("PING") == b"PONG"
        pipe.close()

    run(go, loop)


@LOOPS
def test_a_server_gone_mid_command_fails_it_then_the_pipe_reconnects(
    make_redis: Any, loop: str
) -> None:
    server = make_redis("--enable-debug-command", "yes")

    async def go() -> None:
        pipe = Pipe(address(server), 3.0)
        assert await pipe.call("PING") == b"PONG"
        inflight = asyncio.ensure_future(pipe.call("DEBUG", "SLEEP", "2"))
        await asyncio.sleep(0.1)
        await asyncio.to_thread(server.kill)
        with pytest.raises(redis.ConnectionError) as caught:
            await inflight
        assert _maybe_ran(caught.value)  # sent: it may have run
        with pytest.raises(redis.ConnectionError) as refused:
            await pipe.call("PING")
        assert not _maybe_ran(refused.value)  # never sent: "connecting"
        await asyncio.to_thread(server.start)
        assert await pipe.call("PING") == b"PONG"
        pipe.close()

    run(go, loop)


def test_password_and_database(make_redis: Any) -> None:
    secret = "FAKE-test-password-0000"
    server = make_redis()
    server.client().config_set("requirepass", secret)

    async def go() -> None:
        pipe = Pipe(address(server, db=3, password=secret), 2.0)
        key = f"t-{uuid.uuid4().hex}"
        await pipe.call("SET", key, "in-3")
        pipe.close()
        wrong = Pipe(address(server, password="FAKE-wrong-password"), 2.0)
        with pytest.raises(redis.ConnectionError) as caught:
            await wrong.call("PING")
        assert "FAKE" not in str(caught.value) and not _maybe_ran(caught.value)
        anonymous = Pipe(address(server), 2.0)
        with pytest.raises(redis.AuthenticationError):
            await anonymous.call("GET", key)
        anonymous.close()
        client = redis.Redis(port=server.port, password=secret, db=3)
        assert client.get(key) == b"in-3"
        client.close()

    run(go)


def _lying_server(answer: bytes) -> tuple[int, threading.Event]:
    """A TCP server that answers the first command with `answer` and then stays open."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = sock.accept()
        conn.recv(65536)
        conn.sendall(answer)
        stop.wait(5)
        conn.close()
        sock.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock.getsockname()[1], stop


def test_a_reply_that_is_not_redis_fails_the_connection() -> None:
    port, stop = _lying_server(b"!!! not RESP\r\n")

    async def go() -> None:
        pipe = Pipe(("127.0.0.1", port, 0, None, None), 2.0)
        waiting = [asyncio.ensure_future(pipe.call("PING")) for _ in range(3)]
        for outcome in await asyncio.gather(*waiting, return_exceptions=True):
            assert isinstance(outcome, redis.exceptions.InvalidResponse), outcome
        stop.set()

    run(go)


def test_a_reply_no_command_asked_for_fails_the_connection() -> None:
    port, stop = _lying_server(b"+OK\r\n+UNASKED\r\n")

    async def go() -> None:
        pipe = Pipe(("127.0.0.1", port, 0, None, None), 2.0)
        assert await pipe.call("PING") == b"OK"
        await asyncio.sleep(0.05)
        wire = pipe._wire
        assert wire is not None and isinstance(wire.broken, redis.exceptions.InvalidResponse)
        stop.set()

    run(go)


def test_pack_encodes_as_redis_py() -> None:
    from redis.asyncio.connection import Connection

    args = ("EVALSHA", b"\x00\xff", 3, -7, 1.5, "é")
    theirs = b"".join(Connection().pack_command(*args))
    assert pack(args) == theirs
    with pytest.raises(redis.DataError):
        pack(("SET", None))


def test_the_store_admits_and_settles_through_the_pipe(redis_server: RedisServer) -> None:
    """A store on a plain URL uses the pipe for its scripts, from one event loop after
    another (a loop's id can be reused by the next one)."""
    from runtime.bundle.errors import BudgetExceeded
    from runtime.limits.spec import BudgetSpec, ChainSpec

    store = RedisStore(redis_server.url, namespace=f"t-{uuid.uuid4().hex[:8]}")
    budget = BudgetSpec("b", "team", "requests", "daily", 3, None)
    spec = ChainSpec(("team",), (), (budget,), (), None)
    sent: list[tuple[Any, ...]] = []

    async def one(n: int) -> None:
        pipe = store._apipe()
        assert pipe is not None
        call = pipe.call

        async def counted(*args: Any) -> Any:
            sent.append(args[:1])
            return await call(*args)

        pipe.call = counted  # type: ignore[method-assign]
        reservation = await store.aadmit(f"r{n}", spec, 1, 0)
        await store.asettle(reservation, 1, 0)

    for n in range(3):
        asyncio.run(one(n))
    with pytest.raises(BudgetExceeded):
        asyncio.run(one(9))
    assert sent.count(("EVALSHA",)) >= 7  # three admissions and settlements, one refusal
    store.close()


def test_without_hiredis_the_store_keeps_redis_pys_client(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runtime.limits.redis_pipe as pipe_module

    monkeypatch.setattr(pipe_module, "hiredis", None)
    assert pipe_address(parse(redis_server.url).options) is None
    store = RedisStore(redis_server.url, namespace=f"t-{uuid.uuid4().hex[:8]}")

    async def go() -> None:
        assert store._apipe() is None
        await store.astart()  # redis-py's client answers

    asyncio.run(go())
    store.close()


def test_a_demoted_server_drops_the_pipe_and_a_new_connection_follows(
    own_redis: RedisServer,
) -> None:
    """READONLY (a failover behind one DNS name made the server a replica): the admission
    is refused as the store being unavailable, the pipe's connection is dropped, and once
    the server is a primary again the next admission goes through on a new one."""
    from runtime.bundle.errors import StoreUnavailable
    from runtime.limits.spec import BudgetSpec, ChainSpec

    store = RedisStore(own_redis.url, namespace=f"t-{uuid.uuid4().hex[:8]}")
    spec = ChainSpec(("team",), (), (BudgetSpec("b", "team", "requests", "daily", 9, None),),
                     (), None)  # fmt: skip
    admin = own_redis.client()

    async def go() -> None:
        await store.asettle(await store.aadmit("r1", spec, 1, 0), 1, 0)
        pipe = store._apipe()
        assert pipe is not None and pipe._wire is not None
        admin.replicaof("127.0.0.1", str(_free_port()))  # its primary is gone
        with pytest.raises(StoreUnavailable, match=r"READONLY|read only"):
            await store.aadmit("r2", spec, 1, 0)
        assert pipe._wire is None  # dropped: the next command connects again
        admin.replicaof("NO", "ONE")
        await store.asettle(await store.aadmit("r3", spec, 1, 0), 1, 0)

    asyncio.run(go())
    store.close()
    admin.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ours(found: object) -> bool:
    code = getattr(found, "f_code", None)
    if code is not None:
        return "runtime/limits" in code.co_filename
    return type(found).__module__.startswith("runtime.limits")


def test_a_failed_connection_leaves_no_cycle_of_ours() -> None:
    """Three commands waiting when the connection fails, each caller catching its error as
    the store does: nothing of the pipe is left in a reference cycle (a failure kept on the
    wire with its traceback, or one instance raised in every task, would be)."""
    port, stop = _lying_server(b"!!! not RESP\r\n")

    async def go() -> None:
        pipe = Pipe(("127.0.0.1", port, 0, None, None), 2.0)

        async def one() -> None:
            try:
                await pipe.call("PING")
            except redis.RedisError as exc:
                assert _maybe_ran(exc) in (True, False)

        await asyncio.gather(*(one() for _ in range(3)))
        pipe.close()

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run(go)
        gc.collect()
        kept = [o for o in gc.garbage if _ours(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        stop.set()
    assert not kept, sorted({type(o).__name__ for o in kept})
