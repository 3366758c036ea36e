"""`catalogc serve`: compile a catalog (or take a bundle) and hand it to the gateway."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from catalog_compiler.cli.serve_cmd import gateway_argv
from runtime.bundle import Bundle
from tests.conftest import ROOT

GATEWAY_EXAMPLE = ROOT / "examples" / "gateway"
BROKEN = {"catalog.yaml": "kind: Organization\nversion: 1\nname: X\nbudgets: 5\n"}
# The gateway extra is missing: Python refuses an import whose sys.modules entry is None.
WITHOUT_AIOHTTP = (
    "import sys; sys.modules['aiohttp'] = None; "
    "from catalog_compiler.cli import main; sys.argv = ['catalogc', *sys.argv[1:]]; main()"
)


def test_gateway_argv_forwards_every_option() -> None:
    argv = gateway_argv("/b/catalog.bundle.json", "0.0.0.0", 0, 4, "redis://r:6379/0", True)
    assert argv == [
        "/b/catalog.bundle.json", "--host", "0.0.0.0", "--port", "0", "--workers", "4",
        "--redis", "redis://r:6379/0", "--allow-missing-secrets",
    ]  # fmt: skip


def test_gateway_argv_defaults_and_an_absolute_bundle_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = gateway_argv("-odd.json", "127.0.0.1", 8787, 1, None, False)
    # relative to where catalogc ran, and never mistaken for an option
    assert argv == [str(tmp_path / "-odd.json"), "--host", "127.0.0.1", "--port", "8787",
                    "--workers", "1"]  # fmt: skip


def test_a_catalog_with_errors_is_not_served(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = make_catalog(BROKEN, org=None)
    result = run_cli("serve", str(root), "--port", "0")
    assert result.exit_code == 1
    assert "catalog.yaml:4:10: error[E0204]" in result.output
    assert "nothing served: fix the errors above" in result.output


def test_a_missing_catalog_is_an_io_error(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    result = run_cli("serve", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert "error[E0001]" in result.output


def test_several_workers_need_redis_before_anything_is_compiled(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = make_catalog(BROKEN, org=None)
    result = run_cli("serve", str(root), "--workers", "2")
    assert result.exit_code == 2
    assert "--workers 2 needs --redis URL" in result.output
    assert "E0204" not in result.output  # refused first: no compile was spent on it


def run_catalogc(code: str, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "CATALOGC_NO_CACHE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
        timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("bundle", [False, True], ids=["catalog", "bundle"])
def test_without_the_gateway_extra_serve_says_what_to_install(tmp_path: Path, bundle: bool) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    source = str(GATEWAY_EXAMPLE)
    if bundle:
        source = str(tmp_path / "g.bundle.json")
        done = run_catalogc(WITHOUT_AIOHTTP, "compile", str(GATEWAY_EXAMPLE), "-o", source,
                            tmp=tmp)  # fmt: skip
        assert done.returncode == 0, done.stderr
    done = run_catalogc(WITHOUT_AIOHTTP, "serve", source, tmp=tmp)
    assert done.returncode == 2, done.stderr
    assert "install catalog-compiler[gateway]" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp.iterdir()) == []  # no bundle was written for a server that cannot start


# -- with the gateway (runtime/gateway): a real server on 127.0.0.1 ------------------------


def read_events(proc: subprocess.Popen[str], until: str, timeout: float = 60) -> list[Any]:
    """The JSON lines the process logs on stderr, up to the first `until` event."""
    assert proc.stderr is not None
    events: list[Any] = []
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and sel.select(deadline - time.monotonic()):
            line = proc.stderr.readline()
            if not line:
                break
            if line.startswith("{"):
                events.append(json.loads(line))
                if events[-1].get("event") == until:
                    return events
    raise AssertionError(f"no `{until}` event; got {events}")


def test_serve_compiles_the_directory_and_the_gateway_serves_that_bundle(tmp_path: Path) -> None:
    pytest.importorskip("runtime.gateway.cli", reason="the gateway (runtime/gateway) is not here")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "CATALOGC_NO_CACHE": "1"}
    command = [sys.executable, "-m", "catalog_compiler", "serve", str(GATEWAY_EXAMPLE),
               "--port", "0"]  # fmt: skip
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        events = read_events(proc, "listening")
        compiled = next(e for e in events if e["event"] == "compiled")
        listening = events[-1]
        bundle = Bundle.load(Path(compiled["bundle"]))
        assert compiled["digest"] == bundle.digest == listening["digest"]
        assert Path(compiled["bundle"]).parent.parent == tmp
        url = f"http://127.0.0.1:{listening['port']}/readyz"
        with urllib.request.urlopen(url, timeout=10) as answer:
            ready = json.loads(answer.read())
        assert ready["status"] == "ready" and ready["digest"] == bundle.digest
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        assert proc.stderr is not None
        proc.stderr.close()
    assert list(tmp.iterdir()) == []  # the compiled bundle does not outlive the server
