"""`catalogc import` warns when the catalog it wrote can reach no model (issue 9, item 10):
it validates, so nothing else would say that it routes nothing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from click.testing import CliRunner

from catalog_compiler.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["import", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_an_import_that_converts_nothing_warns(tmp_path: Path) -> None:
    source = tmp_path / "prices.json"
    source.write_text(json.dumps({"some-image-model": {"litellm_provider": "nowhere-ai",
                                                        "mode": "image_generation"}}))  # fmt: skip
    code, _, err = run("litellm-prices", str(source), "-o", str(tmp_path / "out"))
    assert code == 0
    assert "warning: the imported catalog can reach no model: it has no provider" in err
    report = (tmp_path / "out" / "IMPORT-REPORT.md").read_text()
    assert "can reach no model" in report


def test_teams_whose_models_were_not_converted_warn(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent("""\
        model_list:
          - model_name: gpt-4o
            litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}
        litellm_settings:
          default_team_settings:
            - {team_id: research, models: [claude-opus]}
            - {team_id: support, models: [claude-haiku]}
        """)
    )
    code, _, err = run("litellm-config", str(config), "-o", str(tmp_path / "out"))
    assert code == 0
    assert "can reach no model: none of its workspaces (`research`, `support`)" in err


def test_a_usable_import_does_not_warn(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent("""\
        model_list:
          - model_name: gpt-4o
            litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}
        litellm_settings:
          default_team_settings:
            - {team_id: research, models: [gpt-4o]}
        """)
    )
    code, _, err = run("litellm-config", str(config), "-o", str(tmp_path / "out"))
    assert code == 0 and "warning" not in err
