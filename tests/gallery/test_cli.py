"""`catalogc docs` and `catalogc snippets` from the command line: outputs and exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
from click.testing import CliRunner, Result

from catalog_compiler.cli.docs_cmd import docs, snippets_cmd
from catalog_compiler.compiler import compile_catalog
from tests.conftest import EXAMPLE

STRAY = """\
kind: Config
slug: stray
workspaces: [platform]
config:
  provider: "@openai-research"
  override_params: {model: gpt-4.1}
"""


def run(command: click.Command, *args: str) -> Result:
    runner = CliRunner()
    env = {"CATALOGC_NO_CACHE": "1", "NO_COLOR": "1"}
    return runner.invoke(command, list(args), env=env, catch_exceptions=False)


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_docs_writes_the_site(tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = run(docs, str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 10 pages (5 providers, 4 workspaces)" in result.stdout
    written = files(out)
    assert "index.html" in written and "workspaces/support.html" in written
    assert not [p for p in out.rglob("*.tmp")]  # atomic writes leave no temporaries
    # again, and from the compiled bundle: the same bytes
    again = tmp_path / "again"
    bundle = tmp_path / "acme.bundle.json"
    compiled = compile_catalog(EXAMPLE)
    assert compiled.data is not None
    bundle.write_bytes(compiled.data)
    assert run(docs, str(bundle), "-o", str(again)).exit_code == 0
    assert files(again) == written


def test_docs_options_reach_the_snippets(tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = run(docs, str(EXAMPLE), "-o", str(out), "--gateway-url", "https://ai.acme.example/v1",
                 "--api-key-header", "x-acme-key", "--api-key-env", "ACME_GATEWAY_KEY")  # fmt: skip
    assert result.exit_code == 0, result.output
    html = (out / "workspaces" / "support.html").read_text()
    assert "https://ai.acme.example/v1/chat/completions" in html
    assert "x-acme-key: $ACME_GATEWAY_KEY" in html
    assert "portkey_ai" not in html  # Portkey's SDKs send their own header names


def test_docs_on_a_broken_catalog_prints_diagnostics_and_exits_1(tmp_path: Path) -> None:
    root = tmp_path / "acme"
    shutil.copytree(EXAMPLE, root)
    (root / "configs" / "stray.yaml").write_text(STRAY)
    out = tmp_path / "site"
    result = run(docs, str(root), "-o", str(out))
    assert result.exit_code == 1
    assert "error[E0502]" in result.stdout and "configs/stray.yaml:" in result.stdout
    assert not out.exists()


def test_docs_usage_and_io_errors_exit_2(tmp_path: Path) -> None:
    assert run(docs, str(tmp_path / "missing"), "-o", str(tmp_path / "s")).exit_code == 2
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run(docs, str(EXAMPLE), "-o", str(blocker))
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = run(docs, str(EXAMPLE), "-o", str(blocker / "site"))
    assert result.exit_code == 2 and "catalogc: cannot write" in result.stderr
    result = run(docs, str(EXAMPLE), "-o", str(tmp_path / "s"), "--gateway-url", "ftp://x")
    assert result.exit_code == 2 and "not a gateway URL" in result.output
    not_bundle = tmp_path / "x.json"
    not_bundle.write_text("{}")
    result = run(docs, str(not_bundle), "-o", str(tmp_path / "s"))
    assert result.exit_code == 2 and "cannot load bundle" in result.stderr


def blocks(text: str, comment: str = "#") -> list[str]:
    parts = text.split(f"{comment} ==== ")[1:]
    return [p.split("\n", 1)[1] for p in parts]


def test_snippets_print_every_form_for_a_workspace() -> None:
    result = run(snippets_cmd, "@azure-eu/gpt-4o", str(EXAMPLE), "--workspace", "support")
    assert result.exit_code == 0, result.output
    assert "# ==== 1. Model string · Python · portkey-ai ====" in result.stdout
    assert "# ==== 3. Config · Python · openai ====" in result.stdout
    code = blocks(result.stdout)
    assert len(code) == 6  # three forms, two SDKs
    for each in code:
        compile(each, "<snippet>", "exec")
        assert each.startswith("# @azure-eu/gpt-4o: ")
    assert 'config="eu-router"' in result.stdout and 'metadata={"region": "eu"}' in result.stdout


def test_snippets_without_a_workspace_leave_out_the_config_form() -> None:
    result = run(snippets_cmd, "@openai-prod/gpt-4o", str(EXAMPLE), "--lang", "curl")
    assert result.exit_code == 0, result.output
    assert len(blocks(result.stdout)) == 2
    assert "pass --workspace for the config form" in result.stderr
    assert "x-portkey-provider: @openai-prod" in result.stdout


def test_snippets_of_one_form_need_no_workspace() -> None:
    """`--form model` asks for nothing the config form needs: no note about --workspace."""
    result = run(snippets_cmd, "@openai-prod/gpt-4o", str(EXAMPLE), "--form", "model")
    assert result.exit_code == 0, result.output
    assert "--workspace" not in result.stderr
    assert len(blocks(result.stdout)) == 2  # the model form, in both Python SDKs


def test_snippets_narrow_by_form_and_sdk() -> None:
    result = run(snippets_cmd, "@openai-prod/gpt-4o", str(EXAMPLE), "--lang", "js",
                 "--form", "provider", "--sdk", "openai")  # fmt: skip
    assert result.exit_code == 0, result.output
    (only,) = blocks(result.stdout, "//")
    assert 'import OpenAI from "openai";' in only and '"x-portkey-provider": "@openai-prod"' in only


def test_snippets_refuse_what_the_catalog_refuses() -> None:
    refused = run(snippets_cmd, "@azure-eu/gpt-4o", str(EXAMPLE), "-w", "research")
    assert refused.exit_code == 1 and "is not provisioned to this workspace" in refused.stderr
    unknown = run(snippets_cmd, "@azure-eu/gpt-4", str(EXAMPLE))
    assert unknown.exit_code == 1 and "did you mean `gpt-4.1`" in unknown.stderr
    denied = run(snippets_cmd, "@openai-prod/gpt-4o-realtime-preview", str(EXAMPLE))
    assert denied.exit_code == 1, denied.output
    provider = run(snippets_cmd, "@opena-prod/gpt-4o", str(EXAMPLE))
    assert provider.exit_code == 1 and "did you mean `@openai-prod`" in provider.stderr
    workspace = run(snippets_cmd, "@openai-prod/gpt-4o", str(EXAMPLE), "-w", "suport")
    assert workspace.exit_code == 1 and "unknown workspace" in workspace.stderr
    none = run(snippets_cmd, "@openai-prod/gpt-4o-mini", str(EXAMPLE), "-w", "support",
               "--form", "config")  # fmt: skip
    assert none.exit_code == 1 and "no routing config" in none.stderr


def test_snippets_usage_errors_exit_2() -> None:
    assert run(snippets_cmd, "openai-prod/gpt-4o", str(EXAMPLE)).exit_code == 2
    assert run(snippets_cmd, "@openai-prod/gpt-4o", str(EXAMPLE), "--form", "config").exit_code == 2
    assert run(snippets_cmd, "@openai-prod/gpt-4o", str(EXAMPLE), "--lang", "ruby").exit_code == 2
