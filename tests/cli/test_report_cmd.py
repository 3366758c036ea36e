"""`catalogc report`: usage events summed exactly, grouped, windowed, deduplicated; every bad
line a located diagnostic with its exit code, never a traceback."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_compiler.cli import cli, report_cmd
from catalog_compiler.cli.report_cmd import parse_when, report


def event(request_id: str = "r1", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1, "event": "usage", "ts": "2026-12-01T17:47:00.123Z", "request_id": request_id,
        "trace_id": "t-" + request_id, "workspace": "support", "provider": "openai-prod",
        "model": "gpt-4o", "endpoint": "chat", "status": 200, "attempts": 1, "stream": False,
        "tokens": {"input": 812, "output": 97, "cache_read": 0, "cache_write": 0},
        "catalog_cost_usd": "0.00300", "chargeback_usd": "0", "bundle": "sha256:abc",
    }  # fmt: skip
    base.update(fields)
    return base


def write(path: Path, *lines: dict[str, Any] | str | bytes, end: bytes = b"\n") -> Path:
    data = b""
    for line in lines:
        if isinstance(line, dict):
            line = json.dumps(line)
        data += (line if isinstance(line, bytes) else line.encode()) + end
    path.write_bytes(data)
    return path


def run(*args: str | Path, stdin: bytes | None = None, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, ["report", *map(str, args)], input=stdin,
                         env={"NO_COLOR": "", **(env or {})}, catch_exceptions=False)  # fmt: skip


def report_json(*args: str | Path) -> dict[str, Any]:
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


SAMPLE = [
    event("r1"),
    event("r2", ts="2026-12-02T01:00:00Z", workspace="research", provider=None, model=None,
          tokens={"input": 0, "output": 0, "cache_read": 0, "cache_write": 0},
          catalog_cost_usd="0", chargeback_usd="0"),
    event("r3", ts="2026-12-02T23:59:59.999999999Z", model="gpt-4o-mini",
          tokens={"input": 10, "output": 5, "cache_read": 3, "cache_write": 1},
          catalog_cost_usd="0.000011", chargeback_usd="0.000022"),
]  # fmt: skip


# -- the three formats --------------------------------------------------------------------------
def test_markdown_is_the_default_with_a_total_row(tmp_path: Path) -> None:
    result = run(write(tmp_path / "events.jsonl", *SAMPLE))
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| workspace | requests | input tokens | output tokens |")
    assert lines[2] == "| `research` | 1 | 0 | 0 | 0 | 0 | 0 | 0 |"
    assert lines[3] == "| `support` | 2 | 822 | 102 | 3 | 1 | 0.003011 | 0.000022 |"
    assert lines[4] == "| **total** | 3 | 822 | 102 | 3 | 1 | 0.003011 | 0.000022 |"
    assert lines[-1] == "3 requests from 1 file."


def test_csv_is_rfc4180_with_exact_decimals(tmp_path: Path) -> None:
    odd = event("r9", model='a,"b"', catalog_cost_usd="12.50", chargeback_usd="0.000000000001")
    result = run(write(tmp_path / "e", *SAMPLE, odd), "--by", "model", "--format", "csv")
    assert result.exit_code == 0, result.output
    text = result.stdout_bytes.decode()  # (Result.stdout turns CRLF into LF)
    assert text.count("\r\n") == 6 and "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["model", "requests", "input_tokens", "output_tokens", "cache_read_tokens",
                       "cache_write_tokens", "catalog_cost_usd", "chargeback_usd"]  # fmt: skip
    assert [r[0] for r in rows[1:]] == ['a,"b"', "gpt-4o", "gpt-4o-mini", "", "(total)"]
    assert rows[1][-2:] == ["12.5", "0.000000000001"]
    assert rows[-1][-2:] == ["12.503011", "0.000022000001"]


BACKTICKS = re.compile("`+")


def code_span(cell: str) -> str | None:
    """What CommonMark reads in `cell` when it is one whole code span, else None: the span
    opened by the leading backtick run closes at the next run of exactly that length."""
    fence = BACKTICKS.match(cell)
    if fence is None:
        return None
    runs = [m for m in BACKTICKS.finditer(cell, fence.end()) if len(m[0]) == len(fence[0])]
    if not runs or runs[0].end() != len(cell):
        return None
    inner = cell[fence.end() : runs[0].start()]
    stripped = inner[:1] == inner[-1:] == " " and inner.strip(" ")
    return inner[1:-1] if stripped else inner


@settings(max_examples=300)
@given(st.text(st.sampled_from("`a <>"), min_size=1))
def test_a_name_is_one_code_span_whatever_its_backticks(name: str) -> None:
    assert code_span(report_cmd._code(name)) == name


def test_a_name_cannot_close_its_code_span(tmp_path: Path) -> None:
    name = "a``<img src=x onerror=alert(1)>``b"
    result = run(write(tmp_path / "e", event(workspace=name)))
    assert result.exit_code == 0, result.output
    cell = result.stdout.splitlines()[2].split(" | ")[0].removeprefix("| ")
    assert cell == f"``` {name} ```" and code_span(cell) == name


@pytest.mark.parametrize("name", ['=HYPERLINK("http://evil/","x")', "+1", "-2+3", "@SUM(A1)"])
def test_a_csv_name_never_starts_a_formula(tmp_path: Path, name: str) -> None:
    fine = event("r2", workspace="a=b")
    result = run(write(tmp_path / "e", event(workspace=name), fine), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert sorted(r[0] for r in rows[1:-1]) == sorted(["'" + name, "a=b"])
    assert report_cmd.csv_cell("\tx") == "'\tx" and report_cmd.csv_cell("\rx") == "'\rx"


@given(st.text(max_size=6))
def test_csv_cells_are_told_apart_and_read_back(text: str) -> None:
    """Two names never print as one cell (`=x` and `'=x` both printed `'=x`): a cell that
    starts with ' has exactly one ' added, which a reader drops to get the name back."""
    cell = report_cmd.csv_cell(text)
    assert not cell.startswith(report_cmd.FORMULA_STARTS)
    assert (cell[1:] if cell.startswith("'") else cell) == text


def test_json_has_the_documented_shape(tmp_path: Path) -> None:
    data = report_json(write(tmp_path / "e", *SAMPLE, {"v": 1, "event": "start"}),
                       "--by", "workspace", "--by", "model")  # fmt: skip
    assert list(data) == ["by", "rows", "total", "skipped", "duplicates"]
    assert data["by"] == ["workspace", "model"]
    assert [(r["workspace"], r["model"]) for r in data["rows"]] == [
        ("research", None), ("support", "gpt-4o"), ("support", "gpt-4o-mini")]  # fmt: skip
    assert data["total"] == {
        "requests": 3, "input_tokens": 822, "output_tokens": 102, "cache_read_tokens": 3,
        "cache_write_tokens": 1, "catalog_cost_usd": "0.003011", "chargeback_usd": "0.000022",
    }  # fmt: skip
    assert data["skipped"] == 1 and data["duplicates"] == 0


def test_costs_add_exactly_where_floats_would_not(tmp_path: Path) -> None:
    events = [event(f"r{i}", catalog_cost_usd=c, chargeback_usd=c)
              for i, c in enumerate(["0.1", "0.2", "999999999999999.999999999999999999"])]  # fmt: skip
    data = report_json(write(tmp_path / "e", *events))
    assert data["total"]["catalog_cost_usd"] == "1000000000000000.299999999999999999"
    assert report_json(write(tmp_path / "f", *events[:2]))["total"]["chargeback_usd"] == "0.3"


def test_by_day_and_provider_sorts_nulls_last(tmp_path: Path) -> None:
    data = report_json(write(tmp_path / "e", *SAMPLE), "--by", "day", "--by", "provider")
    keys = [(r["day"], r["provider"]) for r in data["rows"]]
    assert keys == [("2026-12-01", "openai-prod"), ("2026-12-02", "openai-prod"),
                    ("2026-12-02", None)]  # fmt: skip


def test_output_does_not_depend_on_the_order_of_lines_or_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a", *SAMPLE[:2])
    b = write(tmp_path / "b", SAMPLE[2])
    c = write(tmp_path / "c", *reversed(SAMPLE))
    for fmt in ("markdown", "csv", "json"):
        one = run(a, b, "--by", "model", "--format", fmt).stdout
        assert one == run(b, a, "--by", "model", "--format", fmt).stdout
        assert one == run(c, "--by", "model", "--format", fmt).stdout.replace("1 file", "2 files")


def test_stdin_is_read_for_a_dash(tmp_path: Path) -> None:
    result = run("-", "--format", "json", stdin=b"".join(json.dumps(e).encode() + b"\n"
                                                         for e in SAMPLE))  # fmt: skip
    assert result.exit_code == 0
    assert json.loads(result.stdout)["total"]["requests"] == 3


def test_no_events_is_an_empty_report(tmp_path: Path) -> None:
    data = report_json(write(tmp_path / "e", "", "  "))
    assert data["rows"] == [] and data["total"]["requests"] == 0
    assert data["total"]["catalog_cost_usd"] == "0"


# -- duplicates, other events, forward compatibility --------------------------------------------
def test_a_file_given_twice_counts_each_request_once(tmp_path: Path) -> None:
    path = write(tmp_path / "events.jsonl", *SAMPLE)
    once = report_json(path)
    result = run(path, path, "--format", "json")
    assert result.exit_code == 0
    twice = json.loads(result.stdout)
    assert twice["rows"] == once["rows"] and twice["total"] == once["total"]
    assert twice["duplicates"] == 3
    assert result.stderr.splitlines() == [
        f"{path}:1:1: warning[R020]: 3 duplicate request ids, each counted once (its first "
        f"occurrence): request id `r1` was already counted at {path}:1"
    ]


def test_overlapping_rotations_keep_the_first_occurrence(tmp_path: Path) -> None:
    new = write(tmp_path / "events.jsonl", event("r1", workspace="first"), event("r2"))
    old = write(tmp_path / "events.jsonl.1", event("r1", workspace="second"))
    data = report_json(new, old)
    assert [r["workspace"] for r in data["rows"]] == ["first", "support"]
    assert data["duplicates"] == 1


def test_unknown_fields_are_ignored_and_other_events_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "e", event("r1", future={"x": [1, 2]}, cost_usd=3),
                 {"v": 1, "event": "rotated", "anything": None})  # fmt: skip
    data = report_json(path)
    assert data["total"]["requests"] == 1 and data["skipped"] == 1
    assert (
        run(path).stdout.splitlines()[-1]
        == "1 request from 1 file; 1 line of other events skipped."
    )


# -- the window ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("window", "ids"), [
    ([], ["r1", "r2", "r3"]),
    (["--since", "2026-12-02"], ["r2", "r3"]),
    (["--until", "2026-12-02"], ["r1"]),
    (["--since", "2026-12-01T17:47:00.123Z", "--until", "2026-12-01T17:47:00.124"], ["r1"]),
    (["--since", "2026-12-01T17:47:00.124Z"], ["r2", "r3"]),
    (["--until", "2026-12-02T23:59:59.999999Z"], ["r1", "r2"]),  # r3 is later by < 1 µs
    (["--since", "2026-12-02T02:00:00+01:00", "--until", "2026-12-03"], ["r2", "r3"]),
])  # fmt: skip
def test_since_is_inclusive_and_until_exclusive(tmp_path: Path, window: list[str],
                                                ids: list[str]) -> None:  # fmt: skip
    events = [dict(e, workspace=e["request_id"]) for e in SAMPLE]
    data = report_json(write(tmp_path / "e", *events), *window)
    assert [r["workspace"] for r in data["rows"]] == ids


@pytest.mark.parametrize("window", [["--since", "yesterday"], ["--until", "2026-02-30"],
                                    ["--since", "2026-12-02", "--until", "2026-12-01"],
                                    ["--by", "model", "--by", "model"], ["--by", "team"],
                                    ["--since", "9999-12-31T23:30:00-01:00"],  # past 9999 in UTC
                                    ["--until", "0001-01-01T00:30:00+01:00"]])  # fmt: skip
def test_a_bad_window_or_key_is_a_usage_error(tmp_path: Path, window: list[str]) -> None:
    result = run(write(tmp_path / "e", *SAMPLE), *window)
    assert result.exit_code == 2 and result.stdout == ""
    assert "Traceback" not in result.output


def _stamp(when: datetime, minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{when.isoformat()}{sign}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"


# Arbitrary text, and timestamps whose offset may carry them past year 1 or 9999 in UTC.
WHENS = st.one_of(
    st.text(),
    st.builds(
        _stamp,
        st.one_of(
            st.datetimes(),
            st.datetimes(max_value=datetime(1, 1, 2)),
            st.datetimes(min_value=datetime(9999, 12, 31)),
        ),
        st.integers(-1439, 1439),
    ),
    st.dates().map(date.isoformat),
)


SINCE = next(p for p in report.params if p.name == "since")


@settings(max_examples=300, deadline=None)
@given(WHENS)
def test_a_window_bound_is_a_utc_time_or_a_usage_error(value: str) -> None:
    try:
        when = parse_when(click.Context(report), SINCE, value)
    except click.BadParameter:
        return
    assert when is not None and when.utcoffset() == timedelta(0)


def test_events_are_required() -> None:
    assert run().exit_code == 2


# -- bad input: located, never a traceback ------------------------------------------------------
BAD = [
    ("{not json", "R001", 2),
    ('{"v": 1, "event": "usage", NaN}', "R001", 28),
    ("[1, 2]", "R004", 1),
    ('{"v": 1, "v": 1}', "R005", 1),
    (json.dumps(event(v=2)), "R010", 2),
    (json.dumps(event(v="1")), "R011", 2),
    (json.dumps({k: v for k, v in event().items() if k != "workspace"}), "R012", 1),
    (
        json.dumps(event(tokens={"input": 1, "output": 2, "cache_read": 0})),
        "R012",
        json.dumps(event()).index('"tokens"') + 1,
    ),
    (json.dumps(event(workspace=7)), "R013", None),
    (
        json.dumps(
            event(
                stream=True, tokens={"input": True, "output": 0, "cache_read": 0, "cache_write": 0}
            )
        ),
        "R013",
        None,
    ),
    (
        json.dumps(event(tokens={"input": 1.0, "output": 0, "cache_read": 0, "cache_write": 0})),
        "R013",
        None,
    ),
    (json.dumps(event(catalog_cost_usd=0.003)), "R014", None),
    (json.dumps(event(chargeback_usd=0)), "R014", None),
    (json.dumps(event(catalog_cost_usd="-0.1")), "R015", None),
    (json.dumps(event(catalog_cost_usd="1E-7")), "R015", None),
    (json.dumps(event(catalog_cost_usd="NaN")), "R015", None),
    (json.dumps(event(catalog_cost_usd="0.0000000000000000001")), "R015", None),
    (json.dumps(event(chargeback_usd="1000000000000000")), "R015", None),
    (json.dumps(event(chargeback_usd=" 1")), "R015", None),
    (
        json.dumps(
            event(tokens={"input": 10**12 + 1, "output": 0, "cache_read": 0, "cache_write": 0})
        ),
        "R016",
        None,
    ),
    (
        json.dumps(event(tokens={"input": 0, "output": 0, "cache_read": 0, "cache_write": -1})),
        "R016",
        None,
    ),
    (json.dumps(event(ts="2026-12-01 17:47:00")), "R017", None),
    (json.dumps(event(ts="2026-12-01T17:47:00+00:00")), "R017", None),
    (json.dumps(event(ts="2026-02-30T00:00:00Z")), "R017", None),
    (json.dumps(event(ts=1764611220)), "R017", None),
    (json.dumps(event(workspace="")), "R018", None),
    (json.dumps(event(model="gpt\x1b[31m")), "R018", None),
    (json.dumps(event(request_id="x" * 1025)), "R018", None),
    (json.dumps(event(workspace="a\ud800b")), "R018", None),  # valid JSON, not writable text
    (json.dumps(event(model="m\udfff")), "R018", None),
    (json.dumps(event(provider="\udc80p")), "R018", None),
    (json.dumps(event(request_id="r\ud83d")), "R018", None),
    ("[" * 100_00 + "]" * 100_00, "R001", 1),
]


@pytest.mark.parametrize(
    ("line", "code", "column"), BAD, ids=[f"{c}-{i}" for i, (_, c, _) in enumerate(BAD)]
)
def test_a_bad_line_is_a_located_error(tmp_path: Path, line: str, code: str,
                                       column: int | None) -> None:  # fmt: skip
    path = write(tmp_path / "events.jsonl", SAMPLE[0], line, SAMPLE[1])
    result = run(path, "--format", "json")
    assert result.exit_code == 1, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    first, summary = result.stderr.splitlines()
    assert first.startswith(f"{path}:2:") and f": error[{code}]: " in first, first
    if column is None:  # the column of the offending key
        field = first.split("`")[1].split(".")[-1]
        column = line.index(json.dumps(field)) + 1
    assert first.startswith(f"{path}:2:{column}: "), first
    assert summary == "catalogc: 1 error in the events: no report printed"


def test_a_line_over_64_kib_is_refused_and_reading_goes_on(tmp_path: Path) -> None:
    long = json.dumps(event("big", pad="x" * 70_000))
    path = write(tmp_path / "e", SAMPLE[0], long, "{bad")
    result = run(path)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        f"{path}:2:1: error[R002]: the line has more than 65536 bytes: not an event",
        f"{path}:3:2: error[R001]: invalid JSON: Expecting property name enclosed in double quotes",
    ]


@pytest.mark.parametrize("fmt", ["markdown", "csv", "json"])
def test_a_lone_surrogate_is_refused_before_any_output(tmp_path: Path, fmt: str) -> None:
    """In a real process (strict UTF-8 stdout), where writing the name was an internal error."""
    path = write(tmp_path / "e", json.dumps(event(workspace="a\ud800b")))
    done = subprocess.run([sys.executable, "-m", "catalog_compiler", "report", str(path),
                           "--format", fmt], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})  # fmt: skip
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    column = json.dumps(event()).index('"workspace"') + 1
    assert done.stderr.startswith(f"{path}:1:{column}: error[R018]: `workspace` holds a lone")
    assert "internal error" not in done.stderr


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    path = write(tmp_path / "e", b'{"v": 1, "event": "us\xffage"}')
    result = run(path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}:1:22: error[R003]: invalid UTF-8 at byte 22")


def test_an_unterminated_last_line_is_skipped_when_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(json.dumps(SAMPLE[0]).encode() + b"\n" + json.dumps(SAMPLE[1]).encode()[:40])
    result = run(path, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["total"]["requests"] == 1
    assert result.stderr.startswith(f"{path}:2:1: warning[R021]: the last line has no newline")
    complete = write(tmp_path / "complete", *SAMPLE, end=b"")  # one line, no newline at all
    result = run(complete)  # three objects on one line are not a truncated event
    assert result.exit_code == 1 and ": error[R001]: invalid JSON: Extra data" in result.stderr
    cut = tmp_path / "cut"  # a multi-byte character cut short by the end of the file
    cut.write_bytes(json.dumps(SAMPLE[0]).encode() + b'\n{"v": 1, "event": "\xc3')
    assert run(cut).stderr.startswith(f"{cut}:2:1: warning[R021]: ")
    whole = tmp_path / "whole"
    whole.write_bytes(json.dumps(SAMPLE[0]).encode())
    assert report_json(whole)["total"]["requests"] == 1


def test_crlf_line_endings_are_read(tmp_path: Path) -> None:
    assert report_json(write(tmp_path / "e", *SAMPLE, end=b"\r\n"))["total"]["requests"] == 3


def test_a_flood_of_errors_is_capped(tmp_path: Path) -> None:
    path = write(tmp_path / "e", *["{"] * 500)
    result = run(path)
    lines = result.stderr.splitlines()
    assert result.exit_code == 1 and len(lines) == 102
    assert lines[-2:] == ["catalogc: … and 400 more problems",
                          "catalogc: 500 errors in the events: no report printed"]  # fmt: skip


def test_unreadable_paths_are_io_errors(tmp_path: Path) -> None:
    good = write(tmp_path / "e", *SAMPLE)
    result = run(good, tmp_path / "missing", tmp_path)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'missing'}: error[R030]: cannot read: No such file or directory",
        f"{tmp_path}: error[R030]: cannot read: Is a directory",
        "catalogc: 2 errors in the events: no report printed",
    ]
    assert run(good, "/dev/zero").exit_code == 2  # a device never ends: refused, not read


def test_control_characters_in_a_path_are_not_echoed(tmp_path: Path) -> None:
    result = run(tmp_path / "evil\x1b[2Jname")
    assert result.exit_code == 2 and "\x1b" not in result.stderr


def test_colour_only_when_asked_and_never_with_no_color(tmp_path: Path) -> None:
    path = write(tmp_path / "e", "{")
    painted = run(path, "--color", "always")
    assert "\x1b[1;31merror[R001]\x1b[0m" in painted.stderr
    assert "\x1b[" not in run(path).stderr
    assert "\x1b[" not in run(path, env={"NO_COLOR": "1"}).stderr


def test_pipes_in_names_do_not_break_the_markdown_table(tmp_path: Path) -> None:
    result = run(write(tmp_path / "e", event(model="a|b")), "--by", "model")
    row = result.stdout.splitlines()[2]
    assert row.startswith("| `a\\|b` | 1 |")


# -- the property: totals are the exact sum, and groups partition them --------------------------
MONEY = st.builds(
    lambda whole, places: whole + ("." + places if places else ""),
    st.integers(0, 10**15 - 1).map(str) | st.sampled_from(["0", "1"]),
    st.text("0123456789", max_size=18),
)
EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "workspace": st.sampled_from(["alpha", "beta", "gamma"]),
            "provider": st.sampled_from(["openai-prod", "azure-eu", None]),
            "model": st.sampled_from(["gpt-4o", "o4-mini", "claude", None]),
            "ts": st.sampled_from(
                ["2026-11-30T23:59:59.999Z", "2026-12-01T00:00:00Z", "2026-12-01T12:00:00.5Z"]
            ),
            "tokens": st.fixed_dictionaries(
                {
                    k: st.integers(0, 10**12)
                    for k in ("input", "output", "cache_read", "cache_write")
                }
            ),
            "catalog_cost_usd": MONEY,
            "chargeback_usd": MONEY,
        }
    ),
    max_size=25,
)
METRIC_FIELDS = ["requests", "input_tokens", "output_tokens", "cache_read_tokens",
                 "cache_write_tokens", "catalog_cost_usd", "chargeback_usd"]  # fmt: skip


def exact(row: dict[str, Any]) -> list[Fraction]:
    return [Fraction(row[f]) for f in METRIC_FIELDS]


@settings(max_examples=60, deadline=None)
@given(
    events=EVENTS,
    by=st.lists(
        st.sampled_from(["workspace", "provider", "model", "day"]),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    repeated=st.lists(st.integers(0, 24), max_size=5),
)
def test_totals_are_the_exact_sum_and_groups_partition_them(
    tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, Any]], by: list[str],
    repeated: list[int],
) -> None:  # fmt: skip
    lines = [event(f"req-{i}", **fields) for i, fields in enumerate(events)]
    folder = tmp_path_factory.mktemp("p")
    first = write(folder / "events.jsonl", *lines)
    again = write(folder / "events.jsonl.1", *[lines[i] for i in repeated if i < len(lines)])
    data = report_json(first, again, *[a for key in by for a in ("--by", key)])
    # the oracle: Fractions of the events' own strings, each request once
    expected = [Fraction(len(lines)),
                *(Fraction(sum(e["tokens"][k] for e in lines)) for k in
                  ("input", "output", "cache_read", "cache_write")),
                Fraction(sum(Fraction(e["catalog_cost_usd"]) for e in lines)),
                Fraction(sum(Fraction(e["chargeback_usd"]) for e in lines))]  # fmt: skip
    assert exact(data["total"]) == expected
    assert data["duplicates"] == len([i for i in repeated if i < len(lines)])
    # the rows partition the total: distinct keys, sorted, summing to it field by field
    keys = [tuple(row[k] for k in by) for row in data["rows"]]
    assert len(set(keys)) == len(keys)
    assert keys == sorted(keys, key=lambda key: [(p is None, p or "") for p in key])
    sums = [sum(col, Fraction(0)) for col in zip(*map(exact, data["rows"]), strict=True)]
    assert sums == expected or (not data["rows"] and not lines)
    # and each row is the sum of exactly the events with its key
    for row in data["rows"]:
        mine = [e for e in lines
                if all((e["ts"][:10] if k == "day" else e[k]) == row[k] for k in by)]  # fmt: skip
        assert row["requests"] == len(mine)
        assert Fraction(row["chargeback_usd"]) == sum(Fraction(e["chargeback_usd"]) for e in mine)
    # amounts are printed plainly: no exponent, no trailing zeros
    for amount in [data["total"]["catalog_cost_usd"], *(r["chargeback_usd"] for r in data["rows"])]:
        assert "E" not in amount and not (("." in amount) and amount.endswith(("0", ".")))
