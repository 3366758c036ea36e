"""An attempt the upstream did not bill costs nothing, not even the model's `per_request` fee:
an upstream error without usage, and an upstream that cannot be reached (a review: each was
charged the fee, in the header, the log, the usage event and every budget of its chain, and a
fallback after one cost two fees). A process on the mock service, one on a closed port. And
a usage event names the provider its charges went to."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from tests.gateway.harness import (
    GatewayProcess,
    compile_catalog,
    http,
    settled,
    sha256,
    trace_id,
    write_catalog,
)
from tests.gateway.test_fine_prices import event_of

KEY = "sk-test-FAKE-unbilled"
FEE = Decimal("0.01")
INPUT, OUTPUT = Decimal("1"), Decimal("2")  # USD per 1M tokens


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def catalog(port: int) -> dict[str, str]:
    return {
        "catalog.yaml": "kind: Organization\nversion: 1\nname: Unbilled\n",
        "providers.yaml": f"""\
            kind: Integration
            slug: local
            service: mock
            ---
            kind: Integration
            slug: outage
            service: mock
            settings: {{status: "503"}}
            ---
            kind: Integration
            slug: nowhere
            service: openai-compatible
            base_url: http://127.0.0.1:{port}/v1
            credentials: {{api_key: {{env: TEST_FAKE_NOWHERE_KEY}}}}
            models: {{custom: [{{name: echo, pricing: {{input: "1", output: "2"}}}}]}}
            ---
            kind: Provider
            slug: fast
            integration: local
            ---
            kind: Provider
            slug: down
            integration: outage
            ---
            kind: Provider
            slug: gone
            integration: nowhere
            ---
            kind: Integration
            slug: slow
            service: mock
            settings: {{latency_ms: "3000"}}
            ---
            kind: Provider
            slug: sluggish
            integration: slow
            ---
            kind: Provider
            slug: broke
            integration: local
            budgets: [{{limit: 0, unit: usd, period: monthly}}]
            """,
        "configs.yaml": """\
            kind: Config
            slug: after-503
            workspaces: [team]
            config:
              strategy: {mode: fallback, on_status_codes: [503]}
              targets:
                - {provider: "@down", override_params: {model: echo}}
                - {provider: "@fast", override_params: {model: echo}}
            ---
            kind: Config
            slug: after-unreachable
            workspaces: [team]
            config:
              strategy: {mode: fallback}
              targets:
                - {provider: "@gone", override_params: {model: echo}}
                - {provider: "@fast", override_params: {model: echo}}
            ---
            kind: Config
            slug: timeout-then-broke
            workspaces: [team]
            config:
              strategy: {mode: fallback, on_status_codes: [408]}
              request_timeout: 300
              targets:
                - {provider: "@sluggish", override_params: {model: echo}}
                - {provider: "@broke", override_params: {model: echo}}
            """,
        "workspaces.yaml": f"""\
            kind: Workspace
            slug: team
            pricing: [{{model: "echo", input: "{INPUT}", output: "{OUTPUT}",
                       per_request: "{FEE}", unusual_price: true}}]
            budgets: [{{limit: 1000, unit: usd, period: monthly}}]
            api_keys: [{{name: k, sha256: "{sha256(KEY)}"}}]
            """,
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, Path]]:
    root = tmp_path_factory.mktemp("unbilled")
    bundle = compile_catalog(write_catalog(root / "catalog", catalog(closed_port())),
                             root / "b.json")  # fmt: skip
    events = root / "events.jsonl"
    gateway = GatewayProcess(bundle, root / "gateway.log", ["--events", str(events)],
                             env={"TEST_FAKE_NOWHERE_KEY": "sk-test-FAKE-nowhere"}).start()  # fmt: skip
    try:
        yield gateway, events
    finally:
        gateway.stop()


def call(gateway: GatewayProcess, **headers: str) -> tuple[int, Decimal, str, dict[str, int]]:
    client = openai.OpenAI(base_url=gateway.v1, api_key=KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "one two three"}], max_tokens=8,
        extra_headers=headers,
    )  # fmt: skip
    usage = raw.parse().usage
    assert usage is not None
    tokens = {"input": usage.prompt_tokens, "output": usage.completion_tokens}
    return raw.status_code, Decimal(raw.headers["x-catalog-cost-usd"]), \
        raw.headers["x-portkey-trace-id"], tokens  # fmt: skip


def priced(tokens: dict[str, int]) -> Decimal:
    return (tokens["input"] * INPUT + tokens["output"] * OUTPUT) / 10**6 + FEE


def test_an_upstream_error_without_usage_costs_nothing(
    served: tuple[GatewayProcess, Path],
) -> None:
    gateway, events = served
    before = settled(gateway, KEY)
    with pytest.raises(openai.InternalServerError) as err:
        openai.OpenAI(base_url=gateway.v1, api_key=KEY, max_retries=0).chat.completions.create(
            model="@down/echo", messages=[{"role": "user", "content": "hi"}], max_tokens=8,
        )  # fmt: skip
    assert err.value.status_code == 503
    assert Decimal(err.value.response.headers["x-catalog-cost-usd"]) == 0
    assert settled(gateway, KEY) == before
    trace = err.value.response.headers["x-portkey-trace-id"]
    assert Decimal(gateway.request_line(trace)["cost_usd"]) == 0
    event = event_of(events, trace)
    assert Decimal(event["chargeback_usd"]) == 0 and Decimal(event["catalog_cost_usd"]) == 0


@pytest.mark.parametrize("config", ["after-503", "after-unreachable"])
def test_a_fallback_pays_one_fee_for_the_one_answer(
    served: tuple[GatewayProcess, Path],
    config: str,
) -> None:
    gateway, events = served
    before = settled(gateway, KEY)
    status, cost, trace, tokens = call(gateway, **{"x-portkey-config": config})
    assert status == 200 and cost == priced(tokens)
    assert settled(gateway, KEY) - before == cost
    line = gateway.request_line(trace)
    assert line["attempts"] == 2 and Decimal(line["cost_usd"]) == cost
    assert Decimal(event_of(events, trace)["chargeback_usd"]) == cost


def test_the_event_names_the_provider_its_charges_went_to(
    served: tuple[GatewayProcess, Path],
) -> None:
    """The first target times out (charged its input), the second is refused by its budget
    before any call: the event named the refused provider, never contacted, with the first
    one's charge (a review)."""
    gateway, events = served
    trace = trace_id()
    status, _, body = http("POST", gateway.v1 + "/chat/completions",
                           {"model": "echo", "messages": [{"role": "user", "content": "hi"}],
                            "max_tokens": 8},
                           {"authorization": f"Bearer {KEY}", "x-portkey-trace-id": trace,
                            "x-portkey-config": "timeout-then-broke"})  # fmt: skip
    assert status == 412, body
    answer = json.loads(body)
    assert gateway.request_line(trace)["status"] == 412  # the line is written after the answer
    event = event_of(events, trace)
    assert Decimal(event["chargeback_usd"]) > 0  # the timed-out attempt's input
    assert event["provider"] == "sluggish" and event["model"] == "echo"
    assert answer["error"]["code"] == "budget_exhausted"
