"""`catalogc compile` and `catalogc explain` from the command line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.bundle.load import Bundle
from tests.conftest import EXAMPLE

UNREACHABLE = """\
kind: Config
slug: stray
workspaces: [platform]
config:
  provider: "@openai-research"
  override_params: {model: gpt-4.1}
"""


def broken_copy(tmp_path: Path) -> Path:
    root = tmp_path / "acme"
    shutil.copytree(EXAMPLE, root)
    (root / "configs" / "stray.yaml").write_text(UNREACHABLE)
    return root


def test_compile_writes_a_loadable_bundle_and_says_so(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    out = tmp_path / "acme.bundle.json"
    result = run_cli("compile", str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 0, result.output
    bundle = Bundle.load(out)
    assert f"-> {out}" in result.output and bundle.digest in result.output
    assert "5 providers, 4 workspaces, 3 configs" in result.output
    assert oct(out.stat().st_mode & 0o777) == oct(0o644 & ~_umask())


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_compile_leaves_the_previous_bundle_untouched(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    out = tmp_path / "acme.bundle.json"
    assert run_cli("compile", str(EXAMPLE), "-o", str(out)).exit_code == 0
    before = out.read_bytes()
    result = run_cli("compile", str(broken_copy(tmp_path)), "-o", str(out))
    assert result.exit_code == 1
    assert "E0502" in result.output and "workspace `platform`" in result.output
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_unwritable_output_is_an_io_error(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    # a missing directory used to be this error; it is created now (tests/hostile/test_outputs)
    (tmp_path / "file").write_text("a file, not a directory")
    result = run_cli("compile", str(EXAMPLE), "-o", str(tmp_path / "file" / "b.json"))
    assert result.exit_code == 2 and "error[E0008]: cannot write" in result.output


def test_validate_runs_every_check_unless_fast(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    root = broken_copy(tmp_path)
    full = run_cli("validate", str(root))
    assert full.exit_code == 1 and "error[E0502]" in full.output
    fast = run_cli("validate", str(root), "--fast")
    assert fast.exit_code == 0 and "E0502" not in fast.output


def test_explain_allowed_route_from_a_bundle(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    out = tmp_path / "b.json"
    run_cli("compile", str(EXAMPLE), "-o", str(out))
    result = run_cli(
        "explain", str(out), "--workspace", "support", "--model", "@openai-prod/gpt-4o"
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert "`@openai-prod/gpt-4o`: ALLOWED" in text
    assert "integration `openai-main` allows `gpt-4o`  (integrations/openai.yaml:18:11)" in text
    assert "1. organization" in text and "4. workspace/support" in text
    assert "effective: 2000 usd/monthly (workspace/support)" in text
    assert "price input        2.5 USD/1M" in text and "registry, as of" in text


def test_explain_refusal_names_the_rule_and_its_line(run_cli: Callable[..., Any]) -> None:
    result = run_cli(
        "explain", str(EXAMPLE), "-w", "data-science", "-m", "@openai-research/o4-mini"
    )
    assert result.exit_code == 1
    assert "REFUSED (403)" in result.output
    assert (
        "workspace `data-science` denies `o4-mini` (workspaces/teams.yaml:40:10)" in result.output
    )


def test_explain_price_origin_of_an_override(run_cli: Callable[..., Any]) -> None:
    data = json.loads(run_cli("explain", str(EXAMPLE), "-w", "support", "-m",
                              "@anthropic-prod/claude-sonnet-4-5-20250929", "--format", "json").output)  # fmt: skip
    assert data["allowed"] is True
    assert data["price"]["input"] == {
        "usd_per_1m": "2.7", "usd": None, "source": "provider",
        "origin": "providers/anthropic.yaml:10:12", "registry_as_of": None,
    }  # fmt: skip
    assert data["price"]["output"]["source"] == "registry"
    assert [c["counter"] for c in data["chain"]] == [
        "organization",
        "integration/anthropic-main",
        "provider/anthropic-prod",
        "workspace/support",
    ]


def test_explain_workspace_lists_every_model(run_cli: Callable[..., Any]) -> None:
    data = json.loads(run_cli("explain", str(EXAMPLE), "-w", "research", "--format", "json").output)
    targets = [r["target"] for r in data["routes"]]
    assert targets == sorted(targets)
    assert "@llama-local/llama-3.3-70b-instruct" in targets
    free = next(r for r in data["routes"] if r["target"] == "@llama-local/llama-3.3-70b-instruct")
    assert free["input"] == "0" and free["output"] == "0"  # the workspace's free override
    assert not any(t.startswith("@openai-prod/") for t in targets)  # not among its providers


def test_explain_unknowns_and_bad_input(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    result = run_cli("explain", str(EXAMPLE), "-w", "suport", "-m", "@openai-prod/gpt-4o")
    assert result.exit_code == 1 and "did you mean `support`" in result.output
    result = run_cli("explain", str(EXAMPLE), "-w", "support", "-m", "@openai-prod/gpt-4-omni")
    assert "has no model `gpt-4-omni`" in result.output
    assert run_cli("explain", str(EXAMPLE), "-w", "support", "-m", "gpt-4o").exit_code == 2
    tampered = tmp_path / "t.json"
    run_cli("compile", str(EXAMPLE), "-o", str(tampered))
    tampered.write_bytes(tampered.read_bytes().replace(b'"20000"', b'"90000"'))
    result = run_cli("explain", str(tampered), "-w", "support")
    assert result.exit_code == 2 and "digest does not match" in result.output
