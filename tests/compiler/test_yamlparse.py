"""The YAML loader: values, positions, and every YAML hazard turned into a diagnostic."""

from __future__ import annotations

import time
import tracemalloc
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog_compiler.diagnostics import Sink
from catalog_compiler.load.positions import key_pos, value_pos
from catalog_compiler.load.yamlparse import (
    MAX_DEPTH,
    MAX_DOCUMENTS,
    decode,
    parse_text,
    resolve_plain,
)


def parse(text: str) -> tuple[list, Sink]:
    sink = Sink()
    return parse_text(text, "f.yaml", sink), sink


def codes(sink: Sink) -> list[str]:
    return [d.code for d in sink.sorted()]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("-7", -7),
        ("0x1F", 31),
        ("0o17", 15),
        ("2.50", Decimal("2.50")),
        ("1e3", Decimal("1e3")),
        (".5", Decimal(".5")),
        ("1.10", Decimal("1.10")),
        ("true", True),
        ("False", False),
        ("yes", "yes"),  # YAML 1.2: no Norway problem
        ("no", "no"),
        ("on", "on"),
        ("~", None),
        ("null", None),
        ("", None),
        ("2026-01-01", "2026-01-01"),  # dates stay text
        ("1_000", "1_000"),
        ("0.1.2", "0.1.2"),
        (".inf", Decimal("Infinity")),
        ("9" * 100, "9" * 100),  # too long to be a number: stays text, fails type checks
    ],
)
def test_core_schema_resolution(text: str, value: object) -> None:
    got = resolve_plain(text)
    assert got == value and type(got) is type(value)


def test_fractions_are_exact_decimals_never_floats() -> None:
    docs, _ = parse("price: 0.1\nother: 0.2\n")
    data = docs[0].data
    assert data["price"] + data["other"] == Decimal("0.3")


def test_quoted_scalars_stay_strings() -> None:
    docs, _ = parse("a: '1'\nb: \"true\"\nc: !!str 5\n")
    assert docs[0].data == {"a": "1", "b": "true", "c": "5"}


def test_explicit_core_tags() -> None:
    docs, sink = parse("a: !!int '12'\nb: !!float 3\nc: !!bool 'true'\n")
    assert docs[0].data == {"a": 12, "b": Decimal(3), "c": True}
    assert not list(sink)


def test_positions_of_keys_and_values() -> None:
    docs, _ = parse("kind: Provider\nbudgets:\n  - limit: 5\n    unit: usd\n")
    tree = docs[0].pos
    assert value_pos(tree, ("kind",))[:2] == (1, 7)
    assert key_pos(tree, ("budgets", 0, "unit"))[:2] == (4, 5)
    assert value_pos(tree, ("budgets", 0, "unit"))[:2] == (4, 11)
    assert value_pos(tree, ("budgets", 0, "limit"))[:4] == (3, 12, 3, 13)
    # a path past the data falls back to the deepest existing node
    assert value_pos(tree, ("budgets", 0, "nope", 3))[:2] == (3, 5)


def test_aliases_report_the_anchor_position() -> None:
    docs, _ = parse("base: &b {limit: 5}\nuse: *b\n")
    tree = docs[0].pos
    assert docs[0].data["use"] == {"limit": 5}
    assert value_pos(tree, ("use", "limit"))[:2] == (1, 18)


def test_merge_keys_explicit_wins_and_positions_come_from_source() -> None:
    text = "base: &b {a: 1, b: 2}\nm:\n  b: 3\n  <<: *b\n  c: 4\n"
    docs, sink = parse(text)
    assert docs[0].data["m"] == {"b": 3, "c": 4, "a": 1}
    assert not list(sink)
    tree = docs[0].pos
    assert value_pos(tree, ("m", "a"))[:2] == (1, 14)
    assert value_pos(tree, ("m", "b"))[:2] == (3, 6)


def test_merge_of_a_list_of_mappings_earlier_wins() -> None:
    docs, _ = parse("x: &x {a: 1}\ny: &y {a: 2, b: 2}\nm:\n  <<: [*x, *y]\n")
    assert docs[0].data["m"] == {"a": 1, "b": 2}


def test_bad_merge_value() -> None:
    _, sink = parse("s: &s hello\nm:\n  <<: *s\n")
    assert codes(sink) == ["E0107"]


def test_duplicate_keys_reported_with_first_position() -> None:
    docs, sink = parse("a: 1\nb: 2\na: 3\n")
    (diag,) = sink.sorted()
    assert diag.code == "E0101" and (diag.span.line, diag.span.column) == (3, 1)
    assert diag.notes[0].span.line == 1
    assert docs[0].data["a"] == 1


def test_unknown_tag_and_unknown_alias() -> None:
    _, sink = parse("a: !Ref other\nb: !!python/object:os.system x\n")
    assert codes(sink) == ["E0105", "E0105"]
    docs, sink = parse("a: *nowhere\n")
    assert codes(sink) == ["E0100"] and docs == []


def test_complex_keys_are_rejected() -> None:
    _, sink = parse("? [a, b]\n: 1\n")
    assert codes(sink) == ["E0106"]


def test_deep_nesting_is_bounded() -> None:
    depth = MAX_DEPTH + 10
    docs, sink = parse("[" * depth + "]" * depth)
    assert docs == [] and codes(sink) == ["E0108"]


@given(
    block=st.integers(min_value=0, max_value=100),
    flow=st.lists(st.sampled_from(["[", "{", "[ ", "{? ", "[a, "]), max_size=100),
    tail=st.sampled_from(["", "x", "]", " # [[[[[[", ' "[[[[[["']),
)
def test_nesting_is_refused_exactly_at_the_65th_collection(
    block: int, flow: list[str], tail: str
) -> None:
    """Law: block (`- `) and flow (`[`, `{`) openers in any mix; E0108 appears iff more than
    MAX_DEPTH collections are open, at the column of the first one too many, and nothing
    after it is parsed (10,000 more `[` change nothing)."""
    openers = ["- "] * block + flow
    docs, sink = parse("".join(openers) + tail)
    deep = [d for d in sink if d.code == "E0108"]
    if len(openers) <= MAX_DEPTH:
        assert not deep
        return
    column = len("".join(openers[:MAX_DEPTH])) + 1
    assert [(d.span.line, d.span.column) for d in deep] == [(1, column)]
    assert docs == []
    _, longer = parse("".join(openers) + "[" * 10_000 + tail)
    assert list(longer) == list(sink)


def test_more_than_max_documents_refuses_the_file() -> None:
    docs, sink = parse("a: 1\n" + "--- {b: 1}\n" * (MAX_DOCUMENTS - 1))
    assert len(docs) == MAX_DOCUMENTS and not list(sink)
    docs, sink = parse("a: 1\n" + "--- {b: 1}\n" * MAX_DOCUMENTS)
    assert docs == [] and codes(sink) == ["E0109"]
    assert next(iter(sink)).span.line == MAX_DOCUMENTS + 1


def test_billion_laughs_rejected_fast_with_bounded_memory() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijklmnop":
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
        prev = name
    tracemalloc.start()
    start = time.perf_counter()
    docs, sink = parse("\n".join(lines) + "\n")
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert docs == [] and codes(sink) == ["E0103"]
    assert elapsed < 2.0  # generous bound on a 9**16-node expansion; it is ~1 ms
    assert peak < 20 * 1024 * 1024


def test_multi_document_files_keep_documents_before_a_syntax_error() -> None:
    docs, sink = parse("a: 1\n---\nb: 2\n---\nc: [\n")
    assert [d.data for d in docs] == [{"a": 1}, {"b": 2}]
    assert [d.index for d in docs] == [0, 1]
    assert codes(sink) == ["E0100"]


def test_empty_and_null_documents_are_skipped() -> None:
    docs, sink = parse("")
    assert docs == [] and not list(sink)
    docs, sink = parse("# only a comment\n---\n---\na: 1\n")
    assert [d.data for d in docs] == [{"a": 1}]


def test_crlf_positions() -> None:
    docs, _ = parse("a: 1\r\nbb: 2\r\n")
    assert value_pos(docs[0].pos, ("bb",))[:2] == (2, 5)


def test_tabs_in_indentation_are_a_syntax_error_with_help() -> None:
    _, sink = parse("a:\n\tb: 1\n")
    (diag,) = sink.sorted()
    assert diag.code == "E0100" and diag.span.line == 2
    assert diag.help and "tabs" in diag.help


def test_control_characters_are_located() -> None:
    _, sink = parse("a: 1\nb: x\x07y\n")
    (diag,) = sink.sorted()
    assert diag.code == "E0100" and (diag.span.line, diag.span.column) == (2, 5)


def test_decode_bom_and_invalid_utf8() -> None:
    sink = Sink()
    assert decode("\ufeffa: 1\n".encode(), "f", sink) == "a: 1\n"
    assert decode(b"a: 1\nb: caf\xe9\n", "f", sink) is None
    (diag,) = sink.sorted()
    assert diag.code == "E0102" and (diag.span.line, diag.span.column) == (2, 7)
    sink = Sink()
    assert decode("a: 1".encode("utf-16"), "f", sink) is None
    assert "UTF-16" in (sink.sorted()[0].help or "")


def test_json_is_yaml() -> None:
    docs, sink = parse(
        '{\n\t"strategy": {"mode": "fallback"},\n\t"targets": [{"weight": 0.5}]\n}\n'
    )
    assert not list(sink)
    assert docs[0].data["targets"][0]["weight"] == Decimal("0.5")
    assert value_pos(docs[0].pos, ("targets", 0, "weight"))[:2] == (3, 25)
