"""The books a gateway keeps (issue 14): one usage event per settled request, at the
catalog's price and at the workspace's chargeback price, and Prometheus metrics whose labels
are catalog slugs only. A gateway process on the mock service (exact usage, no network)."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from runtime.gateway.usage_events import EventLog
from tests.gateway.harness import GatewayProcess, compile_catalog, http, sha256, write_catalog

TEAM = "sk-test-FAKE-books-team"
FREE = "sk-test-FAKE-books-free"
OLD = "sk-test-FAKE-books-disabled"
ADMIN = "sk-test-FAKE-books-admin"

CATALOG = {
    "catalog.yaml": """\
        kind: Organization
        version: 1
        name: Books
        budgets: [{limit: 100, unit: usd, period: monthly}]
        admin_keys: [{name: finance, sha256: "ADMIN_SHA"}]
        """.replace("ADMIN_SHA", sha256(ADMIN)),
    "providers.yaml": """\
        kind: Integration
        slug: local
        service: mock
        ---
        kind: Integration
        slug: down
        service: mock
        settings: {status: "503"}
        ---
        kind: Provider
        slug: fast
        integration: local
        ---
        kind: Provider
        slug: broken
        integration: down
        """,
    "workspaces.yaml": f"""\
        kind: Workspace
        slug: team
        pricing:   # chargeback: half the catalog's price of echo (1 / 2 USD per 1M)
          - {{model: "echo", input: "0.5", output: "1"}}
        budgets: [{{limit: 0.0003, unit: usd, period: monthly}}]
        api_keys:
          - {{name: k, sha256: "{sha256(TEAM)}"}}
          - {{name: old, sha256: "{sha256(OLD)}", disabled: true}}
        ---
        kind: Workspace
        slug: lab
        pricing: [{{model: "*", free: true}}]
        api_keys: [{{name: k, sha256: "{sha256(FREE)}"}}]
        ---
        kind: Config
        slug: failover
        workspaces: [team]
        config:
          strategy: {{mode: fallback}}
          targets:
            - {{provider: "@broken", override_params: {{model: echo}}}}
            - {{provider: "@fast", override_params: {{model: echo}}}}
        """,
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("books")
    bundle = compile_catalog(write_catalog(root / "catalog", CATALOG), root / "b.json")
    events = root / "events.jsonl"
    process = GatewayProcess(bundle, root / "gateway.log", ["--events", str(events)]).start()
    process.events = events  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        process.stop()


def client(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=key, max_retries=0)


ANSWERED: list[str] = []  # the trace id of every request these tests had answered


def chat(c: openai.OpenAI, text: str, **kw: Any) -> tuple[Decimal, str]:
    raw = c.chat.completions.with_raw_response.create(
        messages=[{"role": "user", "content": text}], **kw
    )
    ANSWERED.append(raw.headers["x-portkey-trace-id"])
    return Decimal(raw.headers["x-catalog-cost-usd"]), raw.headers["x-portkey-trace-id"]


def events_of(gateway: GatewayProcess) -> list[dict[str, Any]]:
    """The events file once it holds the event of every answered request. Events follow
    the answer, so waiting for a count would race with earlier tests' events."""
    path: Path = gateway.events  # type: ignore[attr-defined]
    lines: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        if set(ANSWERED) <= {e["trace_id"] for e in lines}:
            return lines
        time.sleep(0.05)
    missing = set(ANSWERED) - {e["trace_id"] for e in lines}
    raise AssertionError(f"no event within 10 s for the answered requests {sorted(missing)}")


def scrape(gateway: GatewayProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, _, body = http("GET", gateway.origin + "/metrics")
    assert status == 200
    found = {}
    for line in body.decode().splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and not line.startswith("#"):
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            found[(m.group(1), labels)] = float(m.group(3))
    return found


def value(metrics: dict[Any, float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def test_events_and_metrics_match_what_the_requests_were_charged(
    gateway: GatewayProcess,
) -> None:
    team, lab = client(gateway, TEAM), client(gateway, FREE)
    charged = [chat(team, "one two three", model="@fast/echo", max_tokens=8),
               chat(lab, "four five", model="@fast/echo-large", max_tokens=8),
               chat(team, "six", model="echo", max_tokens=8,
                    extra_headers={"x-portkey-config": "failover"})]  # fmt: skip
    with pytest.raises(openai.APIStatusError) as refused:  # the team's budget is tiny
        for _ in range(60):
            chat(team, "more words to spend the budget", model="@fast/echo", max_tokens=8)
    assert refused.value.status_code == 412
    events = events_of(gateway)
    by_trace = {e["trace_id"]: e for e in events}
    for cost, trace in charged:
        assert Decimal(by_trace[trace]["chargeback_usd"]) == cost  # what budgets counted
    first, free, failover = (by_trace[t] for _, t in charged)
    # the catalog price of echo is twice the team's chargeback; lab's is free
    assert Decimal(first["catalog_cost_usd"]) == 2 * Decimal(first["chargeback_usd"]) > 0
    assert Decimal(free["chargeback_usd"]) == 0 < Decimal(free["catalog_cost_usd"])
    assert (failover["attempts"], failover["provider"], failover["status"]) == (2, "fast", 200)
    assert first["tokens"]["input"] == 3 and first["workspace"] == "team"
    listening = next(x for x in gateway.lines() if x.get("event") == "listening")
    assert {e["bundle"] for e in events} == {listening["digest"]}
    # every settled request has exactly one event, and only those
    assert len(events) == len({e["request_id"] for e in events})

    metrics = scrape(gateway)
    team_echo = {"workspace": "team", "provider": "fast", "model": "echo"}
    team_requests = sum(1 for e in events if e["workspace"] == "team" and e["status"] == 200)
    assert value(metrics, "catalog_requests_total", **team_echo, status="200") == team_requests
    spent = sum(Decimal(e["chargeback_usd"]) for e in events if e["workspace"] == "team"
                and e["provider"] == "fast")  # fmt: skip
    got = value(metrics, "catalog_cost_micro_usd_total", **team_echo, price="chargeback")
    assert got == pytest.approx(float(spent * 1_000_000))
    tokens = sum(e["tokens"]["input"] for e in events if e["workspace"] == "team")
    assert value(metrics, "catalog_tokens_total", **team_echo, kind="input") == tokens
    assert value(metrics, "catalog_refusals_total", reason="budget_exhausted",
                 level="workspace") >= 1  # fmt: skip
    assert value(metrics, "catalog_fallbacks_total", workspace="team") == 1
    assert value(metrics, "catalog_upstream_latency_seconds_count", provider="broken",
                 model="echo") == 1  # fmt: skip


def test_client_input_never_becomes_a_label(gateway: GatewayProcess) -> None:
    lab = client(gateway, FREE)
    odd = "model-from-a-client-7f3a"
    with pytest.raises(openai.NotFoundError):
        lab.chat.completions.create(model=f"@fast/{odd}", messages=[{"role": "user", "content": "x"}],
                                    extra_headers={"x-portkey-trace-id": "trace-label-7f3a",
                                                   "x-portkey-metadata": '{"tier": "meta-7f3a"}'})  # fmt: skip
    status, _, body = http("GET", gateway.origin + "/metrics")
    assert status == 200 and b"7f3a" not in body


def test_a_stream_has_one_event_and_a_time_to_first_token(gateway: GatewayProcess) -> None:
    lab = client(gateway, FREE)
    before = value(scrape(gateway), "catalog_time_to_first_token_seconds_count",
                   provider="fast", model="echo")  # fmt: skip
    stream = lab.chat.completions.create(model="@fast/echo", stream=True, max_tokens=8,
                                         messages=[{"role": "user", "content": "a b c d"}],
                                         extra_headers={"x-portkey-trace-id": "stream-books-1"})  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    ANSWERED.append("stream-books-1")
    events = events_of(gateway)
    mine = [e for e in events if e["trace_id"] == "stream-books-1"]
    assert len(mine) == 1 and mine[0]["stream"] is True and mine[0]["tokens"]["input"] == 4
    after = value(scrape(gateway), "catalog_time_to_first_token_seconds_count",
                  provider="fast", model="echo")  # fmt: skip
    assert after == before + 1


def test_the_events_file_rotates_and_loses_nothing(tmp_path: Path) -> None:
    """Two writers (as two worker processes) on one path with a small size cap."""
    path = str(tmp_path / "events.jsonl")
    writers = [EventLog(path, max_bytes=4096, keep=50), EventLog(path, max_bytes=4096, keep=50)]
    for i in range(400):
        writers[i % 2].add({"v": 1, "event": "usage", "request_id": f"r{i}", "pad": "x" * 40})
    for w in writers:
        w.close()
    files = sorted(tmp_path.glob("events.jsonl*"))
    assert len(files) > 3 and not any(f.stat().st_size > 4096 for f in files)
    ids = [json.loads(line)["request_id"] for f in files for line in f.read_text().splitlines()]
    assert sorted(ids) == sorted(f"r{i}" for i in range(400))  # none lost, none twice


def usage_of(gateway: GatewayProcess, key: str | None, query: str = "") -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    status, _, body = http("GET", gateway.v1 + "/catalog/usage" + query, None, headers)
    return status, json.loads(body)


def test_usage_now_for_a_workspace_and_for_the_organization(gateway: GatewayProcess) -> None:
    cost, _ = chat(client(gateway, FREE), "count these words", model="@fast/echo")
    status, mine = usage_of(gateway, FREE)
    assert status == 200 and mine["workspace"] == "lab"
    assert {c["counter"] for c in mine["counters"]} == {"organization"}  # lab has no limits
    status, every = usage_of(gateway, ADMIN)
    assert status == 200 and every["workspace"] is None
    counters = {(c["counter"], c["kind"]): c for c in every["counters"]}
    team = counters[("workspace/team", "budget")]
    events = events_of(gateway)
    spent = sum(Decimal(e["chargeback_usd"]) for e in events if e["workspace"] == "team")
    assert Decimal(team["spent"]) == spent and team["reserved"] == "0"
    assert Decimal(team["remaining"]) == Decimal("0.0003") - spent
    org = counters[("organization", "budget")]
    assert Decimal(org["spent"]) == sum(Decimal(e["chargeback_usd"]) for e in events)
    assert cost == 0 and org["window_end"].endswith("T00:00:00Z")  # lab is free
    metrics = scrape(gateway)  # the budget gauges say the same as the usage answer
    labels = {"counter": "workspace/team", "unit": "usd", "period": "monthly"}
    used = (Decimal(team["spent"]) + Decimal(team["reserved"])) / Decimal(team["limit"])
    assert value(metrics, "catalog_budget_used_ratio", **labels) == pytest.approx(float(used))
    assert value(metrics, "catalog_budget_remaining", **labels) == pytest.approx(
        float(team["remaining"]))  # fmt: skip
    status, one = usage_of(gateway, ADMIN, "?workspace=team")
    assert {c["counter"] for c in one["counters"]} == {"organization", "workspace/team"}
    assert usage_of(gateway, TEAM, "?workspace=lab")[0] == 403
    assert usage_of(gateway, None)[0] == 401
    assert usage_of(gateway, ADMIN, "?workspace=nobody")[0] == 404


def test_a_disabled_key_is_refused_and_an_admin_key_never_routes(gateway: GatewayProcess) -> None:
    for key in (OLD, ADMIN):
        with pytest.raises(openai.AuthenticationError):
            chat(client(gateway, key), "hello", model="@fast/echo")
    assert usage_of(gateway, OLD)[0] == 401


def test_the_report_sums_to_what_the_responses_said(gateway: GatewayProcess) -> None:
    """`catalogc report` over the events file: its chargeback total is the sum of the
    `x-catalog-cost-usd` of every answered request, to the last digit."""
    from click.testing import CliRunner

    from catalog_compiler.cli import cli

    team = client(gateway, TEAM)
    path: Path = gateway.events  # type: ignore[attr-defined]
    before = len(path.read_text().splitlines()) if path.exists() else 0
    said: list[Decimal] = []
    for text in ("alpha", "beta gamma", "delta epsilon zeta"):
        with contextlib.suppress(openai.APIStatusError):  # the tiny budget may be spent
            said.append(chat(team, text, model="@fast/echo", max_tokens=4)[0])
    said.append(chat(client(gateway, FREE), "eta theta", model="@fast/echo-large")[0])
    events = events_of(gateway)
    assert sum(Decimal(e["chargeback_usd"]) for e in events[before:]) == sum(said)
    result = CliRunner().invoke(cli, ["report", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    total = json.loads(result.output)["total"]
    assert Decimal(total["chargeback_usd"]) == sum(Decimal(e["chargeback_usd"]) for e in events)
    assert Decimal(total["catalog_cost_usd"]) == sum(Decimal(e["catalog_cost_usd"])
                                                     for e in events)  # fmt: skip
    assert total["requests"] == len(events)


def test_catalogc_usage_reads_a_running_gateway(gateway: GatewayProcess) -> None:
    from click.testing import CliRunner

    from catalog_compiler.cli import cli

    runner = CliRunner()
    env = {"CATALOGC_API_KEY": ADMIN, "NO_COLOR": "1"}
    done = runner.invoke(cli, ["usage", "--gateway", gateway.origin, "--format", "json"], env=env)
    assert done.exit_code == 0, done.output
    shown = {(c["counter"], c["kind"]): c for c in json.loads(done.output)["counters"]}
    _, direct = usage_of(gateway, ADMIN)
    assert shown == {(c["counter"], c["kind"]): c for c in direct["counters"]}
    text = runner.invoke(cli, ["usage", "--gateway", gateway.origin], env=env)
    assert text.exit_code == 0 and "workspace/team budget" in text.output
    assert "0.0003 USD" in text.output
    refused = runner.invoke(cli, ["usage", "--gateway", gateway.origin],
                            env={"CATALOGC_API_KEY": "sk-test-FAKE-nobody"})  # fmt: skip
    assert refused.exit_code == 1 and "401" in refused.output
    assert ADMIN not in refused.output
