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


def test_observations_reach_the_scrape_once_and_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_module, "MAX_OBSERVED", 4)
    m = Metrics()
    for seconds in (0.004, 0.02, 0.3, 7.0, 0.004, 0.02, 0.3, 7.0, 0.004, 0.02):
        m.observe(m.latency, ("fast", "echo"), seconds)
        assert len(m._observed) < 4
    assert scraped(m, "catalog_upstream_latency_seconds_count", provider="fast") == 10
    assert scraped(m, "catalog_upstream_latency_seconds_bucket", provider="fast", le="0.005") == 3
    assert scraped(m, "catalog_upstream_latency_seconds_sum") == pytest.approx(14.672)
    # a second scrape with nothing new observes nothing twice
    assert scraped(m, "catalog_upstream_latency_seconds_count", provider="fast") == 10


def test_tallies_reach_the_scrape_once_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "MAX_CHILDREN", 5)
    m = Metrics()
    for i in range(40):
        t = m.tally((f"w{i % 8}", "fast", "echo"))
        t.statuses[200] = t.statuses.get(200, 0) + 1
        t.settled += 1
        t.inputs += 3
        t.charged += 7 * metrics_module.UNITS_PER_MICRO_USD
        m.settle()  # the end of a request's books
        assert len(m._tallies) < 5
    assert scraped(m, "catalog_requests_total", status="200") == 40
    assert scraped(m, "catalog_tokens_total", kind="input") == 120
    assert scraped(m, "catalog_cost_micro_usd_total", price="chargeback") == 280
    # a settled ticket has its cost series, at 0 too; a token kind never used has none
    assert "catalog_tokens_total{" not in _lines(m, 'kind="output"')
    assert 'price="catalog"' in _lines(m, 'workspace="w0"')
    # a second scrape with nothing new counts nothing twice
    assert scraped(m, "catalog_requests_total", status="200") == 40


def test_tallied_cost_is_summed_exactly_before_it_becomes_a_float() -> None:
    """A million requests of 3e-16 USD each: summed as units, then made micro-USD once (a
    float sum of 3e-10 a million times drifts)."""
    m = Metrics()
    t = m.tally(("team", "fast", "echo"))
    for _ in range(1_000_000):
        t.charged += 3
    t.settled = 1
    assert scraped(m, "catalog_cost_micro_usd_total", price="chargeback") == 3e6 / 1e10


def test_a_tally_taken_early_in_a_request_is_never_flushed_under_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request's books take the tally of its last attempt first, then those of earlier
    attempts (fallbacks): reaching the bound in between must not drop what is added after."""
    monkeypatch.setattr(metrics_module, "MAX_CHILDREN", 2)
    m = Metrics()
    last = m.tally(("team", "fast", "echo"))
    m.tally(("team", "slow", "echo"))  # the bound is reached here
    m.tally(("team", "other", "echo"))
    last.inputs += 5  # the last attempt's ticket, counted after
    m.settle()
    assert scraped(m, "catalog_tokens_total", provider="fast", kind="input") == 5


def _lines(m: Metrics, needle: str) -> str:
    return "\n".join(line for line in m.text().decode().splitlines() if needle in line)
