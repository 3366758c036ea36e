"""`catalogc diff`, `catalogc init`, and the CI integration files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from catalog_compiler.compiler import compile_catalog
from runtime.bundle.canonical import seal
from tests.cli.test_report_cmd import code_span
from tests.conftest import EXAMPLE, ROOT


def edited(tmp_path: Path, name: str, edits: list[tuple[str, str, str]]) -> Path:
    root = tmp_path / name
    shutil.copytree(EXAMPLE, root)
    for rel, old, new in edits:
        path = root / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new))
    return root


def diff_json(run_cli: Callable[..., Any], *args: str) -> dict[str, Any]:
    result = run_cli("diff", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_no_semantic_change_for_reordered_keys(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    root = edited(tmp_path, "same", [(
        "providers/gpu.yaml",
        "kind: Provider\nslug: llama-local\nintegration: gpu-cluster\n",
        "integration: gpu-cluster\nslug: llama-local\nkind: Provider\n",
    )])  # fmt: skip
    data = diff_json(run_cli, str(EXAMPLE), str(root))
    assert data["changed"] is False and data["old"] != data["new"]  # only provenance moved
    assert "no semantic change" in run_cli("diff", str(EXAMPLE), str(root)).output


def test_a_removed_provider_slug_is_breaking(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    root = edited(tmp_path, "gone", [
        ("providers/openai.yaml", "slug: openai-research", "slug: openai-lab"),
        ("workspaces/teams.yaml", '["@openai-research", "@anthropic-prod", "@llama-local"]',
         '["@openai-lab", "@anthropic-prod", "@llama-local"]'),
        ("workspaces/teams.yaml", '["@openai-research", "@azure-eu", "@llama-local"]',
         '["@openai-lab", "@azure-eu", "@llama-local"]'),
        ("configs/research-lb.json.yaml", '"@openai-research"', '"@openai-lab"'),
    ])  # fmt: skip
    data = diff_json(run_cli, str(EXAMPLE), str(root))
    (breaking,) = data["breaking"]
    assert breaking["kind"] == "provider" and breaking["subject"] == "@openai-research"
    assert breaking["new"] == "@openai-lab" and "renamed" in breaking["note"]
    strict = run_cli("diff", str(EXAMPLE), str(root), "--fail-on-breaking")
    assert strict.exit_code == 1 and "BREAKING (1)" in strict.output


def test_access_limits_prices_and_configs(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    root = edited(tmp_path, "changed", [
        ("workspaces/teams.yaml", '  deny: ["o4-mini"]', '  deny: ["o4-mini", "gpt-5*"]'),
        ("workspaces/teams.yaml", "  - {limit: 300, unit: requests, per: minute}",
         "  - {limit: 450, unit: requests, per: minute}"),
        ("providers/anthropic.yaml", 'input: "2.70"', 'input: "2.60"'),
        ("configs/support-bot.yaml", "max_tokens: 1024", "max_tokens: 2048"),
    ])  # fmt: skip
    data = diff_json(run_cli, str(EXAMPLE), str(root))
    assert not data["breaking"]
    lost = data["access"]["lost"]["data-science"]
    assert "@openai-research/gpt-5" in lost and all("gpt-5" in m for m in lost)
    changes = {(c["kind"], c["subject"]): c for c in data["changes"]}
    limit = changes[("limit", "workspace `support` rate requests/minute")]
    assert (limit["old"], limit["new"]) == ("300 requests a minute", "450 requests a minute")
    price = changes[("price", "@anthropic-prod/claude-sonnet-4-5-20250929")]
    assert (price["old"], price["new"]) == ("input 2.7", "input 2.6")
    assert price["notable"] is False and not data["notable"]  # 4% is routine
    assert ("config", "support-bot") in changes
    markdown = run_cli("diff", str(EXAMPLE), str(root), "--format", "markdown").output
    assert "#### Access" in markdown and "| `data-science` |" in markdown


def test_price_changes_of_2x_or_more_are_notable(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    root = edited(tmp_path, "prices", [
        ("providers/anthropic.yaml", 'input: "2.70"', 'input: "6.00"'),  # 2.2x
        ("integrations/local-vllm.yaml", 'pricing: {input: "0.20", output: "0.20"}',
         'pricing: {input: "200", output: "0.30", unusual_price: true}'),  # 1,000x; 1.5x
        ("workspaces/teams.yaml", '  - model: "@llama-local/*"\n    free: true',
         '  - model: "@llama-local/*"\n    input: "0.10"\n    output: "0.10"'),  # no longer free
    ])  # fmt: skip
    data = diff_json(run_cli, str(EXAMPLE), str(root))
    notable = {c["subject"]: c for c in data["notable"]}
    assert set(notable) == {
        "@anthropic-prod/claude-sonnet-4-5-20250929",
        "@llama-local/llama-3.3-70b-instruct",
        "workspace `research` override `@llama-local/*`",
    }
    assert notable["@anthropic-prod/claude-sonnet-4-5-20250929"]["note"].startswith(
        "input 2.2x higher"
    )
    llama = notable["@llama-local/llama-3.3-70b-instruct"]
    assert (llama["old"], llama["new"]) == ("input 0.2, output 0.2", "input 200, output 0.3")
    assert llama["note"].startswith("input 1,000x higher:")  # output's 1.5x is not named
    assert (
        "input no longer free" in notable["workspace `research` override `@llama-local/*`"]["note"]
    )
    text = run_cli("diff", str(EXAMPLE), str(root)).output
    assert "NOTABLE (3):" in text and "  * price @llama-local/llama-3.3-70b-instruct:" in text
    markdown = run_cli("diff", str(EXAMPLE), str(root), "--format", "markdown").output
    assert "#### Notable (3)" in markdown and "input 1,000x higher" in markdown


def test_credential_hosts_are_reported(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    """base_url changes of integrations and providers (a new host is notable; a provider
    that follows its integration is not repeated) and allowed_hosts, absent in old bundles."""
    root = edited(tmp_path, "hosts", [
        ("integrations/local-vllm.yaml", "base_url: https://llm.internal.acme.example/v1",
         "base_url: https://llm.attacker.example/v1"),
        ("providers/azure.yaml", "description: EU data residency.",
         "description: EU data residency.\nbase_url: https://acme-weu.openai.azure.com/v2"),
    ])  # fmt: skip
    data = diff_json(run_cli, str(EXAMPLE), str(root))
    endpoints = {c["subject"]: c for c in data["changes"] if c["kind"] == "endpoint"}
    assert set(endpoints) == {"integration `gpu-cluster` base_url", "provider @azure-eu base_url"}
    moved = endpoints["integration `gpu-cluster` base_url"]
    assert moved["notable"] and moved["new"] == "https://llm.attacker.example/v1"
    assert "llm.attacker.example" in moved["note"]
    assert not endpoints["provider @azure-eu base_url"]["notable"]  # same host, other path
    body = compile_catalog(EXAMPLE).body
    assert body is not None
    body["providers"]["openai-prod"].pop("allowed_hosts", None)  # an old bundle: no such key
    (tmp_path / "old.json").write_bytes(seal(body))
    body["providers"]["openai-prod"]["allowed_hosts"] = ["*.proxy.example", "api.example.com"]
    (tmp_path / "new.json").write_bytes(seal(body))
    data = diff_json(run_cli, str(tmp_path / "old.json"), str(tmp_path / "new.json"))
    (change,) = data["notable"]
    assert change["subject"] == "provider @openai-prod allowed_hosts"
    assert change["new"] == "*.proxy.example, api.example.com" and change["old"] is None
    assert "configs may send its credentials there" in change["note"]
    back = diff_json(run_cli, str(tmp_path / "new.json"), str(tmp_path / "old.json"))
    assert not back["notable"] and back["changes"][0]["note"].startswith("removed")


def test_removing_a_model_a_config_used_is_breaking(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    old = edited(tmp_path, "old", [])
    new = edited(tmp_path, "new", [
        ("integrations/local-vllm.yaml", "    - name: qwen3-coder-30b\n      context_window: 262144\n"
         "      max_output_tokens: 16384\n      pricing: {input: \"0.10\", output: \"0.10\"}\n", ""),
    ])  # fmt: skip
    (old / "configs" / "coder.yaml").write_text(
        "kind: Config\nslug: coder\nworkspaces: [research]\n"
        'config: {provider: "@llama-local", override_params: {model: qwen3-coder-30b}}\n'
    )
    (new / "configs" / "coder.yaml").write_text(
        'kind: Config\nslug: coder\nworkspaces: [research]\nconfig: {provider: "@llama-local"}\n'
    )
    data = diff_json(run_cli, str(old), str(new))
    assert any(c["kind"] == "model" and c["breaking"] for c in data["breaking"])


def test_diff_of_bundles_and_git_revisions(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo / "catalog")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    teams = repo / "catalog" / "workspaces" / "teams.yaml"
    teams.write_text(teams.read_text().replace("slug: platform", "slug: platform-eng"))
    subprocess.run([*git, "commit", "-qam", "rename"], check=True)
    data = diff_json(run_cli, str(repo / "catalog"), "--git", "HEAD~1..HEAD")
    assert {c["subject"] for c in data["changes"] if c["kind"] == "workspace"} == {
        "platform",
        "platform-eng",
    }
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run_cli("compile", str(EXAMPLE), "-o", str(a))
    run_cli("compile", str(repo / "catalog"), "-o", str(b))
    assert diff_json(run_cli, str(a), str(b))["changed"] is True
    bad = run_cli("diff", str(repo / "catalog"), "--git", "nope..HEAD")
    assert bad.exit_code == 2 and "cannot read revision" in bad.output
    # A revision git reads as an option: `--output=FILE` made git archive truncate FILE.
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for spec in (f"--output={victim}..HEAD", f"HEAD..--output={victim}"):
        bad = run_cli("diff", str(repo / "catalog"), "--git", spec)
        assert victim.read_text() == "keep me"
        assert bad.exit_code == 2 and "does not start with `-`" in bad.output


DIFF_CATALOG = """\
kind: Integration
slug: gpu
service: openai-compatible
base_url: https://llm.example.com/v1
credentials: {api_key: {env: GPU_TOKEN}}
models:
  custom:
    - {name: "a|b", pricing: {input: "1", output: "1"}}
---
kind: Provider
slug: lab
integration: gpu
---
kind: Workspace
slug: team
"""
SNEAKY = "x`<img/src=https://evil.example/p.png>[Approve](https://evil.example)`y"


def test_diff_markdown_keeps_names_in_their_cells(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    """A PR comment: a model name closed its code span (an image and a link rendered), and a
    name holding `|` split its table row."""
    old, new = tmp_path / "old", tmp_path / "new"
    for root in (old, new):
        root.mkdir()
        (root / "catalog.yaml").write_text("kind: Organization\nversion: 1\nname: T\n")
    (old / "t.yaml").write_text(DIFF_CATALOG)
    sneaky = f'    - {{name: "{SNEAKY}", pricing: {{input: "1", output: "1"}}}}\n'
    text = DIFF_CATALOG.replace('input: "1"', 'input: "1.5"').replace("---", sneaky + "---", 1)
    (new / "t.yaml").write_text(text)
    result = run_cli("diff", str(old), str(new), "--format", "markdown")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| ")]
    cells = {row: re.split(r"(?<!\\)\|", row)[1:-1] for row in rows}
    assert all(len(c) == 3 for c in cells.values()), rows  # no name adds a column
    gained = next(c for c in cells.values() if c[0].strip() == "`team`")
    assert code_span(gained[1].strip()) == f"@lab/{SNEAKY}"
    price = next(c for c in cells.values() if "input 1.5" in c[2])
    assert price[0].strip() == "@lab/a\\|b"


def test_init_scaffolds_a_catalog_that_compiles(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    root = tmp_path / "new"
    result = run_cli("init", str(root), "--name", "Initech")
    assert result.exit_code == 0, result.output
    assert run_cli("validate", str(root), "--strict").exit_code == 0
    assert run_cli("compile", str(root), "-o", str(tmp_path / "b.json")).exit_code == 0
    text = (root / "providers" / "openai.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../.catalogc/catalog.schema.json")
    assert json.loads((root / ".catalogc" / "catalog.schema.json").read_text())["$id"]
    again = run_cli("init", str(root))
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


@pytest.mark.parametrize(
    "name", ["R&D: Platform", "Acme #1", "@corp", "[Acme]", "- x", "null", "'quoted'",
             '"dq"', "Société Générale", "x\nbudgets: []", "a\u2028b\x85c\u202ed"],
)  # fmt: skip
def test_init_keeps_any_organization_name(
    tmp_path: Path, run_cli: Callable[..., Any], name: str
) -> None:
    """`--name` went into catalog.yaml raw: a colon, `@`, `[` or `null` made a catalog that
    did not validate, `#` cut the name, a newline wrote keys of its own."""
    root = tmp_path / "new"
    assert run_cli("init", str(root), "--name", name).exit_code == 0
    assert run_cli("validate", str(root), "--strict").exit_code == 0
    assert compile_catalog(str(root)).index.organization["name"] == name


def test_pre_commit_hooks_check_the_whole_catalog() -> None:
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"catalogc-validate", "catalogc-validate-fast"}
    for hook in hooks:
        assert hook["pass_filenames"] is False
        assert hook["entry"].startswith("catalogc validate")


@pytest.mark.parametrize("path", ["action.yml", "docs/examples/github-workflow.yml"])
def test_ci_files_parse_and_use_real_flags(path: str, run_cli: Callable[..., Any]) -> None:
    text = (ROOT / path).read_text()
    YAML(typ="safe").load(text)
    for flag in (
        "--format github",
        "--format sarif",
        "--format markdown",
        "--fail-on-breaking",
        "--strict",
    ):
        if flag in text:
            command = "diff" if flag in ("--format markdown", "--fail-on-breaking") else "validate"
            assert flag.split()[0] in run_cli(command, "--help").output


def test_diff_never_hides_a_change_of_the_bundle(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    """A gateway key added to a workspace, or a model's headers changed, was "no semantic
    change" (`changed: false`) although the bundles differ."""
    new = tmp_path / "new"
    shutil.copytree(EXAMPLE, new)
    teams = new / "workspaces" / "teams.yaml"
    key = "3f0a9c1e6b7d2e4f5a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f"
    teams.write_text(teams.read_text().replace(
        f"    sha256: {key}\n", f"    sha256: {key}\n  - name: intruder\n    sha256: {'a' * 64}\n"
    ))  # fmt: skip
    data = diff_json(run_cli, str(EXAMPLE), str(new))
    assert data["changed"] is True
    assert [c["subject"] for c in data["notable"]] == ["`support` api key `intruder`"]
    gpu = new / "integrations" / "local-vllm.yaml"
    shutil.copy(EXAMPLE / "workspaces" / "teams.yaml", teams)
    gpu.write_text(gpu.read_text().replace(
        "      max_output_tokens: 16384\n",
        "      max_output_tokens: 16384\n      headers: {x-team: research}\n",
    ))  # fmt: skip
    data = diff_json(run_cli, str(EXAMPLE), str(new))
    assert data["changed"] is True and data["changes"], data
    text = run_cli("diff", str(EXAMPLE), str(new)).output
    assert "no semantic change" not in text and "headers" in text


def test_explain_and_diff_never_show_a_resealed_bundles_secrets(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    """The compiler refuses literal secrets, but a bundle is only sealed: one re-sealed with
    a password in a base URL and literal credential headers loaded, and explain and diff
    printed them. A password in a URL and the credential headers every client knows are
    now refused at load; a header the compiler calls a credential by its name only
    (`x-service-token`) still loads, and is masked."""
    good = tmp_path / "good.json"
    assert run_cli("compile", str(EXAMPLE), "-o", str(good)).exit_code == 0

    def resealed(name: str, change: Callable[[dict[str, Any]], None]) -> Path:
        body = json.loads(good.read_text())
        body.pop("digest")
        change(body)
        path = tmp_path / name
        path.write_bytes(seal(body))
        return path

    url = "https://admin:FAKEPASSWORD99@llm.internal.acme.example/v1"
    with_url = resealed("url.json", lambda b: b["integrations"]["gpu-cluster"].update(base_url=url))

    def header(body: dict[str, Any]) -> None:
        model = body["providers"]["llama-local"]["models"]["qwen3-coder-30b"]
        model["headers"] = {"x-service-token": "FAKEHEADERKEY1234567890", "x-team": "research"}

    with_header = resealed("header.json", header)
    runs = [
        run_cli("explain", str(with_url), "-w", "research"),
        run_cli("diff", str(good), str(with_url)),
    ]
    for refused in runs:
        assert refused.exit_code == 2 and "base_url" in refused.output, refused.output
    explained = run_cli("explain", str(with_header), "-w", "research", "-m",
                        "@llama-local/qwen3-coder-30b")  # fmt: skip
    assert explained.exit_code == 0 and "x-team: research" in explained.output
    for out in (*(r.output for r in runs), explained.output):
        assert "FAKEPASSWORD99" not in out and "FAKEHEADERKEY" not in out, out
