"""`catalogc explain` and `catalogc diff` for model aliases."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CATALOG = {
    "catalog.yaml": """\
        kind: Organization
        version: 1
        name: Acme
        aliases:
          fast: "@openai-prod/gpt-4o-mini"
          smart: {config: two-step}
        """,
    "providers.yaml": """\
        kind: Integration
        slug: openai-main
        service: openai
        credentials: {api_key: {env: OPENAI_API_KEY}}
        ---
        kind: Provider
        slug: openai-prod
        integration: openai-main
        """,
    "workspaces.yaml": """\
        kind: Workspace
        slug: support
        models: {deny: ["gpt-4o-mini"]}
        ---
        kind: Workspace
        slug: research
        aliases:
          fast: "@openai-prod/gpt-4.1"
        """,
    "configs.yaml": """\
        kind: Config
        slug: two-step
        workspaces: [research]
        config:
          strategy: {mode: fallback}
          targets:
            - {provider: "@openai-prod", override_params: {model: gpt-4o}}
            - {provider: "@openai-prod", override_params: {model: gpt-4.1}}
        """,
}


def catalog(root: Path, edits: Sequence[tuple[str, str, str]] = ()) -> Path:
    for rel, text in CATALOG.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for rel, old, new in edits:
        text = (root / rel).read_text()
        assert old in text, (rel, old)
        (root / rel).write_text(text.replace(old, new))
    return root


def explain(run_cli: Callable[..., Any], root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("explain", str(root), *args, "--format", "json")
    return result.exit_code, json.loads(result.output)


def test_explain_a_workspace_alias(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    root = catalog(tmp_path / "c")
    code, data = explain(run_cli, root, "-w", "research", "-m", "fast")
    assert code == 0 and data["allowed"] is True
    assert data["target"] == "@openai-prod/gpt-4.1"  # the target decides everything
    assert data["alias"]["from"] == "Workspace research"
    assert data["alias"]["origin"] == "workspaces.yaml:8:3"
    text = run_cli("explain", str(root), "-w", "research", "-m", "fast").output
    assert "alias `fast` -> `@openai-prod/gpt-4.1` (from Workspace research, " \
        "workspaces.yaml:8:3)" in text  # fmt: skip
    assert "price input" in text


def test_explain_an_organization_alias_refused_as_its_target(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    root = catalog(tmp_path / "c")
    code, data = explain(run_cli, root, "-w", "support", "-m", "fast")
    _, direct = explain(run_cli, root, "-w", "support", "-m", "@openai-prod/gpt-4o-mini")
    assert code == 1 and data["allowed"] is False
    assert data["alias"]["from"] == "Organization"
    assert {k: v for k, v in data.items() if k != "alias"} == direct
    code, data = explain(run_cli, root, "-w", "support", "-m", "smart")
    assert code == 1 and data["reason"] == "config `two-step` is not offered to workspace `support`"


def test_explain_lists_aliases_and_suggests_one(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    root = catalog(tmp_path / "c")
    _, menu = explain(run_cli, root, "-w", "support")
    assert [(a["name"], a["usable"]) for a in menu["aliases"]] == [
        ("fast", False),
        ("smart", False),
    ]
    _, menu = explain(run_cli, root, "-w", "research")
    assert [(a["name"], a["usable"]) for a in menu["aliases"]] == [("fast", True), ("smart", True)]
    result = run_cli("explain", str(root), "-w", "research", "-m", "fsat")
    assert result.exit_code == 2 and "did you mean `fast`?" in result.output


def test_diff_reports_aliases_added_removed_and_retargeted(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    old = catalog(tmp_path / "old")
    new = catalog(tmp_path / "new", [
        ("catalog.yaml", "  smart: {config: two-step}\n", "  mini: \"@openai-prod/gpt-4o-mini\"\n"),
        ("workspaces.yaml", "@openai-prod/gpt-4.1", "@openai-prod/gpt-4o"),
    ])  # fmt: skip
    result = run_cli("diff", str(old), str(new), "--format", "json")
    changes = {c["subject"]: c for c in json.loads(result.output)["changes"]}
    assert set(changes) == {"fast", "mini", "smart"}
    assert changes["fast"]["notable"] and not changes["fast"]["breaking"]
    assert (changes["fast"]["old"], changes["fast"]["new"]) == (
        "@openai-prod/gpt-4.1", "@openai-prod/gpt-4o",
    )  # fmt: skip
    assert "workspace `research`" in changes["fast"]["note"]  # only research's changed
    assert changes["smart"]["breaking"] and changes["smart"]["old"] == "{config: two-step}"
    assert "every workspace" in changes["mini"]["note"] and not changes["mini"]["notable"]
    strict = run_cli("diff", str(old), str(new), "--fail-on-breaking")
    assert strict.exit_code == 1 and "! alias smart: removed" in strict.output
    assert "NOTABLE (1)" in strict.output and "aliases:\n  mini: added" in strict.output


def test_diff_of_the_same_aliases_is_empty(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    result = run_cli("diff", str(catalog(tmp_path / "a")), str(catalog(tmp_path / "b")))
    assert "no semantic change" in result.output
