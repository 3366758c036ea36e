"""What the connection cap remembers (runtime/gateway/capped_site.py): connections whose
request was answered before its body was all read, each while aiohttp still reads the rest
and none for long after it closed or drained; and bodies still arriving, none once
finished. The cap's behaviour itself is tested on real
gateway processes in tests/runtime/test_gateway_slow_clients.py."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.gateway.capped_site import PRUNE, Lingering, Reading


class _Conn:
    def __init__(self) -> None:
        self.transport: object | None = object()


class _Body:
    def __init__(self) -> None:
        self.eof = False
        self.error: Exception | None = None  # aiohttp gave up lingering on it

    def is_eof(self) -> bool:
        return self.eof

    def exception(self) -> Exception | None:
        return self.error

    def feed_eof(self) -> None:
        self.eof = True


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["add", "add", "close", "drain", "give up"]), max_size=3000))
def test_lingering_connections_are_remembered_within_a_bound(program: list[str]) -> None:
    lingering = Lingering()
    open_: list[tuple[_Conn, _Body]] = []  # aiohttp still lingers on these
    peak = 0  # the most lingering at once
    for op in program:
        if op == "add":
            conn, body = _Conn(), _Body()
            lingering.add(conn, body)
            open_.append((conn, body))
            peak = max(peak, len(open_))
        elif open_ and op == "close":  # the client went: aiohttp still lingers on it
            open_[0][0].transport = None
        elif open_ and op == "drain":
            open_.pop(0)[1].eof = True
        elif open_:
            open_.pop(0)[1].error = RuntimeError("aiohttp gave up")
        # those still lingering are known; the rest are forgotten before they pile up
        assert all(lingering.holds(conn) for conn, _ in open_)
        assert len(lingering._bodies) <= max(PRUNE, 2 * peak)


def test_lingering_forgets_connections_once_drained_or_given_up() -> None:
    lingering = Lingering()
    kept = [(_Conn(), _Body()) for _ in range(10)]  # lingering throughout
    for conn, body in kept:
        lingering.add(conn, body)
    for i in range(20 * PRUNE):  # churn: one at a time, each drained or given up at once
        conn, body = _Conn(), _Body()
        lingering.add(conn, body)
        if i % 2:
            body.error = RuntimeError("aiohttp gave up")
        else:
            body.eof = True
        assert len(lingering._bodies) <= PRUNE
    assert all(lingering.holds(conn) for conn, _ in kept)


def test_releasing_ends_the_lingering_read_once() -> None:
    lingering = Lingering()
    conn, body = _Conn(), _Body()
    lingering.add(conn, body)
    conn.transport = None  # the client went; aiohttp's read would wait for the body
    assert lingering.release(conn) is True and body.eof  # the read ends now
    assert lingering.release(conn) is False and not lingering.holds(conn)


class _Handler(_Conn):
    closed = False

    def force_close(self) -> None:
        self.closed = True


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["start", "finish", "cut"]), st.integers(0, 4))))
def test_reading_forgets_every_body_once_finished(program: list[tuple[str, int]]) -> None:
    reading = Reading()
    handlers = [_Handler() for _ in range(5)]
    started: list[_Handler] = []  # still reading, in the order they began, not cut
    for step, (op, i) in enumerate(program):
        handler = handlers[i]
        if op == "start" and handler not in started and not handler.closed:  # a cut one is
            # closed: no body of it starts again
            reading.start(handler, float(step))
            started.append(handler)
        elif op == "cut":  # what the cap does: cut the slowest, if any
            slowest = reading.slowest()
            if slowest is not None:
                reading.cut(slowest[0])
                assert slowest[0].closed
                started.remove(slowest[0])
        elif op == "finish":
            reading.finish(handler)
            if handler in started:
                started.remove(handler)
        first = reading.slowest()
        assert (first[0] if first else None) is (started[0] if started else None)
    for handler in handlers:
        reading.finish(handler)
    assert not reading._since and not reading._cut  # nothing left behind


def test_a_cut_body_is_reported_once() -> None:
    reading = Reading()
    first, second = _Handler(), _Handler()
    reading.start(first, 1.0)
    reading.start(second, 2.0)
    assert reading.slowest() == (first, 1.0)
    reading.cut(first)
    assert reading.slowest() == (second, 2.0)  # the cut one is not offered again
    assert reading.finish(first) is True and reading.finish(first) is False
    assert reading.finish(second) is False
