"""Run snippets as written: Python ones with this interpreter, JavaScript ones with `node`
against the real `openai` and `portkey-ai` npm packages, curl ones with bash and curl.

The npm packages are installed once (`npm install --no-audit --no-fund openai portkey-ai`)
into a cache directory ($CATALOG_NODE_SDKS, else ~/.cache/catalogc-tests/node-sdks) and
reused by later runs. Without node, npm or the registry, the tests that need them skip
locally and fail in CI (CATALOGC_CI=1).

Many snippets run in one interpreter (runpy) and one node process (a dynamic import each):
the `portkey_ai` import alone takes seconds, and each snippet is still a whole program, run
from its own file, its output captured apart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

NPM_PACKAGES = ("openai", "portkey-ai")
RUN_TIMEOUT = 120


@dataclass(frozen=True)
class Ran:
    """One snippet's outcome: did it finish, what it printed, the error if not."""

    ok: bool
    out: str
    error: str = ""


def _unavailable(why: str) -> None:
    if os.environ.get("CATALOGC_CI"):
        pytest.fail(f"{why} (required in CI)")
    pytest.skip(why)


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed")
    assert node is not None
    return node


def node_sdks_dir() -> Path:
    """A directory holding node_modules/{openai,portkey-ai}, installed on first use."""
    env = os.environ.get("CATALOG_NODE_SDKS")
    base = Path(env) if env else Path.home() / ".cache" / "catalogc-tests" / "node-sdks"
    if all((base / "node_modules" / p / "package.json").is_file() for p in NPM_PACKAGES):
        return base
    node_binary()
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is not installed")
    assert npm is not None
    base.parent.mkdir(parents=True, exist_ok=True)
    # Install beside, then rename into place: a concurrent or interrupted run never sees a
    # half-installed directory.
    staging = Path(tempfile.mkdtemp(prefix="node-sdks-", dir=base.parent))
    (staging / "package.json").write_text('{"private": true, "type": "module"}\n')
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel", "error", *NPM_PACKAGES],
        cwd=staging, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        _unavailable(f"npm install {' '.join(NPM_PACKAGES)} failed: {done.stderr[-2000:]}")
    try:
        staging.rename(base)
    except OSError:  # another run got there first
        shutil.rmtree(staging, ignore_errors=True)
    return base


@pytest.fixture(scope="session")
def node_sdks() -> Path:
    return node_sdks_dir()


_PY_RUNNER = r"""
import contextlib, io, json, runpy, sys, traceback
results = []
for path in json.load(sys.stdin):
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_path(path, run_name="__main__")
        results.append({"ok": True, "out": buf.getvalue()})
    except BaseException:
        results.append({"ok": False, "out": buf.getvalue(), "error": traceback.format_exc()})
sys.stdout.write(json.dumps(results))
"""

_JS_RUNNER = r"""
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";
const files = JSON.parse(readFileSync(0, "utf8"));
const results = [];
const log = console.log;
for (const file of files) {
  const out = [];
  console.log = (...args) => out.push(args.join(" "));
  try {
    await import(pathToFileURL(file).href);
    results.push({ ok: true, out: out.join("\n") });
  } catch (e) {
    results.push({ ok: false, out: out.join("\n"), error: String((e && e.stack) || e) });
  } finally {
    console.log = log;
  }
}
process.stdout.write(JSON.stringify(results));
"""


def _write(directory: Path, codes: Sequence[str], suffix: str) -> list[str]:
    paths = []
    for i, code in enumerate(codes):
        path = directory / f"snippet_{i:03d}{suffix}"
        path.write_text(code, encoding="utf-8")
        paths.append(str(path))
    return paths


def _collect(done: subprocess.CompletedProcess[str], count: int) -> list[Ran]:
    assert done.returncode == 0, done.stderr[-4000:]
    results = [Ran(r["ok"], r["out"], r.get("error", "")) for r in json.loads(done.stdout)]
    assert len(results) == count
    return results


def run_python(
    codes: Sequence[str], env: Mapping[str, str], workdir: Path, processes: int = 2
) -> list[Ran]:
    """Each code as a Python program (its own file, `__main__`), in `processes` interpreters
    running side by side (the SDK imports dominate: one per interpreter)."""
    paths = _write(workdir, codes, ".py")
    shares = [paths[i::processes] for i in range(processes)]
    command = [sys.executable, "-c", _PY_RUNNER]
    full_env = {**os.environ, **env}
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    procs = [subprocess.Popen(command, text=True, env=full_env, **pipes) for _ in shares]
    results: list[list[Ran]] = []
    for proc, share in zip(procs, shares, strict=True):
        out, err = proc.communicate(json.dumps(share), timeout=RUN_TIMEOUT)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        results.append(_collect(done, len(share)))
    merged: list[Ran] = [None] * len(codes)  # type: ignore[list-item]
    for i, share_results in enumerate(results):
        merged[i::processes] = share_results
    return merged


def run_node(codes: Sequence[str], env: Mapping[str, str], workdir: Path, sdks: Path) -> list[Ran]:
    """Each code as an ES module (its own .mjs file) in one node process; the files sit
    beside a link to the installed node_modules, which is where Node's ESM resolution
    looks (it ignores NODE_PATH)."""
    modules = workdir / "node_modules"
    if not modules.exists():
        modules.symlink_to(sdks / "node_modules", target_is_directory=True)
    paths = _write(workdir, codes, ".mjs")
    runner = workdir / "runner.mjs"
    runner.write_text(_JS_RUNNER, encoding="utf-8")
    done = subprocess.run(
        [node_binary(), str(runner)], input=json.dumps(paths), env={**os.environ, **env},
        capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False, cwd=workdir,
    )  # fmt: skip
    return _collect(done, len(codes))


def run_alone(code: str, lang: str, env: Mapping[str, str], workdir: Path,
              sdks: Path | None = None) -> Ran:  # fmt: skip
    """One snippet in its own process, exactly as a developer runs it: `python file.py`,
    `node file.mjs`, or the curl command in bash (silenced progress, errors shown)."""
    return run_each([code], lang, env, workdir, sdks)[0]


def run_each(codes: Sequence[str], lang: str, env: Mapping[str, str], workdir: Path,
             sdks: Path | None = None) -> list[Ran]:  # fmt: skip
    """Each snippet in its own process (see run_alone), all started at once."""
    procs = []
    for i, code in enumerate(codes):
        directory = workdir / f"alone_{lang}_{i}"
        directory.mkdir(parents=True, exist_ok=True)
        procs.append(subprocess.Popen(
            _command(code, lang, directory, sdks), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=directory, env={**os.environ, **env},
        ))  # fmt: skip
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        results.append(Ran(proc.returncode == 0, out, err[-4000:]))
    return results


def _command(code: str, lang: str, directory: Path, sdks: Path | None) -> list[str]:
    if lang == "python":
        return [sys.executable, _write(directory, [code], ".py")[0]]
    if lang == "js":
        assert sdks is not None
        link = directory / "node_modules"
        if not link.exists():
            link.symlink_to(sdks / "node_modules", target_is_directory=True)
        return [node_binary(), _write(directory, [code], ".mjs")[0]]
    bash = shutil.which("bash")
    if bash is None or shutil.which("curl") is None:
        pytest.skip("bash and curl are needed to run the curl snippets")
    assert bash is not None
    return [bash, "-c", code.rstrip() + " -sS"]
