"""The composite GitHub Action (action.yml) run the way a runner runs it: expressions
substituted as text, each `run:` in `bash --noprofile --norc -eo pipefail`. Hostile input and
context values (a branch named `$(touch pwned)`) must reach the tools as plain arguments and
never execute. The tools are stand-ins that record their arguments: no network, no install."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT

EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
HOSTILE = (
    "$(touch pwned-dollar)",
    "`touch pwned-backtick`",
    '"; touch pwned-quote; echo "',
    "x'; touch pwned-single #",
    "a\ntouch pwned-newline",
    "--help",
    "${IFS}$(touch${IFS}pwned-ifs)",
)
RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["ACTION_TEST_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
"""


def action() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load((ROOT / "action.yml").read_text())
    return loaded


def steps() -> list[dict[str, Any]]:
    return list(action()["runs"]["steps"])


def substitute(text: str, context: dict[str, str]) -> str:
    """What the runner does before bash sees the script: plain textual substitution."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression not in context:
            raise AssertionError(f"the test does not know `${{{{ {expression} }}}}`: add it")
        return context[expression]

    return EXPRESSION.sub(value, text)


def run_steps(tmp_path: Path, context: dict[str, str]) -> list[list[str]]:
    """Every step's script, with recording stand-ins for python3, catalogc and git."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("python3", "catalogc", "git"):
        shim = bin_dir / tool
        shim.write_text(RECORDER.replace("/usr/bin/env python3", shutil.which("python3") or ""))
        shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "calls.jsonl"
    for step in steps():
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "ACTION_TEST_LOG": str(log),
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        }
        env.update({k: substitute(str(v), context) for k, v in (step.get("env") or {}).items()})
        script = tmp_path / "step.sh"
        script.write_text(substitute(step["run"], context))
        subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=work, env=env, check=True, timeout=30, capture_output=True,
        )  # fmt: skip
    return [json.loads(line) for line in log.read_text().splitlines()]


def context_with(value: str, version: str = "") -> dict[str, str]:
    return {
        "inputs.catalog": value,
        "inputs.strict": value,
        "inputs.fail-on-breaking": value,
        "inputs.version": version,
        "github.action_path": "/opt/action checkout",
        "github.base_ref": value,
        "steps.sarif.outputs.path": "catalogc.sarif",
    }


def test_no_expression_is_pasted_into_a_script() -> None:
    for step in steps():
        assert not EXPRESSION.search(step["run"]), step["name"]


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_stay_text(tmp_path: Path, hostile: str) -> None:
    calls = run_steps(tmp_path, context_with(hostile, version=hostile))
    created = [p.name for p in tmp_path.rglob("pwned*")] + [
        p for p in os.listdir("/tmp") if p.startswith("pwned")
    ]
    assert created == []
    validates = [c for c in calls if c[:2] == ["catalogc", "validate"]]
    assert len(validates) == 2
    for call in validates:
        assert call[-2:] == ["--", hostile]  # the catalog: one argument, after `--`
    assert ["python3", "-m", "pip", "install", "--quiet", "--", hostile] in calls
    fetch = next(c for c in calls if c[:2] == ["git", "fetch"])
    assert fetch[-1] == f"refs/heads/{hostile}:refs/remotes/origin/{hostile}"
    diff = next(c for c in calls if c[:2] == ["catalogc", "diff"])
    assert diff[diff.index("--git") + 1] == f"origin/{hostile}.."
    assert diff[-2:] == ["--", hostile]
    assert "--strict" not in validates[0] and "--fail-on-breaking" not in diff


def test_default_install_is_the_actions_own_checkout(tmp_path: Path) -> None:
    context = {
        **context_with("catalog"),
        "inputs.strict": "true",
        "inputs.fail-on-breaking": "true",
    }
    calls = run_steps(tmp_path, context)
    assert ["python3", "-m", "pip", "install", "--quiet", "--", "/opt/action checkout"] in calls
    assert ["catalogc", "validate", "--format", "github", "--strict", "--", "catalog"] in calls
    diff = next(c for c in calls if c[:2] == ["catalogc", "diff"])
    assert "--fail-on-breaking" in diff


def test_fetch_works_with_real_git_for_an_odd_branch(tmp_path: Path) -> None:
    """The fetch line, run by real git, against a branch whose name is valid but hostile."""
    branch = "$(touch${IFS}pwned)"
    origin, clone = tmp_path / "origin", tmp_path / "clone"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c",
           "init.defaultBranch=main"]  # fmt: skip
    subprocess.run([*git, "init", "-q", str(origin)], check=True)
    (origin / "f").write_text("x")
    subprocess.run([*git, "-C", str(origin), "add", "f"], check=True)
    subprocess.run([*git, "-C", str(origin), "commit", "-qm", "c"], check=True)
    subprocess.run([*git, "-C", str(origin), "branch", branch], check=True)
    subprocess.run([*git, "clone", "-q", str(origin), str(clone)], check=True)
    line = next(
        ln for s in steps() for ln in s["run"].splitlines() if ln.strip().startswith("git fetch")
    )
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", line.replace("--depth=1", "")],
        cwd=clone, env={**os.environ, "CATALOGC_BASE_REF": branch}, check=True, timeout=30,
    )  # fmt: skip
    shown = subprocess.run(["git", "-C", str(clone), "rev-parse", "--verify", f"origin/{branch}"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert shown.returncode == 0
    assert not list(tmp_path.rglob("pwned")) and not (clone / "pwned").exists()
