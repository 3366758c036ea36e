"""`catalogc validate`: exit codes, the four output formats, colour and --strict."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from catalog_compiler.diagnostics.codes import CODES
from catalog_compiler.diagnostics.report.github import escape_data, escape_property
from tests.conftest import EXAMPLE

BROKEN = {
    "providers.yaml": """\
        kind: Provider
        slug: openai-prod
        integration: opnai-main
        budgets:
          - {limit: 10, unit: tokenz, period: monthly}
        """,
    "integrations.yaml": """\
        kind: Integration
        slug: openai-main
        service: openai
        credentials:
          api_key: {env: OPENAI_API_KEY}
        """,
}


def test_valid_example_exits_0(run_cli: Callable[..., Any]) -> None:
    result = run_cli("validate", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")


def test_errors_exit_1_and_every_error_is_reported(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = make_catalog(BROKEN)
    result = run_cli("validate", str(root), "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["format_version"] == "1.0" and report["valid"] is False
    got = [
        (
            Path(d["file"]).name,
            d["code"],
            d["range"]["start"]["line"],
            d["range"]["start"]["column"],
        )
        for d in report["diagnostics"]
    ]
    assert got == [
        ("providers.yaml", "E0301", 3, 14),  # checked although the document has other errors
        ("providers.yaml", "E0205", 5, 23),
    ]  # and no "unused integration" warning: that would only echo the typo
    diag = report["diagnostics"][1]
    assert diag["name"] == "invalid-value" and diag["help"] == "did you mean `tokens`?"
    assert report["diagnostics"][0]["help"] == "did you mean `openai-main`?"


def test_dangling_reference_with_suggestion(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    files = dict(BROKEN)
    files["providers.yaml"] = files["providers.yaml"].replace("tokenz", "usd")
    root = make_catalog(files)
    result = run_cli("validate", str(root))
    assert result.exit_code == 1
    assert "error[E0301]: unknown integration `opnai-main`" in result.output
    assert "help: did you mean `openai-main`?" in result.output
    assert "providers.yaml:3:14:" in result.output


def test_text_output_has_source_line_and_caret(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = make_catalog(BROKEN)
    output = run_cli("validate", str(root), "--color", "never").output
    lines = output[output.index("providers.yaml:5:") :].splitlines()
    assert lines[0] == (
        "providers.yaml:5:23: error[E0205]: invalid value `tokenz` for "
        "`budgets[0].unit`: expected `usd`, `tokens` or `requests`"
    )
    assert lines[2] == "5 |   - {limit: 10, unit: tokenz, period: monthly}"
    assert lines[3] == "  |                       ^^^^^^"
    assert lines[4] == "  = help: did you mean `tokens`?"


def test_color_auto_never_always_and_no_color(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = make_catalog(BROKEN)
    assert "\033[" not in run_cli("validate", str(root)).output  # not a TTY
    assert "\033[" in run_cli("validate", str(root), "--color", "always").output
    plain = run_cli("validate", str(root), "--color", "auto", env={"NO_COLOR": "1"}).output
    assert "\033[" not in plain


def test_strict_turns_warnings_into_failure(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = make_catalog({"i.yaml": BROKEN["integrations.yaml"]})  # W0300: no provider uses it
    relaxed = run_cli("validate", str(root))
    assert relaxed.exit_code == 0 and "warning[W0300]" in relaxed.output
    strict = run_cli("validate", str(root), "--strict", "--format", "json")
    assert strict.exit_code == 1 and json.loads(strict.output)["valid"] is False


def test_github_annotations_escape_properly(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = make_catalog(BROKEN)
    out = run_cli("validate", str(root), "--format", "github").output.splitlines()
    assert [line[: line.index(" ")] for line in out[:2]] == ["::error", "::error"]
    assert ",line=5,col=23,endLine=5,endColumn=29,title=E0205 invalid-value::" in out[1]
    assert out[1].endswith("%0Ahelp: did you mean `tokens`?")
    assert escape_data("50% a\r\nb") == "50%25 a%0D%0Ab"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"


def test_sarif_has_stable_rules_and_located_results(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = make_catalog(BROKEN)
    log = json.loads(run_cli("validate", str(root), "--format", "sarif").output)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(CODES)
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["E0301", "E0205"]
    assert [r["level"] for r in results] == ["error", "error"]
    for res in results:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
    region = results[1]["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"], region["endColumn"]) == (5, 23, 29)


def test_json_output_is_valid_when_clean(run_cli: Callable[..., Any]) -> None:
    report = json.loads(run_cli("validate", str(EXAMPLE), "--format", "json").output)
    assert report["valid"] is True and report["error_count"] == 0
    assert report["documents"] >= 18


def test_usage_error_exits_2(run_cli: Callable[..., Any]) -> None:
    assert run_cli("validate", str(EXAMPLE), "--format", "xml").exit_code == 2


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_secret_values_never_appear_in_any_format(
    fmt: str, make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    fake = "sk-proj-FAKEFAKEFAKEFAKEFAKEFAKEFAKE0000"
    root = make_catalog(
        {
            "i.yaml": f"""\
                kind: Integration
                slug: leaky
                service: openai
                credentials:
                  api_key: {fake}
                """,
        }
    )
    result = run_cli("validate", str(root), "--format", fmt)
    assert result.exit_code == 1
    assert "E0400" in result.output
    assert fake not in result.output and fake[8:] not in result.output
