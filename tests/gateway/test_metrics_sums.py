"""Counter increments summed in process and passed on at the scrape: nothing lost, nothing
counted twice, and the pending sums stay bounded."""

from __future__ import annotations

import re

import pytest

from runtime.gateway import metrics as metrics_module
from runtime.gateway.metrics import Metrics


def scraped(m: Metrics, name: str, **labels: str) -> float:
    text = m.text().decode()
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{name}{{(.*)}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_increments_reach_the_scrape_once() -> None:
    m = Metrics()
    labels = ("team", "fast", "echo")
    for amount in (1, 2, 3):
        m.count(m.tokens, (*labels, "input"), amount)
    m.count(m.requests, (*labels, "200"))
    assert scraped(m, "catalog_tokens_total", workspace="team", kind="input") == 6
    assert scraped(m, "catalog_requests_total", status="200") == 1
    # a second scrape with nothing new counts nothing twice
    assert scraped(m, "catalog_tokens_total", workspace="team", kind="input") == 6
    m.count(m.tokens, (*labels, "input"), 4)
    assert scraped(m, "catalog_tokens_total", workspace="team", kind="input") == 10


def test_pending_sums_are_bounded_and_lose_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "MAX_CHILDREN", 5)
    m = Metrics()
    for i in range(40):
        m.count(m.fallbacks, (f"w{i}",), 1)
        assert len(m._due) <= 6
    assert scraped(m, "catalog_fallbacks_total") == 40
