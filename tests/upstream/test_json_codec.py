"""runtime/upstream/json_codec.py keeps the standard library's JSON language exactly: the
same values and the same refusals for every input, with msgspec answering where it can."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.upstream import json_codec
from tests.json_equality import same

# Values a client's JSON may hold, including what only the stdlib reads or writes: NaN,
# Infinity, lone surrogates, integers beyond 64 bits, non-ASCII text.
text = st.text(st.characters(codec=None, blacklist_categories=()), max_size=12)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=20,
)


def outcome(parse: Any, data: bytes | str) -> tuple[str, Any]:
    try:
        return "value", parse(data)
    except (ValueError, RecursionError) as exc:
        return "refused", type(exc).__name__


def assert_like_stdlib(data: bytes | str) -> None:
    ours, theirs = outcome(json_codec.loads, data), outcome(json.loads, data)
    assert ours[0] == theirs[0], (data, ours, theirs)
    assert same(ours[1], theirs[1]), (data, ours, theirs)


def texts_of(value: Any) -> list[bytes]:
    """The ways a client may write `value`: ASCII-escaped or UTF-8, compact or spaced,
    with a byte-order mark, in UTF-16."""
    out = [json.dumps(value).encode(),
           json.dumps(value, separators=(",", ":")).encode("utf-8", "surrogatepass")]  # fmt: skip
    raw = json.dumps(value, ensure_ascii=False)
    try:
        out += [raw.encode("utf-8"), b"\xef\xbb\xbf" + raw.encode("utf-8"), raw.encode("utf-16")]
    except UnicodeEncodeError:  # a lone surrogate: only the escaped forms carry it
        out.append(raw.encode("utf-8", "surrogatepass"))
    return out


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_every_written_value_reads_as_the_stdlib_reads_it(value: Any) -> None:
    for data in texts_of(value):
        assert_like_stdlib(data)
        assert_like_stdlib(data.decode("latin-1"))  # a str, as some callers pass


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.data())
def test_damaged_text_is_refused_or_read_as_the_stdlib_does(value: Any, data: Any) -> None:
    raw = bytearray(data.draw(st.sampled_from(texts_of(value))))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["flip", "insert", "cut"]))
        if action == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=3))
        elif action == "cut":
            del raw[at:]
        elif at < len(raw):
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
    assert_like_stdlib(bytes(raw))


@given(st.binary(max_size=40))
def test_any_bytes_are_refused_or_read_as_the_stdlib_does(data: bytes) -> None:
    assert_like_stdlib(data)


@pytest.mark.parametrize(
    "data",
    [b'{"a": NaN}', b"[Infinity, -Infinity]", b"1e400", b'"\\ud800"', b'"\xed\xa0\x80"',
     b"1\x00", b"\xef\xbb\xbf{}", b'"a\x01b"', b"[" * 5000 + b"]" * 5000,
     b"[" + b"9" * 4301 + b"]", b"[" + b"9" * 4300 + b"]", b"-0", b"-0.0", b"1E+2",
     b'{"a":1,"a":2}', b"123456789012345678901234567890", b" \t\r\n[]"],
)  # fmt: skip
def test_edges_read_as_the_stdlib_reads_them(data: bytes) -> None:
    assert_like_stdlib(data)


def stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_written_json_means_what_the_stdlib_would_have_written(value: Any) -> None:
    try:
        expected = stdlib_dumps(value)
    except ValueError:  # NaN or Infinity: refused by both
        with pytest.raises(ValueError):
            json_codec.dumps(value)
        return
    assert same(json.loads(json_codec.dumps(value)), json.loads(expected))


@settings(max_examples=200)
@given(st.dictionaries(text, values, max_size=5))
def test_a_log_line_means_what_the_stdlib_line_meant(fields: dict[str, Any]) -> None:
    line = {"ts": 1.5, "event": "request", **fields}
    try:
        json.dumps(line, allow_nan=False)
    except ValueError:
        return  # NaN or Infinity: msgspec writes null where the stdlib writes NaN
    ours, theirs = json_codec.dumps_line(line), json_codec._stdlib_line(line)
    assert same(json.loads(ours), json.loads(theirs))


def test_the_fast_path_answers_plain_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain request body and answer never reach the stdlib (else nothing got faster)."""
    body = b'{"model":"@p/m","messages":[{"role":"user","content":"h\xc3\xa9"}],"n":1.5}'

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the stdlib was asked")

    monkeypatch.setattr(json_codec.json, "loads", refuse)
    monkeypatch.setattr(json_codec.json, "dumps", refuse)
    value = json_codec.loads(body)
    assert value["messages"][0]["content"] == "hé"
    assert json_codec.dumps(value) == body


def test_without_msgspec_the_stdlib_answers_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [b'{"a":[1,2.5,"\\u00e9",null,true]}', b'{"a": NaN}', b'"\\ud800"', b"[1,"]
    fast = [outcome(json_codec.loads, s) for s in samples]
    monkeypatch.setattr(json_codec, "_decode", None)
    monkeypatch.setattr(json_codec, "_encode", None)
    monkeypatch.setattr(json_codec, "_encode_line", None)
    slow = [outcome(json_codec.loads, s) for s in samples]
    assert all(a[0] == b[0] and same(a[1], b[1]) for a, b in zip(fast, slow, strict=True))
    assert json_codec.dumps({"a": "é"}) == b'{"a":"\\u00e9"}'
    with pytest.raises(ValueError):
        json_codec.dumps({"a": math.nan})
