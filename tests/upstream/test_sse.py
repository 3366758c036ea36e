"""The SSE parser: the WHATWG line rules, raw bytes kept, any split, bounded memory."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.upstream.base import UpstreamProtocolError
from runtime.upstream.sse import Event, SSEParser
from tests.upstream.fixtures import ANTHROPIC_STREAM, OPENAI_STREAM, RESPONSES_STREAM


def parse(*chunks: bytes, max_event: int = 1 << 20) -> list[Event]:
    parser = SSEParser(max_event)
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_fields_comments_and_raw_bytes() -> None:
    stream = b": keep-alive\n\nevent: add\nid: 7\nretry: 10\ndata: one\ndata:two\ndata\n\n"
    comment, added = parse(stream)
    assert comment == Event(None, None, b": keep-alive\n\n")
    assert added.event == "add"
    assert added.data == "one\ntwo\n"  # one space after the colon is dropped; `data` alone is ""
    assert added.raw == b"event: add\nid: 7\nretry: 10\ndata: one\ndata:two\ndata\n\n"


def test_every_line_ending() -> None:
    for end in (b"\n", b"\r\n", b"\r"):
        stream = b"data: a" + end + b"data: b" + end + end + b"data: c" + end + end
        assert [e.data for e in parse(stream)] == ["a\nb", "c"]
        assert b"".join(e.raw for e in parse(stream)) == stream


def test_crlf_split_between_feeds_is_one_line_ending() -> None:
    events = parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\ndata: c\r\n\r\n")
    assert [e.data for e in events] == ["a\nb", "c"]
    # dispatched at its `\r` without waiting: the `\n` that follows is not relayed
    assert [e.raw for e in events] == [b"data: a\r\ndata: b\r\n\r", b"data: c\r\n\r\n"]


def test_an_empty_feed_between_cr_and_lf_changes_nothing() -> None:
    assert [e.data for e in parse(b"data: a\r", b"", b"\ndata: b\n\n")] == ["a\nb"]


def test_lone_cr_then_cr_ends_the_event() -> None:
    assert [e.data for e in parse(b"data: a\r", b"\r")] == ["a"]


def test_blank_lines_between_blocks_are_not_events() -> None:
    events = parse(b"\n\n\r\ndata: x\n\n\n\n")
    assert [(e.data, e.raw) for e in events] == [("x", b"data: x\n\n")]


def test_utf8_split_mid_character() -> None:
    encoded = "data: café ☕\n\n".encode()
    cut = encoded.index(b"\xc3") + 1
    assert parse(encoded[:cut], encoded[cut:])[0].data == "café ☕"


def test_invalid_utf8_is_replaced_not_raised() -> None:
    (event,) = parse(b"event: \xff\ndata: \xfe\xc3\n\n")
    assert event.event == "\ufffd" and event.data == "\ufffd\ufffd"


def test_an_endless_line_is_refused_with_bounded_memory() -> None:
    parser = SSEParser(max_event=1024)
    parser.feed(b"data: " + b"x" * 1000)
    with pytest.raises(UpstreamProtocolError, match="larger than 1,024 bytes"):
        parser.feed(b"x" * 100)
    assert not parser.pending  # the buffer was dropped, not kept growing


def test_an_event_of_many_lines_is_bounded_too() -> None:
    parser = SSEParser(max_event=1024)
    with pytest.raises(UpstreamProtocolError):
        for _ in range(200):
            parser.feed(b"data: 0123456789\n")


def test_events_before_a_too_large_one_are_given_and_the_error_follows() -> None:
    """They were lost with the error (the client got nothing of a read whose end was bad,
    though its first events were whole); now they come back, and the next feed raises."""
    parser = SSEParser(max_event=64)
    events = parser.feed(b"data: one\n\nevent: e\ndata: two\n\ndata: " + b"x" * 100)
    assert [(e.event, e.data) for e in events] == [(None, "one"), ("e", "two")]
    with pytest.raises(UpstreamProtocolError, match="larger than 64 bytes"):
        parser.feed(b"data: three\n\n")
    with pytest.raises(UpstreamProtocolError):  # and stays refused
        parser.feed(b"")
    alone = SSEParser(max_event=64)
    with pytest.raises(UpstreamProtocolError):  # nothing before it: raised at once, as before
        alone.feed(b"data: " + b"x" * 100)


def test_default_bound_admits_a_large_responses_event() -> None:
    big = b"data: " + b"a" * (2 * 1024 * 1024) + b"\n\n"
    assert len(SSEParser().feed(big)) == 1


def test_pending_reports_an_unfinished_block() -> None:
    parser = SSEParser()
    parser.feed(b"data: partial\n")
    assert parser.pending
    parser.feed(b"\n")
    assert not parser.pending


# ---- properties ---------------------------------------------------------------------------

_line_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20
)
_ending = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 6))):
        for _ in range(draw(st.integers(1, 4))):
            field = draw(st.sampled_from(["data", "event", "id", "", "data"]))
            line = (field + ": " if field else ": ") + draw(_line_text)
            out += line.encode() + draw(_ending)
        out += draw(_ending)
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(min(c, len(data)) for c in cuts)  # repeated points: empty feeds
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    return [*pieces, data[start:]]


@settings(max_examples=300)
@given(streams(), st.lists(st.integers(0, 400), max_size=30))
def test_any_split_gives_the_same_events(stream: bytes, cuts: list[int]) -> None:
    whole = parse(stream)
    for pieces in (split(stream, cuts), [stream[i : i + 1] for i in range(len(stream))]):
        events = parse(*pieces)
        assert [(e.event, e.data) for e in events] == [(e.event, e.data) for e in whole]
        for got, want in zip(events, whole, strict=True):  # only a split `\r|\n` may differ
            assert got.raw == want.raw or (got.raw + b"\n" == want.raw and got.raw[-1:] == b"\r")


@settings(max_examples=300)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=20))
def test_arbitrary_bytes_never_crash(data: bytes, cuts: list[int]) -> None:
    parser = SSEParser(max_event=256)
    try:
        for piece in split(data, cuts):
            for event in parser.feed(piece):
                assert event.raw and (event.data is None or isinstance(event.data, str))
    except UpstreamProtocolError:
        pass


@pytest.mark.parametrize("stream", [OPENAI_STREAM, ANTHROPIC_STREAM, RESPONSES_STREAM])
def test_real_streams_round_trip_byte_for_byte(stream: bytes) -> None:
    events = parse(*[stream[i : i + 7] for i in range(0, len(stream), 7)])
    assert b"".join(e.raw for e in events) == stream
    assert all(e.data is not None for e in events)


def line_by_line(pieces: list[bytes], max_event: int) -> list[Any]:
    parser = SSEParser(max_event=max_event)
    out: list[Any] = []
    for piece in pieces:
        try:
            if parser._failed is not None:  # as feed() does: an error deferred is raised
                raise parser._failed
            out += parser._feed(piece)  # the general reader alone, never the one-go path
        except UpstreamProtocolError:
            return [*out, "refused"]
    return out


def fed(pieces: list[bytes], max_event: int) -> list[Any]:
    parser = SSEParser(max_event=max_event)
    out: list[Any] = []
    for piece in pieces:
        try:
            out += parser.feed(piece)
        except UpstreamProtocolError:
            return [*out, "refused"]
    return out


_data_events = st.lists(
    st.tuples(st.sampled_from([b"data: ", b"data:", b"data:  ", b": ", b"event: ", b"id:"]),
              st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
              st.sampled_from([b"\n\n", b"\n\n", b"\n\n\n", b"\r\n\r\n", b"\n"])),
    max_size=8,
).map(lambda parts: b"".join(a + b + c for a, b, c in parts))  # fmt: skip


@settings(max_examples=500)
@given(_data_events, st.lists(st.integers(0, 200), max_size=6), st.integers(4, 40))
def test_the_one_go_path_reads_what_the_line_reader_reads(
    stream: bytes, cuts: list[int], max_event: int
) -> None:
    """Chunks of whole `data:` events take a shortcut; every chunk, whole or not, must give
    the events (raw bytes included) and refusals the line-by-line reader gives."""
    for pieces in ([stream], split(stream, cuts)):
        assert fed(pieces, max_event) == line_by_line(pieces, max_event)


def test_a_chunk_of_whole_data_events_takes_the_one_go_path() -> None:
    parser = SSEParser()
    chunk = b'data: {"a":1}\n\ndata:[DONE]\n\n'
    events = parser._whole_data_events(chunk)
    assert events is not None
    assert [(e.data, e.raw) for e in events] == [
        ('{"a":1}', b'data: {"a":1}\n\n'), ("[DONE]", b"data:[DONE]\n\n")]  # fmt: skip


def test_a_flood_of_blank_lines_is_skipped_not_read_a_line_at_a_time(monkeypatch: Any) -> None:
    """64 MiB of line ends (64 KiB gzipped) took a Python step per byte, a minute in all,
    holding the process; between blocks they are now skipped in one search."""
    lines = []
    read_line = SSEParser._line_done

    def counted(self: SSEParser, *args: Any) -> None:
        lines.append(1)
        read_line(self, *args)

    monkeypatch.setattr(SSEParser, "_line_done", counted)
    parser = SSEParser()
    events = parser.feed(b"\n" * 1_000_000 + b"data: x\n\n" + b"\r\n" * 1_000 + b"\r")
    events += parser.feed(b"\n\ndata: y\n\n")
    assert [e.data for e in events] == ["x", "y"]
    assert [e.raw for e in events] == [b"data: x\n\n", b"data: y\n\n"]
    assert len(lines) == 4  # the four lines of the two events, not a million blank ones
