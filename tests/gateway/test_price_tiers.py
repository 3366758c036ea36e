"""Tiered prices through the real gateway on 127.0.0.1 (issue 15): a 1-hour cache write
reported by an Anthropic-shaped upstream (whole and streamed), a request above a
long-context threshold, and a flex request charged at the tier the upstream reports. Every
expected cost is computed by hand from the catalog below; the `x-catalog-cost-usd` header
and the workspace budget's settled spend must both equal it."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest

from tests.gateway.fakes import Answer, Fakes, Tokens
from tests.gateway.harness import (
    TEAM_KEY,
    GatewayProcess,
    compile_catalog,
    openai_client,
    settled,
    sha256,
    write_catalog,
)

M = Decimal(1_000_000)  # prices are USD per 1M tokens


def catalog(fakes: Fakes) -> dict[str, str]:
    return {
        "catalog.yaml": "kind: Organization\nversion: 1\nname: Tiers\n",
        "providers.yaml": f"""\
            kind: Integration
            slug: anthropic
            service: anthropic
            base_url: {fakes.anthropic.url}
            credentials: {{api_key: {{env: TEST_FAKE_ANTHROPIC_KEY}}}}
            models:
              custom:
                - name: claude-tiered
                  context_window: 1000000
                  max_output_tokens: 1000
                  pricing:
                    input: 3
                    output: 15
                    cache_read: 0.3
                    cache_write: 3.75
                    cache_write_1h: 6
                    tiers:
                      - {{above_input_tokens: 200000, input: 6, output: 22.5, cache_read: 0.6,
                          cache_write: 7.5, cache_write_1h: 12}}
            ---
            kind: Provider
            slug: claude
            integration: anthropic
            ---
            kind: Integration
            slug: oai
            service: openai
            base_url: {fakes.openai.url}
            credentials: {{api_key: {{env: TEST_FAKE_OPENAI_KEY}}}}
            models:
              custom:
                - name: gpt-tiered
                  max_output_tokens: 1000
                  pricing:
                    input: 2
                    output: 8
                    service_tiers:
                      flex: {{input: 1, output: 4}}
                      priority: {{input: 3.5, output: 14}}
            ---
            kind: Provider
            slug: oai
            integration: oai
            """,
        "workspaces.yaml": f"""\
            kind: Workspace
            slug: team
            budgets: [{{limit: 100, unit: usd, period: monthly}}]
            api_keys: [{{name: k, sha256: "{sha256(TEAM_KEY)}"}}]
            """,
    }


@pytest.fixture(scope="module")
def gateway(fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("tiers")
    bundle = compile_catalog(write_catalog(root / "catalog", catalog(fakes)), root / "b.json")
    process = GatewayProcess(bundle, root / "gateway.log").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai_client(gateway) as c:
        yield c


def chat(client: openai.OpenAI, model: str, **kw: Any) -> Decimal:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=100, **kw
    )
    return Decimal(raw.headers["x-catalog-cost-usd"])


def test_one_hour_cache_writes_are_charged_at_their_price(
    gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI
) -> None:
    before = settled(gateway)
    used = Tokens(input=100, output=20, cache_read=400, cache_write=1000, cache_write_1h=2000)
    fakes.anthropic.script(Answer(usage=used))
    # by hand: 100 x 3 + 20 x 15 + 400 x 0.3 + 1000 x 3.75 + 2000 x 6 (1-hour) = 16,470
    expected = Decimal(16_470) / M
    assert chat(client, "@claude/claude-tiered") == expected == Decimal("0.01647")
    assert settled(gateway) - before == expected
    # the same answer streamed: the split arrives in message_start's usage
    fakes.anthropic.script(Answer(usage=used))
    stream = client.chat.completions.with_raw_response.create(
        model="@claude/claude-tiered", messages=[{"role": "user", "content": "hi"}],
        max_tokens=100, stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream.parse())
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 3500
    assert settled(gateway) - before == 2 * expected


def test_a_prompt_above_the_threshold_is_priced_wholly_at_the_tier(
    gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI
) -> None:
    before = settled(gateway)
    # 199,000 + 1,000 cache reads = 200,000 prompt tokens: not above, the base table
    fakes.anthropic.script(Answer(usage=Tokens(input=199_000, output=10, cache_read=1_000)))
    below = Decimal(199_000 * 3 + 10 * 15) + Decimal("1000") * Decimal("0.3")
    assert chat(client, "@claude/claude-tiered") == below / M == Decimal("0.59745")
    # one more cache-write token (1-hour): 200,001, above: everything at the tier's prices
    fakes.anthropic.script(
        Answer(usage=Tokens(input=199_000, output=10, cache_read=1_000, cache_write_1h=1))
    )
    above = Decimal(199_000 * 6) + Decimal("10") * Decimal("22.5") + 1_000 * Decimal("0.6") + 12
    assert chat(client, "@claude/claude-tiered") == above / M == Decimal("1.194837")
    assert settled(gateway) - before == (below + above) / M


@pytest.mark.parametrize(
    ("reported", "per_million"),
    [("flex", 1_000 * 1 + 200 * 4), ("default", 1_000 * 2 + 200 * 8), (None, 1_000 * 1 + 200 * 4)],
)
def test_flex_is_charged_at_the_tier_the_upstream_reports(
    gateway: GatewayProcess,
    fakes: Fakes,
    client: openai.OpenAI,
    reported: str | None,
    per_million: int,
) -> None:
    """Asked for flex: flex prices when the answer says flex, default prices when it says
    default, and (it says nothing) the requested flex."""
    before = settled(gateway)
    fakes.openai.script(Answer(usage=Tokens(input=1_000, output=200), service_tier=reported))
    cost = chat(client, "@oai/gpt-tiered", service_tier="flex")
    (rec,) = fakes.openai.requests
    assert rec.json["service_tier"] == "flex"  # passed upstream as asked
    assert cost == Decimal(per_million) / M
    assert settled(gateway) - before == cost


def test_a_client_cannot_ask_for_batch_prices(
    gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI
) -> None:
    """The gateway has no batch endpoint and no header or parameter selects batch prices."""
    fakes.openai.script(Answer(usage=Tokens(input=1_000, output=200)))
    cost = chat(client, "@oai/gpt-tiered", extra_headers={"x-catalog-batch": "true"},
                extra_body={"batch": True})  # fmt: skip
    assert cost == Decimal(1_000 * 2 + 200 * 8) / M
