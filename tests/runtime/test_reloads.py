"""Reloads: one at a time, the last one after the last ask (runtime/gateway/server.py
Reloads); the watcher reloads a bundle file changed since it was read, even before the
watch began; a SIGHUP while the gateway starts is a reload, not a kill."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.gateway import server
from runtime.gateway.server import Options, Reloads, stamp, watch
from tests.conftest import ROOT
from tests.runtime.test_gateway_server import CREDENTIAL, bundle  # noqa: F401


def recorded(monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[tuple[float, float]]:
    """server.reload replaced by one that takes `seconds`; (start, end) of each call."""
    spans: list[tuple[float, float]] = []

    async def slow(gw: Any, options: Any) -> None:
        start = time.monotonic()
        await asyncio.sleep(seconds)
        spans.append((start, time.monotonic()))

    monkeypatch.setattr(server, "reload", slow)
    return spans


@settings(max_examples=30, deadline=None)
@given(gaps=st.lists(st.sampled_from([0.0, 0.0, 0.002, 0.02]), min_size=1, max_size=30))
def test_reloads_run_one_at_a_time_and_the_last_follows_the_last_ask(gaps: list[float]) -> None:
    """Two reloads at once could end out of order and leave the older file serving; one
    per SIGHUP of a storm cost a full load each. Now never two at once, at most one more
    than those running when asked, and one begins after the last ask."""
    with pytest.MonkeyPatch.context() as mp:
        spans = recorded(mp, 0.01)

        async def storm() -> float:
            reloads = Reloads(None, None)  # type: ignore[arg-type]
            last_ask = 0.0
            for gap in gaps:
                last_ask = time.monotonic()
                reloads.request()
                await asyncio.sleep(gap)
            while reloads.running is not None:
                await asyncio.sleep(0.002)
            return last_ask

        last_ask = asyncio.run(storm())
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # one at a time
    assert spans[-1][0] >= last_ask  # the file as it was when last asked is what serves
    assert len(spans) <= 2 * len(gaps)
    if sum(gaps) < 0.005:  # a burst: at most two loads whatever its size
        assert len(spans) <= 2


def test_a_bundle_changed_since_it_was_read_is_reloaded_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher took its first look only once serving: a file replaced between the
    first read and then was never loaded (until it changed again)."""
    path = tmp_path / "b.json"
    path.write_text("one")
    read = stamp(path)
    (tmp_path / "new.json").write_text("two, longer")
    os.replace(tmp_path / "new.json", path)
    asked: list[int] = []
    reloads = Reloads(None, None)  # type: ignore[arg-type]
    monkeypatch.setattr(reloads, "request", lambda: asked.append(1))

    async def one_look() -> None:
        task = asyncio.ensure_future(watch(Options(path), reloads, read))
        await asyncio.sleep(0.05)  # less than WATCH_EVERY: only the first look
        task.cancel()

    asyncio.run(one_look())
    assert asked == [1]


@pytest.mark.parametrize("after", [0.15, 0.35])
def test_a_sighup_while_starting_is_a_reload_not_a_kill(bundle: Path, after: float) -> None:  # noqa: F811
    """A reload hook firing while the gateway starts killed it (SIGHUP's default action)."""
    log = bundle.parent / f"hup-{after}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "runtime.gateway", str(bundle), "--port", "0"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    try:
        time.sleep(after)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "reloaded" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        assert '"listening"' in log.read_text() and '"reloaded"' in log.read_text()
    finally:
        proc.terminate()
        proc.wait(30)
