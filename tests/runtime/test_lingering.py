"""What the connection cap remembers (runtime/gateway/capped_site.py): connections whose
request was answered before its body was all read, each while aiohttp still reads the rest
and none for long after it closed or drained; and bodies still arriving, none once
finished. The cap's behaviour itself is tested on real
gateway processes in tests/runtime/test_gateway_slow_clients.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.gateway.capped_site import PRUNE, READING_GRACE, Lingering, Reading


class _Conn:
    def __init__(self) -> None:
        self.transport: object | None = object()


class _Body:
    def __init__(self) -> None:
        self.eof = False

    def is_eof(self) -> bool:
        return self.eof


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["add", "add", "close", "drain"]), max_size=3000))
def test_lingering_connections_are_remembered_within_a_bound(program: list[str]) -> None:
    lingering = Lingering()
    open_: list[tuple[_Conn, _Body]] = []
    peak = 0  # the most lingering at once
    for op in program:
        if op == "add":
            conn, body = _Conn(), _Body()
            lingering.add(conn, body)
            open_.append((conn, body))
            peak = max(peak, len(open_))
        elif open_ and op == "close":
            open_.pop(0)[0].transport = None
        elif open_:
            open_.pop(0)[1].eof = True
        # those still lingering are known; the rest are forgotten before they pile up
        assert all(lingering.holds(conn) for conn, _ in open_)
        assert len(lingering._bodies) <= max(PRUNE, 2 * peak)


def test_lingering_forgets_connections_once_closed_or_drained() -> None:
    lingering = Lingering()
    kept = [(_Conn(), _Body()) for _ in range(10)]  # lingering throughout
    for conn, body in kept:
        lingering.add(conn, body)
    for i in range(20 * PRUNE):  # churn: one at a time, each closed or drained at once
        conn, body = _Conn(), _Body()
        lingering.add(conn, body)
        if i % 2:
            conn.transport = None
        else:
            body.eof = True
        assert len(lingering._bodies) <= PRUNE
    assert all(lingering.holds(conn) for conn, _ in kept)


class _Handler(_Conn):
    closed = False

    def force_close(self) -> None:
        self.closed = True


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["start", "finish", "cut"]), st.integers(0, 4))))
def test_reading_forgets_every_body_once_finished(program: list[tuple[str, int]]) -> None:
    reading = Reading()
    handlers = [_Handler() for _ in range(5)]
    for op, i in program:
        if op == "start":
            reading.start(handlers[i])
        elif op == "cut":
            reading.cut(handlers[i])
            assert handlers[i].closed
        else:
            reading.finish(handlers[i])
        assert reading.slowest() is None  # none has been arriving for the grace yet
    for handler in handlers:
        reading.finish(handler)
    assert not reading._since and not reading._cut  # nothing left behind


def test_the_slowest_body_is_the_one_arriving_longest(monkeypatch: pytest.MonkeyPatch) -> None:
    import runtime.gateway.capped_site as site

    now = [100.0]
    monkeypatch.setattr(site.time, "monotonic", lambda: now[0])
    reading = Reading()
    first, second = _Handler(), _Handler()
    reading.start(first)
    now[0] += 0.5
    reading.start(second)
    now[0] += READING_GRACE - 0.1
    assert reading.slowest() is first  # past the grace; the second is not
    reading.cut(first)
    assert reading.slowest() is None and reading.finish(first) is True
    now[0] += 0.2
    assert reading.slowest() is second and reading.finish(second) is False
