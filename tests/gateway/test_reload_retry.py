"""A failed reload is tried again, with backoff, until one succeeds: its cause may lie outside
the bundle file (a `{file: ...}` secret landing after the bundle, as Kubernetes updates a
Secret volume apart from a ConfigMap's) and go away unseen by the watcher. Each distinct
error is logged once (runtime/gateway/server.py Reloads, Backoff)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runtime.gateway import server
from tests.runtime.conftest import compile_files
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import CREDENTIAL, _wait, catalog


def test_backoff_doubles_from_one_second_to_thirty_and_restarts_after_a_success() -> None:
    backoff = server.Backoff()
    assert [backoff.failed() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.succeeded()
    assert backoff.failed() == 1


def test_a_failed_reload_is_retried_until_one_succeeds_logging_each_error_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes = ["gone", "gone", "gone", "other", "other", None]
    gw: Any = SimpleNamespace(
        reload_error=None, live=SimpleNamespace(bundle=SimpleNamespace(digest="d"))
    )
    calls: list[float] = []
    logged: list[tuple[str, dict[str, Any]]] = []

    async def fake(gw_: Any, options: Any) -> str | None:
        calls.append(time.monotonic())
        error = outcomes[len(calls) - 1]
        if error is None:
            gw.reload_error = None  # as Gateway.swap does
        return error

    monkeypatch.setattr(server, "reload", fake)
    monkeypatch.setattr(server, "log", lambda event, **fields: logged.append((event, fields)))
    monkeypatch.setattr(server, "RETRY_FIRST", 0.01)
    monkeypatch.setattr(server, "RETRY_MOST", 0.04)

    async def once() -> server.Reloads:
        reloads = server.Reloads(gw, server.Options(Path("unused")))
        reloads.request()
        while len(calls) < len(outcomes) or reloads.running is not None:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)  # no retry after the success
        return reloads

    reloads = asyncio.run(once())
    assert len(calls) == len(outcomes) and gw.reload_error is None
    assert [fields["error"] for _, fields in logged] == ["gone", "other"]
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(
        gap >= want * 0.9 for gap, want in zip(gaps, [0.01, 0.02, 0.04, 0.04, 0.04], strict=True)
    )
    assert reloads.retry is None and reloads.backoff.delay == 0.01


def test_a_reload_failing_for_a_secret_not_there_yet_succeeds_once_it_lands(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    files = catalog(extra_model=", echo-large")
    files["i.yaml"] = files["i.yaml"].replace("{env: GW_OPS_FAKE_KEY}", f"{{file: {secret}}}")
    new = compile_files(tmp_path / "new", files)
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "old", catalog()))
    gw = Gateway(path, env={"GW_OPS_FAKE_KEY": CREDENTIAL})
    try:
        staged = tmp_path / "staged.json"
        staged.write_bytes(new)
        staged.replace(path)  # the bundle lands first...
        _wait(lambda: gw.events("reload_failed"), timeout=10)
        time.sleep(3.5)  # retried at 1 s and 3 s, the same error: not logged again
        assert len(gw.events("reload_failed")) == 1
        assert "No such file" in json.loads(gw.request("GET", "/readyz")[2])["reload_error"]
        secret.write_text(CREDENTIAL)  # ...its secret a moment later: no SIGHUP, no change
        _wait(lambda: gw.events("reloaded"), timeout=15)
        body = json.loads(gw.request("GET", "/readyz")[2])
        assert body["digest"] == json.loads(new)["digest"] and "reload_error" not in body
        assert CREDENTIAL not in gw.text()
    finally:
        gw.stop()
