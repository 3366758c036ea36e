"""Shared tools of the hostile-input suite: run `catalogc` as a user would (a real process,
with a timeout), and assert the promises every probe must keep — no internal error, no
traceback, no hang, no secret in any output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

# Obviously fake secrets, in the shapes the scanners must know. Never real keys.
FAKE_SECRETS = (
    "sk-proj-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0123",
    "AKIAFAKEFAKEFAKEFAKE",
    "ghp_FAKEfakeFAKEfakeFAKEfakeFAKEfake0123",
    "xoxb-0000000000-FAKEFAKEFAKEFAKEFAKE",
)
EXIT_CODES = (0, 1, 2)  # 3 is "internal error": a bug


@dataclass
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def catalogc(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    stdin: str | None = None,
) -> Run:
    """`python -m catalog_compiler ARGS` in a fresh process; a hang fails the test."""
    full_env = {**os.environ, "CATALOGC_NO_CACHE": "1", "NO_COLOR": "1",
                "PYTHONPATH": str(ROOT), **(env or {})}  # fmt: skip
    full_env.pop("CATALOGC_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "catalog_compiler", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, timeout=timeout, input=stdin,
        text=True, errors="replace", check=False,
    )  # fmt: skip
    return Run(tuple(map(str, args)), proc.returncode, proc.stdout, proc.stderr)


def assert_sound(run: Run, secrets: Iterable[str] = FAKE_SECRETS) -> None:
    """The promises of every probe: a planned exit code, no traceback, no secret echoed."""
    assert run.returncode in EXIT_CODES, f"exit {run.returncode}: {run.output[-2000:]}"
    assert "Traceback" not in run.output, run.output[-2000:]
    assert "internal error" not in run.output, run.output[-2000:]
    for secret in secrets:
        assert secret not in run.output, f"secret echoed by {run.args}"
