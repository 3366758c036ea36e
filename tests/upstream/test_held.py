"""What a process holds of upstream answers still arriving is bounded in all, not only per
answer (a review: 64 MiB stream events, started on many streams and stalled, held 1.6 GB
for as long as the upstream liked). The law: the sum is what the holders count, never past
the limit after a grow that was let through, and every holder gives back all it counted."""

from __future__ import annotations

import gc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.upstream import held
from runtime.upstream.base import UpstreamProtocolError
from runtime.upstream.held import Held
from runtime.upstream.sse import SSEParser

MIB = 1024 * 1024


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(held, "LIMIT", 8 * MIB)


def test_streams_holding_large_unended_events_are_refused_past_the_sum(small_limit: None) -> None:
    before = held.total()
    parsers = [SSEParser() for _ in range(3)]
    start = b"data: " + b"x" * (3 * MIB)  # an event begun, never ended (no blank line)
    parsers[0].feed(start)
    parsers[1].feed(start)
    assert held.total() - before == 2 * (len(start))
    with pytest.raises(UpstreamProtocolError, match="would pass"):
        parsers[2].feed(start)
    assert held.total() - before == 2 * len(start)  # the refused one holds nothing
    events = parsers[0].feed(b"\n\n")  # ended: given back
    assert len(events) == 1 and held.total() - before == len(start)
    del parsers  # abandoned mid-event (a client gone, a cut): given back too
    gc.collect()
    assert held.total() == before


def test_small_events_never_touch_the_sum() -> None:
    before = held.total()
    parser = SSEParser()
    for _ in range(1000):
        assert parser.feed(b'data: {"a": 1}\n\n')
        parser.feed(b"data: " + b"y" * 1000 + b"\n")  # split events, line by line
        parser.feed(b"\n")
    assert held.total() == before


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4 * MIB) | st.none()), max_size=40))
def test_the_sum_is_what_the_holders_count(steps: list[tuple[int, int | None]]) -> None:
    before, saved = held.total(), held.LIMIT
    holders = [Held() for _ in range(6)]
    held.LIMIT = before + 10 * MIB
    try:
        for index, size in steps:
            if size is None:
                holders[index].release()
                continue
            try:
                holders[index].grow(size, "x")
            except UpstreamProtocolError:
                assert holders[index].counted == 0
            assert held.total() - before == sum(h.counted for h in holders)
            assert held.total() - before <= 10 * MIB
    finally:
        held.LIMIT = saved
    del holders
    gc.collect()
    assert held.total() == before
