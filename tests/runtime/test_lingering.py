"""What the connection cap remembers of connections whose request was answered before its
body was all read (runtime/gateway/capped_site.py): each while aiohttp still reads the rest,
none for long after it closed or drained. The cap's behaviour itself is tested on real
gateway processes in tests/runtime/test_gateway_slow_clients.py."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.gateway.capped_site import PRUNE, Lingering


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
