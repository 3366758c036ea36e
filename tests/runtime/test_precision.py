"""Prices of up to 10 decimal places per 1M tokens (fees up to 16) charge exactly end to end:
money is integers of 1e-16 USD in the memory store, the Redis store (pairs of micro-USD and
a remainder below 10^10 units) and the leased Redis store; 11 places is E0205 (issue 15)."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_compiler.compiler import compile_catalog
from catalog_compiler.diagnostics import Diagnostic
from runtime import Estimate, Router, Store, Usage
from runtime.bundle.errors import amount_words
from runtime.bundle.load import Prices
from runtime.bundle.money import MAX_TOKENS, UNITS_PER_USD, Rates, dollars, usd
from runtime.limits.lua import LOW
from runtime.limits.memory import MemoryStore
from runtime.limits.redis_store import RedisStore, split_money
from runtime.limits.spec import BudgetSpec, ChainSpec
from tests.redis_server import RedisServer
from tests.runtime.conftest import OPENAI_PROVIDER, compile_files

# every field at the finest the compiler accepts, with digits in every place
PRICES = {
    "input": "0.0000000375",
    "output": "1234.5678901234",
    "cache_read": "0.0000000001",
    "cache_write": "3.0000000007",
    "per_request": "0.0000000000000003",
}
MODEL = """\
kind: Model
name: fine-priced
integration: openai-main
pricing:
{prices}
"""
CATALOG = {
    "catalog.yaml": "kind: Organization\nversion: 1\nname: P\n",
    "i.yaml": OPENAI_PROVIDER,
    "m.yaml": MODEL.format(prices="".join(f'  {k}: "{v}"\n' for k, v in PRICES.items())),
    "w.yaml": "kind: Workspace\nslug: team\n"
    "budgets: [{limit: 1000000, unit: usd, period: monthly}]\n",
}
BUDGET = "workspace/team|budget|usd/monthly"


def exact_cost(prices: dict[str, str], usage: Usage) -> Decimal:
    """The provider's price sheet, by hand: tokens x USD per 1M tokens / 10^6, plus the fee."""
    counts = {"input": usage.input_tokens, "output": usage.output_tokens,
              "cache_read": usage.cache_read_tokens, "cache_write": usage.cache_write_tokens}  # fmt: skip
    total = sum((n * Decimal(prices[k]) for k, n in counts.items()), Decimal(0))
    return total / 10**6 + Decimal(prices.get("per_request", "0"))


@pytest.fixture(params=["memory", "redis", "redis-leased"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        made: Store = MemoryStore()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        made = RedisStore(server.url, namespace=f"p-{uuid.uuid4().hex[:8]}",
                          lease_budgets=request.param == "redis-leased")  # fmt: skip
    yield made
    made.close()


def spent_exactly(store: Store, window: str, budget: str = BUDGET) -> int:
    """What a usd budget window was charged; a leased store first returns its holdings
    (its budget key counts what was granted, held or spent)."""
    if isinstance(store, RedisStore) and store.budget_leases is not None:
        store.budget_leases.tick(everything=True)
    return store.spent(budget, window)


def test_ten_places_compile_and_charge_exactly_in_every_store(tmp_path: Path, store: Store) -> None:
    router = Router.load(compile_files(tmp_path / "c", CATALOG), store)
    attempt = router.resolve("team", "@openai-prod/fine-priced").attempts[0]
    usage = Usage(input_tokens=123_457, output_tokens=9_876, cache_read_tokens=7,
                  cache_write_tokens=1_000_001)  # fmt: skip
    ticket = router.admit(attempt, Estimate(2_000_000, 20_000))
    cost = ticket.settle(usage)
    expected = exact_cost(PRICES, usage)
    # (123457 * 0.0000000375 + 9876 * 1234.5678901234 + 7 * 0.0000000001
    #  + 1000001 * 3.0000000007) / 10^6 + 3e-16: digits down to the 16th place survive
    assert expected == Decimal("15.1925954881883376")
    assert cost == expected and dollars(cost) == "15.1925954881883376"
    window = ticket.reservation.windows[0]
    assert spent_exactly(store, window) == expected * UNITS_PER_USD
    refund = router.admit(attempt, Estimate(10, 10))
    assert refund.settle(Usage(1, 0)) == Decimal("3.78E-14")  # the rest of the estimate refunded
    assert spent_exactly(store, window) == (expected + refund.cost) * UNITS_PER_USD
    if not (isinstance(store, RedisStore) and store.budget_leases is not None):
        (row,) = [r for r in router.usage("team") if r.kind == "budget"]
        assert row.spent == expected + refund.cost and row.reserved == 0
        assert row.to_json()["spent"] == "15.1925954881883754"


def refused(root: Path, prices: str) -> list[Diagnostic]:
    """The errors of CATALOG with the model's prices replaced (it must not compile)."""
    for rel, text in {**CATALOG, "m.yaml": MODEL.format(prices=prices)}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    compiled = compile_catalog(root)
    assert compiled.data is None
    return list(compiled.errors)


def test_eleven_places_is_e0205_at_the_price(tmp_path: Path) -> None:
    (error,) = refused(tmp_path, '  input: "0.00000000375"\n')
    assert error.code == "E0205"
    assert error.message == "`pricing.input`: price 0.00000000375 has more than 10 decimal places"
    assert (Path(error.span.file).name, error.span.line, error.span.column) == ("m.yaml", 5, 10)
    assert error.help is not None and "write 0.00375" in error.help  # per token, per 1M


def test_a_sixteen_place_fee_is_one_unit_and_seventeen_is_refused(tmp_path: Path) -> None:
    fee = '  input: "1"\n  output: "2"\n  per_request: "0.0000000000000001"\n'
    model = MODEL.format(prices=fee)
    bundle = compile_files(tmp_path / "ok", {**CATALOG, "m.yaml": model})
    router = Router.load(bundle, MemoryStore())
    attempt = router.resolve("team", "@openai-prod/fine-priced").attempts[0]
    assert router.admit(attempt, Estimate(0, 0)).settle(Usage()) == Decimal("1E-16")
    (error,) = refused(tmp_path / "bad", fee.replace("0.0", "0.00"))  # 17 places
    assert error.code == "E0205"
    assert error.message == (
        "`pricing.per_request`: per-request price 1e-17 has more than 16 decimal places"
    )


# -- laws over any price the compiler accepts ------------------------------------------------

PRICE = st.decimals(min_value=0, max_value=10_000, places=10, allow_nan=False)
FEE = st.decimals(min_value=0, max_value=100, places=16, allow_nan=False)
TOKENS = st.integers(0, MAX_TOKENS)


@settings(max_examples=500, deadline=None)
@given(st.tuples(PRICE, PRICE, PRICE, PRICE), FEE, st.tuples(TOKENS, TOKENS, TOKENS, TOKENS))
def test_the_integer_charge_is_the_exact_cost_times_ten_to_the_sixteen(
    prices: tuple[Decimal, ...], fee: Decimal, tokens: tuple[int, int, int, int]
) -> None:
    sheet = dict(zip(("input", "output", "cache_read", "cache_write"), map(str, prices),
                     strict=True), per_request=str(fee))  # fmt: skip
    usage = Usage(*tokens)
    charge = Rates.of(Prices(*prices, per_request=fee)).cost(usage)
    exact = exact_cost(sheet, usage)
    assert charge == exact * UNITS_PER_USD and usd(charge) == exact
    high, low = split_money(charge, True)
    assert 0 <= low < LOW and high * LOW + low == charge
    assert high < 2**53 and low < 2**53  # both exact as Lua doubles
    assert struct.unpack("<dd", struct.pack("<dd", high, low)) == (high, low)
    assert split_money(-charge, True) == (-high, -low)  # a refund, the same pair negated


@pytest.mark.parametrize("leased", [False, True], ids=["redis", "redis-leased"])
def test_redis_pairs_round_trip_any_charge_settle_and_refund(
    redis_server: RedisServer, leased: bool
) -> None:
    """Admit a reservation, settle it above or below (an excess, a refund), read the window
    back, and its usage report: always the exact integer, whatever the prices and tokens."""
    store = RedisStore(redis_server.url, namespace=f"p-{uuid.uuid4().hex[:8]}",
                       lease_budgets=leased)  # fmt: skip
    limit = 10**9 * UNITS_PER_USD  # the compiler's largest usd budget

    @settings(max_examples=60 if not leased else 30, deadline=None)
    @given(PRICE, FEE, TOKENS, TOKENS, TOKENS)
    def law(price: Decimal, fee: Decimal, reserved: int, used: int, cached: int) -> None:
        rates = Rates.of(Prices(price, price, price, price, fee))
        held = rates.cost(Usage(reserved, reserved))
        cost = rates.cost(Usage(used, 0, cached))
        assert cost == exact_cost(dict.fromkeys(("input", "output", "cache_read", "cache_write"),
                                                str(price)) | {"per_request": str(fee)},
                                  Usage(used, 0, cached)) * UNITS_PER_USD  # fmt: skip
        # a budget of its own per example: one window holds at most the largest charges
        key = f"workspace/{uuid.uuid4().hex[:8]}|budget|usd/monthly"
        budget = BudgetSpec(key, key.split("|")[0], "usd", "monthly", limit, None)
        spec = ChainSpec((budget.counter,), (), (budget,), (), None)
        reservation = store.admit(f"r-{uuid.uuid4().hex}", spec, 2 * reserved, held)
        assert store.settle(reservation, used + cached, cost)
        window = reservation.windows[0]
        assert spent_exactly(store, window, key) == cost
        charged, _ = store.snapshot([(budget, window)], (), ()).budgets[0]
        assert charged == cost  # what Router.usage() reports, as usd(charged)

    try:
        law()
    finally:
        store.close()


@given(st.decimals(min_value=0, max_value=10**9, places=16, allow_nan=False, allow_infinity=False))
def test_an_amount_left_reads_plainly_and_exactly(amount: Decimal) -> None:
    """A budget with nothing left said `0E-16 USD left`."""
    text = amount_words(amount, "usd").removesuffix(" USD")
    assert "E" not in text and Decimal(text) == amount
