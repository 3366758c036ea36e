"""Portkey's open-source gateway (`@portkey-ai/gateway`, pinned) as a real process.

Installed once with npm into ~/.cache/catalogc-tests/portkey-gateway-<version> (or
$CATALOG_PORTKEY_GATEWAY), under a file lock, into a staging directory renamed into place, so
concurrent or interrupted runs never see half an install; later runs reuse it. Without node or
npm, or when the install fails, the tests that need it skip locally and fail in CI
(CATALOGC_CI=1), like the gallery's node snippets."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

PORTKEY_VERSION = "1.15.2"
# @portkey-ai/gateway asks for @hono/node-server ^1.3.3; npm picks the newest 1.x, whose
# lightweight Response hands the upstream's immutable fetch headers to Portkey's
# updateHeaders: every streamed answer is a 500 "TypeError: immutable"
# (Portkey-AI/gateway#1389). 1.13.8 is the newest release without that code path.
PORTKEY_OVERRIDES = {"@hono/node-server": "1.13.8"}
SCRIPT = Path("node_modules/@portkey-ai/gateway/build/start-server.js")
INSTALL_TIMEOUT = 600
START_TIMEOUT = 60.0


def unavailable(why: str) -> None:
    """Skip here, fail in CI."""
    if os.environ.get("CATALOGC_CI"):
        pytest.fail(f"{why} (required in CI)")
    pytest.skip(why)


def install_dir() -> Path:
    env = os.environ.get("CATALOG_PORTKEY_GATEWAY")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "catalogc-tests" / f"portkey-gateway-{PORTKEY_VERSION}"


def installed_script() -> Path:
    """start-server.js of the pinned gateway, installing it on first use."""
    base = install_dir()
    if (base / SCRIPT).is_file():
        return base / SCRIPT
    npm, node = shutil.which("npm"), shutil.which("node")
    if node is None or npm is None:
        unavailable("node and npm are needed to run Portkey's gateway (not installed)")
    assert npm is not None
    base.parent.mkdir(parents=True, exist_ok=True)
    with (base.parent / f"{base.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / SCRIPT).is_file():  # installed by another run while we waited
            return base / SCRIPT
        staging = Path(tempfile.mkdtemp(prefix=f"{base.name}-", dir=base.parent))
        manifest = {"private": True,
                    "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION},
                    "overrides": PORTKEY_OVERRIDES}  # fmt: skip
        (staging / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel", "error"],
            cwd=staging, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not (staging / SCRIPT).is_file():
            shutil.rmtree(staging, ignore_errors=True)
            unavailable(f"npm install @portkey-ai/gateway@{PORTKEY_VERSION} failed: "
                        f"{done.stderr[-2000:]}")  # fmt: skip
        if base.exists():  # a broken earlier install
            shutil.rmtree(base, ignore_errors=True)
        staging.rename(base)
    return base / SCRIPT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PortkeyProcess:
    """`node start-server.js --port=N --headless`, its output in a log file."""

    def __init__(self, script: Path, log: Path) -> None:
        self.script = script
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PortkeyProcess:
        node = shutil.which("node")
        if node is None:
            unavailable("node is needed to run Portkey's gateway (not installed)")
        assert node is not None
        for _ in range(3):  # the port is free when chosen; another process may take it
            self.port = free_port()
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [node, str(self.script), f"--port={self.port}", "--headless"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                    env={**os.environ, "NODE_ENV": "production"},
                )  # fmt: skip
            if self._wait_ready():
                return self
            self.stop()
        raise AssertionError(f"Portkey's gateway did not start; its log:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.origin + "/", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: node and nothing else
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running_portkey(log: Path) -> Iterator[PortkeyProcess]:
    process = PortkeyProcess(installed_script(), log).start()
    try:
        yield process
    finally:
        process.stop()
