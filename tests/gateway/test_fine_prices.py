"""A price of 10 decimal places per 1M tokens through a gateway process (issue 15): the
x-catalog-cost-usd header and the usage event carry the exact cost, digits down to 1e-16
USD (mock service: exact usage, no network; the stores are tests/runtime/test_precision.py)."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai

from tests.gateway.harness import GatewayProcess, compile_catalog, sha256, write_catalog

KEY = "sk-test-FAKE-fine-prices"
INPUT, OUTPUT = Decimal("0.0000000375"), Decimal("1234.5678901234")
CATALOG = {
    "catalog.yaml": "kind: Organization\nversion: 1\nname: Fine\n",
    "providers.yaml": """\
        kind: Integration
        slug: local
        service: mock
        ---
        kind: Provider
        slug: fast
        integration: local
        """,
    "workspaces.yaml": f"""\
        kind: Workspace
        slug: team
        pricing: [{{model: "echo", input: "{INPUT:f}", output: "{OUTPUT:f}",
                   unusual_price: true}}]  # far from the registry: on purpose
        budgets: [{{limit: 1000, unit: usd, period: monthly}}]
        api_keys: [{{name: k, sha256: "{sha256(KEY)}"}}]
        """,
}


def event_of(path: Path, trace: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        found = [e for e in lines if e["trace_id"] == trace]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no usage event for {trace} within 10 s")


def test_ten_places_are_charged_exactly_in_the_header_and_the_event(
    tmp_path: Path,
) -> None:
    bundle = compile_catalog(write_catalog(tmp_path / "catalog", CATALOG), tmp_path / "b.json")
    events = tmp_path / "events.jsonl"
    gateway = GatewayProcess(bundle, tmp_path / "gateway.log", ["--events", str(events)]).start()
    try:
        client = openai.OpenAI(base_url=gateway.v1, api_key=KEY, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            messages=[{"role": "user", "content": "one two three"}], model="@fast/echo",
            max_tokens=8,
        )  # fmt: skip
        usage = raw.parse().usage
        assert usage is not None and usage.completion_tokens > 0
        expected = (usage.prompt_tokens * INPUT + usage.completion_tokens * OUTPUT) / 10**6
        assert expected != expected.quantize(Decimal("1E-12"))  # finer than pico-USD
        assert Decimal(raw.headers["x-catalog-cost-usd"]) == expected
        assert "E" not in raw.headers["x-catalog-cost-usd"]  # plain notation
        event = event_of(events, raw.headers["x-portkey-trace-id"])
        assert Decimal(event["chargeback_usd"]) == expected
        assert event["tokens"]["input"] == usage.prompt_tokens
    finally:
        gateway.stop()
