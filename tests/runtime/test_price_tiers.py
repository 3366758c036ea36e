"""Tiered and conditional prices through the runtime's public API (issue 15): long-context
tiers, batch, service tiers, regional providers and workspace chargeback tiers. Every
expected cost is computed by hand from the catalog in the test (USD per 1M tokens)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import Router
from runtime.bundle.errors import InvalidRequest
from runtime.bundle.load import Prices, PriceTier
from runtime.bundle.money import Estimate, Usage, reserved_usage, usd
from runtime.bundle.price_tables import RateCard

M = Decimal(1_000_000)

CATALOG = {
    "catalog.yaml": """\
        kind: Organization
        version: 1
        name: Tiers
        """,
    "providers.yaml": """\
        kind: Integration
        slug: oai
        service: openai
        credentials: {api_key: {env: OPENAI_API_KEY}}
        models:
          custom:
            - name: long
              max_output_tokens: 1000
              pricing:
                input: 3
                output: 15
                cache_read: 0.3
                cache_write: 3.75
                cache_write_1h: 6
                tiers:
                  - {above_input_tokens: 200000, input: 6, output: 22.5, cache_read: 0.6,
                     cache_write: 7.5, cache_write_1h: 12}
                  - {above_input_tokens: 500000, input: 9}
                batch: {input: 1.5, output: 7.5}
                service_tiers:
                  flex: {input: 1.5, output: 7.5}
                  priority: {input: 5, output: 25}
        ---
        kind: Provider
        slug: oai
        integration: oai
        ---
        kind: Integration
        slug: aws-eu
        service: bedrock
        credentials:
          aws_access_key_id: {env: AWS_ACCESS_KEY_ID}
          aws_secret_access_key: {env: AWS_SECRET_ACCESS_KEY}
        settings: {region: eu-west-1}
        models:
          custom:
            - name: house-model
              pricing: {input: 3, output: 15, regions: {eu-west-1: {input: 3.3, output: 16.5},
                                                         ap-south-1: {input: 9}}}
        ---
        kind: Provider
        slug: aws-eu
        integration: aws-eu
        ---
        kind: Integration
        slug: aws-us
        service: bedrock
        credentials:
          aws_access_key_id: {env: AWS_ACCESS_KEY_ID}
          aws_secret_access_key: {env: AWS_SECRET_ACCESS_KEY}
        settings: {region: us-east-1}
        models:
          custom:
            - name: house-model
              pricing: {input: 3, output: 15, regions: {eu-west-1: {input: 3.3, output: 16.5},
                                                         ap-south-1: {input: 9}}}
        ---
        kind: Provider
        slug: aws-us
        integration: aws-us
        """,
    "workspaces.yaml": """\
        kind: Workspace
        slug: team
        ---
        kind: Workspace
        slug: finance
        pricing:   # chargeback: its own rates, tiers included
          - model: "@oai/long"
            input: 4
            output: 20
            tiers: [{above_input_tokens: 100000, input: 8}]
        ---
        kind: Workspace
        slug: lab
        pricing: [{model: "*", free: true}]
        ---
        kind: Workspace
        slug: flat
        pricing: [{model: "@oai/long", input: 2, output: 10}]  # no tiers of its own
        """,
}


@pytest.fixture
def router(make_router: Callable[..., Router]) -> Router:
    return make_router(CATALOG)


def settle(router: Router, workspace: str, model: str, usage: Usage, *,
           estimate: Estimate | None = None, batch: bool = False,
           params: Mapping[str, object] | None = None) -> tuple[Decimal, Decimal]:  # fmt: skip
    """(reserved, charged) USD for one request."""
    plan = router.resolve(workspace=workspace, model=model, params=params)
    with router.admit(plan.attempts[0], estimate or Estimate(0, 0), batch=batch) as ticket:
        return ticket.reserved, ticket.settle(usage)


def test_just_below_and_just_above_a_long_context_threshold(router: Router) -> None:
    below = Usage(
        input_tokens=150_000,
        output_tokens=100,
        cache_read_tokens=40_000,
        cache_write_tokens=9_999,
        cache_write_1h_tokens=1,
    )  # 200,000 prompt tokens
    by_hand = (150_000 * 3 + 100 * 15 + 40_000 * Decimal("0.3") + 9_999 * Decimal("3.75")
               + 1 * 6) / M  # fmt: skip
    assert settle(router, "team", "@oai/long", below)[1] == by_hand == Decimal("0.50100225")
    above = Usage(
        input_tokens=150_001,
        output_tokens=100,
        cache_read_tokens=40_000,
        cache_write_tokens=9_999,
        cache_write_1h_tokens=1,
    )  # 200,001: the whole at the tier
    by_hand = (150_001 * 6 + 100 * Decimal("22.5") + 40_000 * Decimal("0.6")
               + 9_999 * Decimal("7.5") + 1 * 12) / M  # fmt: skip
    assert settle(router, "team", "@oai/long", above)[1] == by_hand == Decimal("1.0012605")
    # above the second tier: its input price, the rest as the base table (it gives no more)
    far = Usage(input_tokens=600_000, output_tokens=10)
    assert settle(router, "team", "@oai/long", far)[1] == Decimal(600_000 * 9 + 10 * 15) / M


def test_batch_prices_through_the_runtime_api(router: Router) -> None:
    used = Usage(input_tokens=10_000, output_tokens=2_000, cache_read_tokens=1_000)
    reserved, charged = settle(router, "team", "@oai/long", used,
                               estimate=Estimate(11_000, 2_000), batch=True)  # fmt: skip
    # batch gives input and output; cache reads keep the base's 0.3
    by_hand = (10_000 * Decimal("1.5") + 2_000 * Decimal("7.5") + 1_000 * Decimal("0.3")) / M
    assert charged == by_hand == Decimal("0.0303")
    # reserved: 11,000 prompt tokens at batch's dearest prompt price (cache_write_1h 6: the
    # base's, a batch table gives no cache write) and 2,000 output tokens at 7.5
    assert reserved == (11_000 * 6 + 2_000 * Decimal("7.5")) / M >= charged
    # the same usage without batch: the base table
    assert (
        settle(router, "team", "@oai/long", used)[1]
        == (10_000 * 3 + 2_000 * 15 + 1_000 * Decimal("0.3")) / M
    )


@pytest.mark.parametrize(
    ("requested", "reported", "per_million"),
    [
        ("flex", "flex", 10_000 * Decimal("1.5") + 1_000 * Decimal("7.5")),
        ("flex", "default", 10_000 * 3 + 1_000 * 15),
        ("flex", None, 10_000 * Decimal("1.5") + 1_000 * Decimal("7.5")),
        ("priority", "priority", 10_000 * 5 + 1_000 * 25),
        ("auto", "default", 10_000 * 3 + 1_000 * 15),
        ("auto", "priority", 10_000 * 5 + 1_000 * 25),
        (None, None, 10_000 * 3 + 1_000 * 15),
        ("default", "default", 10_000 * 3 + 1_000 * 15),
    ],
)
def test_service_tiers_charge_what_the_upstream_reports(
    router: Router, requested: str | None, reported: str | None, per_million: Decimal
) -> None:
    params = {"service_tier": requested} if requested else None
    used = Usage(input_tokens=10_000, output_tokens=1_000, service_tier=reported)
    reserved, charged = settle(router, "team", "@oai/long", used,
                               estimate=Estimate(10_000, 1_000), params=params)  # fmt: skip
    assert charged == per_million / M
    assert reserved >= charged  # the estimate bounds the usage


def test_a_regional_provider_is_charged_at_its_regions_table(router: Router) -> None:
    used = Usage(input_tokens=1_000, output_tokens=100)
    eu = settle(router, "team", "@aws-eu/house-model", used)[1]
    assert eu == (1_000 * Decimal("3.3") + 100 * Decimal("16.5")) / M == Decimal("0.00495")
    # us-east-1 has no table of its own: the base prices
    assert (
        settle(router, "team", "@aws-us/house-model", used)[1] == Decimal(1_000 * 3 + 100 * 15) / M
    )
    # the bundle holds the resolved table only: no `regions` reaches the runtime
    assert router.bundle.providers["aws-eu"].models["house-model"].prices.input == Decimal("3.3")


def test_workspace_chargeback_tiers(router: Router) -> None:
    used = Usage(input_tokens=100_001, output_tokens=10)
    # finance's own tier: above 100,000 its input is 8; its output 20 (its base) at every
    # tier; the catalog's tiers (200,000+) are replaced by the workspace's
    assert settle(router, "finance", "@oai/long", used)[1] == Decimal(100_001 * 8 + 10 * 20) / M
    small = Usage(input_tokens=100_000, output_tokens=10)
    assert settle(router, "finance", "@oai/long", small)[1] == Decimal(100_000 * 4 + 10 * 20) / M
    # `free: true` drops every variant too: nothing, even above a threshold or as a batch
    big = Usage(input_tokens=300_000, output_tokens=10, cache_write_1h_tokens=5)
    assert settle(router, "lab", "@oai/long", big)[1] == 0
    assert settle(router, "lab", "@oai/long", big, batch=True)[1] == 0


@pytest.mark.parametrize("prompt", [199_999, 200_000, 200_001, 500_001])
def test_a_rule_without_tiers_holds_its_prices_at_every_length(router: Router,
                                                               prompt: int) -> None:  # fmt: skip
    """A review: a chargeback rule without `tiers` stopped applying above the catalog's
    threshold, where the catalog's tier prices replaced its own (one token more cost nine
    times as much). Its own fields hold at every tier, as a variant's do; the fields it does
    not give keep the catalog tier's price (cache_read: 0.6 above 200,000; the 500,000 tier
    gives only `input`, so the base's 0.3 above it)."""
    used = Usage(input_tokens=prompt - 1_000, output_tokens=10, cache_read_tokens=1_000)
    cache_read = Decimal("0.6") if 200_000 < prompt <= 500_000 else Decimal("0.3")
    expected = ((prompt - 1_000) * 2 + 10 * 10 + 1_000 * cache_read) / M
    assert settle(router, "flat", "@oai/long", used)[1] == expected


@pytest.mark.parametrize(("tier", "reported"), [("flex", "flex"), ("priority", None)])
def test_a_rule_without_service_tiers_holds_its_prices_in_each(router: Router, tier: str,
                                                               reported: str | None) -> None:  # fmt: skip
    used = Usage(input_tokens=10_000, output_tokens=1_000, service_tier=reported)
    charged = settle(router, "flat", "@oai/long", used, estimate=Estimate(10_000, 1_000),
                     params={"service_tier": tier})[1]  # fmt: skip
    assert charged == Decimal(10_000 * 2 + 1_000 * 10) / M


def test_one_hour_cache_writes_count_and_are_bounded() -> None:
    assert Usage(cache_write_1h_tokens=7, input_tokens=1).tokens == 8
    for bad in (-1, 10**9 + 1, True, 1.0, "3"):
        with pytest.raises(InvalidRequest, match="cache_write_1h_tokens"):
            Usage(cache_write_1h_tokens=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="service_tier"):
        Usage(service_tier="scale")


# -- laws -----------------------------------------------------------------------------------
_price = st.decimals(min_value=0, max_value=10_000, places=6, allow_nan=False)
_tokens = st.integers(min_value=0, max_value=10**6)


@st.composite
def _tables(draw: st.DrawFn) -> Prices:
    """A price with up to three tiers and flex/priority/batch variants (any prices: a tier
    may even be cheaper than the base)."""

    def table() -> dict[str, Decimal]:
        return {k: draw(_price) for k in ("input", "output", "cache_read", "cache_write",
                                          "cache_write_1h") if draw(st.booleans())}  # fmt: skip

    thresholds = sorted(set(draw(st.lists(st.integers(0, 2 * 10**6), max_size=3))))
    tiers = tuple(PriceTier(n, Prices.of_fields(table())) for n in thresholds)
    variants = {name: Prices.of_fields(table()) for name in ("flex", "priority")
                if draw(st.booleans())}  # fmt: skip
    base = Prices.of_fields({**table(), "input": draw(_price), "output": draw(_price)})
    batch = Prices.of_fields(table()) if draw(st.booleans()) else None
    return Prices(**base.fields(), tiers=tiers, batch=batch,
                  service_tiers=tuple(sorted(variants.items())))  # fmt: skip


_usages = st.builds(Usage, _tokens, _tokens, _tokens, _tokens, _tokens)
_requested = st.sampled_from([None, "default", "flex", "priority", "auto"])
# what an upstream may report for each request: the asked tier, the default, or nothing
_ENDS = {None: (None, "default"), "default": (None, "default"), "flex": (None, "flex", "default"),
         "priority": (None, "priority", "default"), "auto": (None, "priority", "default")}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_tables(), _usages, _requested, st.data())
def test_the_reservation_is_never_below_the_final_charge(
    prices: Prices, used: Usage, requested: str | None, data: st.DataObject
) -> None:
    """For every usage an estimate bounds (its prompt tokens and output), whatever tier the
    upstream reports of those the request allows: reserved >= charged."""
    card = RateCard.of(prices)
    estimate = Estimate(used.prompt_tokens + data.draw(_tokens), used.output_tokens)
    reserved = card.reserve(reserved_usage(estimate, None), requested)
    served = data.draw(st.sampled_from(_ENDS[requested]))
    final = Usage(used.input_tokens, used.output_tokens, used.cache_read_tokens,
                  used.cache_write_tokens, used.cache_write_1h_tokens, served)  # fmt: skip
    assert reserved >= card.cost(final, requested)
    batch = card.reserve(reserved_usage(estimate, None), requested, batch=True)
    assert batch >= card.cost(final, requested, batch=True)


@settings(max_examples=300, deadline=None)
@given(_tables(), _usages, st.sampled_from(["input_tokens", "output_tokens", "cache_read_tokens",
                                            "cache_write_tokens", "cache_write_1h_tokens"]),
       st.integers(1, 1000), _requested)  # fmt: skip
def test_cost_is_monotone_in_each_count_within_a_tier(
    prices: Prices, used: Usage, name: str, more: int, requested: str | None
) -> None:
    card = RateCard.of(prices)
    bigger = Usage(**{**{f: getattr(used, f) for f in _COUNTS}, name: getattr(used, name) + more})
    if card.table(bigger, requested) is not card.table(used, requested):
        return  # crossed a threshold: another table (the law holds within one)
    assert card.cost(bigger, requested) >= card.cost(used, requested)


_COUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
           "cache_write_1h_tokens")  # fmt: skip


def test_a_flat_price_costs_as_before() -> None:
    """No variants: the card is the flat `Rates`, and a 1-hour write without its own price
    costs the 5-minute price."""
    card = RateCard.of(Prices(Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75")))
    assert card.flat is not None
    used = Usage(10, 20, 30, 40, 50)
    assert usd(card.cost(used)) == (10 * 3 + 20 * 15 + 30 * Decimal("0.3")
                                     + 90 * Decimal("3.75")) / M  # fmt: skip
