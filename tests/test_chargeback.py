"""catalog_compiler.tools.chargeback: the line reader's bounds, exact sums, and the codes as
documented in docs/usage-events.md."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_compiler.tools.chargeback import (
    CODES,
    MAX_LINE_BYTES,
    Event,
    Problem,
    Skip,
    Tally,
    format_usd,
    parse_line,
    read_stream,
    summarize,
)
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "usage-events.md").read_text(encoding="utf-8")


def line(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "v": 1, "event": "usage", "ts": "2026-12-01T17:47:00.123Z", "request_id": "r",
        "workspace": "support", "provider": "openai-prod", "model": "gpt-4o",
        "tokens": {"input": 1, "output": 2, "cache_read": 3, "cache_write": 4},
        "catalog_cost_usd": "0.00300", "chargeback_usd": "0",
    }  # fmt: skip
    base.update(fields)
    return json.dumps(base).encode()


def test_a_line_parses_to_its_event() -> None:
    found = parse_line(line(ts="2026-12-01T17:47:00.123456789Z"), "f", 1)
    assert found == Event(
        "r", datetime(2026, 12, 1, 17, 47, 0, 123456, tzinfo=UTC), "support", "openai-prod",
        "gpt-4o", (1, 2, 3, 4), Decimal("0.00300"), Decimal("0"),
    )  # fmt: skip
    assert parse_line(b'{"v": 1, "event": "rotated"}', "f", 1) == Skip("rotated")
    assert parse_line(b"   ", "f", 1) is None


def test_a_newer_version_is_refused_before_the_event_kind_is_trusted() -> None:
    found = parse_line(b'{"v": 2, "event": "other"}', "f", 3)
    assert isinstance(found, Problem) and found.code == "R010" and found.line == 3


def test_the_line_cap_is_exact() -> None:
    pad = MAX_LINE_BYTES - len(line(pad=""))
    at_cap, over = line(pad="x" * pad), line(pad="x" * (pad + 1))
    assert len(at_cap) == MAX_LINE_BYTES
    assert isinstance(parse_line(at_cap, "f", 1), Event)
    tally = Tally()
    problems = list(read_stream(io.BytesIO(over + b"\n" + at_cap + b"\n"), "f", tally))
    assert [(p.line, p.code) for p in problems] == [(1, "R002")]
    assert tally.total.requests == 1  # the long line is dropped, the next one read


def test_a_line_without_end_is_not_kept_whole_in_memory() -> None:
    """Megabytes without a newline are read in bounded pieces and reported once."""
    tally = Tally()
    stream = io.BytesIO(b"x" * (5 * MAX_LINE_BYTES) + b"\n" + line() + b"\n")
    problems = list(read_stream(stream, "f", tally))
    assert [(p.line, p.code) for p in problems] == [(1, "R002")] and tally.total.requests == 1


def test_format_usd_is_plain_and_exact() -> None:
    cases = {"0": "0", "0.000": "0", "0.00300": "0.003", "12.50": "12.5", "100": "100",
             "0.000000000000000001": "0.000000000000000001"}  # fmt: skip
    for given_, shown in cases.items():
        assert format_usd(Decimal(given_)) == shown
    assert format_usd(Decimal("1E-7")) == "0.0000001"  # never exponent notation


def test_sums_never_round() -> None:
    big = Decimal("999999999999999.999999999999999999")  # 33 digits: past the default 28
    tally = summarize([Event(str(i), datetime(2026, 1, 1, tzinfo=UTC), "w", None, None,
                             (0, 0, 0, 0), big, big) for i in range(1000)])  # fmt: skip
    assert Fraction(tally.total.catalog_cost_usd) == Fraction(big) * 1000  # (big * 1000 rounds)
    assert format_usd(tally.total.chargeback_usd) == "999999999999999999.999999999999999"


DAYS = [datetime(2026, 12, d, h, tzinfo=UTC) for d in (1, 2) for h in (0, 23)]
EVENTS = st.lists(
    st.builds(
        Event,
        request_id=st.text("abcdef", min_size=1, max_size=3),  # collisions: duplicates
        ts=st.sampled_from(DAYS),
        workspace=st.sampled_from(["a", "b"]),
        provider=st.sampled_from(["p", "q", None]),
        model=st.sampled_from(["m", "n", None]),
        tokens=st.tuples(*[st.integers(0, 10**12)] * 4),
        catalog_cost_usd=st.decimals(0, 10**15 - 1, places=18),
        chargeback_usd=st.decimals(0, 10**15 - 1, places=12),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events=EVENTS, by=st.lists(st.sampled_from(["workspace", "provider", "model", "day"]),
                                  min_size=1, max_size=4, unique=True))  # fmt: skip
def test_the_total_is_the_exact_sum_of_first_occurrences_and_rows_partition_it(
    events: list[Event], by: list[str]
) -> None:
    tally = summarize(events, by)
    firsts = list({e.request_id: e for e in reversed(events)}.values())
    assert tally.duplicates == len(events) - len(firsts)
    assert tally.total.requests == len(firsts)
    for attr in ("catalog_cost_usd", "chargeback_usd"):
        exact = sum((Fraction(getattr(e, attr)) for e in firsts), Fraction(0))
        assert Fraction(getattr(tally.total, attr)) == exact
        assert sum((Fraction(getattr(t, attr)) for _, t in tally.rows()), Fraction(0)) == exact
    for i in range(4):
        assert tally.total.tokens[i] == sum(e.tokens[i] for e in firsts)
        assert sum(t.tokens[i] for _, t in tally.rows()) == tally.total.tokens[i]
    # every first occurrence lands in the one row of its key
    for key, totals in tally.rows():
        assert totals.requests == sum(1 for e in firsts if e.key(by) == key)


def test_every_code_is_documented_and_every_documented_code_exists() -> None:
    documented = set(re.findall(r"^\| (R\d{3}) \|", DOC, flags=re.M))
    assert documented == set(CODES)


def test_the_documented_markdown_example_is_what_the_report_prints() -> None:
    from click.testing import CliRunner

    from catalog_compiler.cli import cli

    events = [
        line(request_id="r1", workspace="support", model="gpt-4o",
             tokens={"input": 812, "output": 97, "cache_read": 0, "cache_write": 0}),
        line(request_id="r2", workspace="research", provider=None, model=None,
             tokens={"input": 0, "output": 0, "cache_read": 0, "cache_write": 0},
             catalog_cost_usd="0"),
        line(request_id="r3", workspace="support", model="gpt-4o-mini",
             tokens={"input": 10, "output": 5, "cache_read": 3, "cache_write": 1},
             catalog_cost_usd="0.000011", chargeback_usd="0.000022"),
    ]  # fmt: skip
    stdin = b"\n".join(events) + b"\n"
    shown = CliRunner().invoke(cli, ["report", "-"], input=stdin).stdout
    block = DOC.split("**Markdown**", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    assert shown == block
    csv_shown = CliRunner().invoke(cli, ["report", "-", "--by", "workspace", "--by", "model",
                                         "--format", "csv"], input=stdin).stdout  # fmt: skip
    csv_block = DOC.split("**CSV**", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    assert csv_shown == csv_block


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_is_exercised_by_a_test(code: str) -> None:
    tests = (ROOT / "tests" / "cli" / "test_report_cmd.py").read_text(encoding="utf-8")
    tests += (ROOT / "tests" / "test_chargeback.py").read_text(encoding="utf-8")
    assert f'"{code}"' in tests or f"[{code}]" in tests
