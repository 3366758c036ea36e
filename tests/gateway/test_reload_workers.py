"""`--workers N`: a worker that replaces a dead one serves the bundle its siblings serve, from
its first request. It served the bundle the supervisor loaded at start until its own reload
finished, and kept it if that reload failed: a key revoked by a reload was accepted again
(runtime/gateway/cli.py Kept)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest

from tests.redis_server import RedisServer
from tests.runtime.conftest import compile_files
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import AUTH, CREDENTIAL, KEY, _wait, catalog, chat

NEW_KEY = "gw-ops-key-FAKE-0002"


def revoking(tmp_path: Path) -> bytes:
    """The bundle with KEY revoked: the workspace's only key is NEW_KEY."""
    files = catalog()
    sha = hashlib.sha256(KEY.encode()).hexdigest()
    files["w.yaml"] = files["w.yaml"].replace(sha, hashlib.sha256(NEW_KEY.encode()).hexdigest())
    return compile_files(tmp_path / "revoked", files)


def replace(path: Path, data: bytes) -> None:
    staged = path.with_suffix(".staged")
    staged.write_bytes(data)
    staged.replace(path)


@pytest.mark.parametrize("how", ["watch", "sighup"])
def test_a_replacement_worker_serves_what_its_siblings_serve(
    tmp_path: Path, own_redis: RedisServer, how: str
) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", catalog()))
    new = revoking(tmp_path)
    watch = () if how == "watch" else ("--no-watch",)
    gw = Gateway(path, "--workers", "2", "--redis", own_redis.url, "--namespace", f"kept-{how}",
                 *watch, env={"GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    try:
        _wait(lambda: len(gw.events("listening")) == 2)
        replace(path, new)
        if how == "sighup":
            gw.signal(signal.SIGHUP)
        _wait(lambda: len(gw.events("reloaded")) == 2)
        if how == "watch":  # a bad file next: every worker keeps the revoking bundle
            replace(path, b"{ broken")
            _wait(lambda: len(gw.events("reload_failed")) == 2)
        os.kill(gw.events("listening")[0]["pid"], signal.SIGKILL)
        _wait(lambda: len(gw.events("listening")) == 3)
        assert gw.events("listening")[2]["digest"] == json.loads(new)["digest"]
        answers = [json.loads(gw.request("GET", "/readyz")[2]) for _ in range(20)]
        assert {a["digest"] for a in answers} == {json.loads(new)["digest"]}
        assert all(("reload_error" in a) == (how == "watch") for a in answers)
        statuses = {gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] for _ in range(20)}
        assert statuses == {401}  # the revoked key, whichever worker answers
    finally:
        assert gw.stop() == 0
