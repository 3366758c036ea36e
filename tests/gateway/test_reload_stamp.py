"""The bundle watcher sees a rewrite that keeps inode, size and mtime (`cp -p`, `rsync
--inplace` of reproducible artifacts) and a chmod that makes an unreadable bundle readable:
the file's change time is part of its stamp (runtime/gateway/server.py `stamp`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runtime.gateway.server import stamp
from tests.runtime.conftest import compile_files
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import CREDENTIAL, _wait, catalog

ENV = {"GW_OPS_FAKE_KEY": CREDENTIAL}


def digest(gw: Gateway) -> str:
    return str(json.loads(gw.request("GET", "/readyz")[2])["digest"])


def readable(path: Path) -> bool:
    try:
        path.open("rb").close()
    except PermissionError:
        return False
    return True


def rewrite_keeping_mtime(path: Path, data: bytes) -> None:
    """What `cp -p` does to an existing file: the same inode, written over, mtime restored."""
    before = path.stat()
    with path.open("r+b") as out:
        out.write(data)
        out.truncate()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_rewrite_keeping_inode_size_and_mtime_is_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "one", catalog(limit=1000)))
    new = compile_files(tmp_path / "two", catalog(limit=2000))
    assert len(new) == path.stat().st_size  # the same size: only the content differs
    gw = Gateway(path, env=ENV)
    try:
        first = digest(gw)
        before = path.stat()
        rewrite_keeping_mtime(path, new)
        after = path.stat()
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
            before.st_ino, before.st_size, before.st_mtime_ns)  # fmt: skip
        _wait(lambda: gw.events("reloaded"), timeout=10)
        assert digest(gw) == json.loads(new)["digest"] != first
    finally:
        gw.stop()


def test_a_chmod_changes_the_stamp(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(b"{}")
    before = stamp(path)
    path.chmod(0)
    assert stamp(path) != before


def without_dac_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start the gateway as a non-root container would: root reads a mode-000 file."""
    if os.geteuid() != 0:
        return
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root reads any file, and setpriv (util-linux) is not installed")
    popen = subprocess.Popen

    def dropped(cmd: list[str], *args: Any, **kw: Any) -> Any:
        return popen([setpriv, "--bounding-set", "-dac_override,-dac_read_search", *cmd],
                     *args, **kw)  # fmt: skip

    monkeypatch.setattr(subprocess, "Popen", dropped)


def test_a_chmod_that_makes_the_bundle_readable_is_reloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "one", catalog(limit=1000)))
    new = compile_files(tmp_path / "two", catalog(limit=2000))
    with monkeypatch.context() as mp:
        without_dac_override(mp)
        gw = Gateway(path, env=ENV)
    try:
        staged = tmp_path / "staged.json"
        staged.write_bytes(new)
        staged.chmod(0)
        staged.replace(path)  # a new bundle, unreadable: the reload fails
        _wait(lambda: gw.events("reload_failed"), timeout=10)
        path.chmod(0o644)  # no SIGHUP, no other change: only the ctime tells
        _wait(lambda: gw.events("reloaded"), timeout=10)
        body = json.loads(gw.request("GET", "/readyz")[2])
        assert body["digest"] == json.loads(new)["digest"] and "reload_error" not in body
    finally:
        gw.stop()
