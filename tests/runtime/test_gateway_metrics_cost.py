"""`/metrics` is unauthenticated, and on a large catalog one exposition is costly (every
counter read, two gauges per budget): a client asking for it in a loop must not take the
process (runtime/gateway/spaced.py). A real gateway on a catalog of 500 workspaces, each
with two budgets and a rate limit; four clients scrape as fast as they can; the gateway's
own CPU time over the wall time is its share (about all of it without the gate)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import urllib.request
from pathlib import Path

from tests.runtime.conftest import compile_files
from tests.runtime.gateway_proc import Gateway

WORKSPACES = 500
SPAM_SECONDS = 3.0


def catalog() -> dict[str, str]:
    spaces = "".join(
        f"""---
kind: Workspace
slug: w{i}
budgets:
  - {{limit: 100, unit: usd, period: monthly}}
  - {{limit: 1000000, unit: tokens, period: daily}}
rate_limits:
  - {{limit: 100, unit: requests, per: minute}}
api_keys:
  - {{name: k, sha256: "{hashlib.sha256(f"w{i}-key-FAKE".encode()).hexdigest()}"}}
"""
        for i in range(WORKSPACES)
    )
    return {
        "catalog.yaml": "kind: Organization\nversion: 1\nname: Many workspaces\n",
        "mock.yaml": "kind: Integration\nslug: local\nservice: mock\n---\n"
        "kind: Provider\nslug: mock\nintegration: local\n" + spaces,
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_scrapes_in_a_loop_take_a_bounded_share_of_the_gateway(tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    bundle.write_bytes(compile_files(tmp_path / "cat", catalog()))
    gw = Gateway(bundle)
    try:
        assert gw.proc is not None
        first = urllib.request.urlopen(gw.url + "/metrics", timeout=30).read()
        assert b'catalog_budget_remaining{counter="workspace/w499' in first  # a costly one
        answered = [0]
        end = time.monotonic() + SPAM_SECONDS

        def scrape() -> None:
            while time.monotonic() < end:
                with urllib.request.urlopen(gw.url + "/metrics", timeout=30) as answer:
                    assert answer.status == 200 and answer.read()
                answered[0] += 1

        threads = [threading.Thread(target=scrape) for _ in range(4)]
        before, start = cpu_seconds(gw.proc.pid), time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        share = (cpu_seconds(gw.proc.pid) - before) / (time.monotonic() - start)
        assert answered[0] >= 4  # each scraper was answered
        assert share < 0.4, f"the scrapes took {share:.0%} of a core"
    finally:
        gw.stop()
    assert not gw.events("internal_error") and "Traceback" not in gw.text()
