"""Money and counts from clients are validated at the door, in both stores: estimates and
usage take plain non-negative ints within MAX_TOKENS, request ids are short and safe, a
live or settled id is never admitted again, and settlement is idempotent.

Probes (see the report): 6 Estimate/Usage fields x 13 hostile values, 6 x 2 bounds, a
hypothesis law over arbitrary values, 4 wrong-typed estimate/usage objects x 2 stores,
11 hostile request ids x 2 stores, reuse/settle-twice scenarios x 2 stores, debt cap x 2."""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import Estimate, InvalidRequest, RateLimited, Router, Store, Usage
from runtime.bundle.money import MAX_TOKENS, usd
from runtime.bundle.periods import window_at
from runtime.limits.memory import MemoryStore
from runtime.limits.redis_store import RedisStore
from tests.redis_server import RedisServer
from tests.runtime.conftest import OPENAI_PROVIDER, compile_files

FIELDS = (
    ("Estimate", "input_tokens"),
    ("Estimate", "max_tokens"),
    ("Usage", "input_tokens"),
    ("Usage", "output_tokens"),
    ("Usage", "cache_read_tokens"),
    ("Usage", "cache_write_tokens"),
)
HOSTILE: tuple[Any, ...] = (
    -1,
    -(10**30),
    10**30,
    MAX_TOKENS + 1,
    2**53,
    10**5000,  # more digits than int -> str allows: the message must not try
    1.5,
    float("nan"),
    math.inf,
    True,
    "5",
    Decimal(5),
    [],
)
ORG = "kind: Organization\nversion: 1\nname: Money\n"
LIMITS = """\
budgets:
  - {limit: 5000, unit: usd, period: daily}
  - {limit: 1000000, unit: tokens, period: daily}
rate_limits: [{limit: 1000, unit: tokens, per: minute}]
concurrency: 5
"""
_n = itertools.count()


def build(kind: str, value: Any) -> Estimate | Usage:
    owner, field = kind
    if owner == "Estimate":
        base: dict[str, Any] = {"input_tokens": 1, "max_tokens": 1}
        return Estimate(**{**base, field: value})
    return Usage(**{field: value})


def shown(value: Any) -> str:
    return type(value).__name__ + (repr(value)[:12] if not isinstance(value, int) else "")


@pytest.mark.parametrize("value", HOSTILE, ids=shown)
@pytest.mark.parametrize("kind", FIELDS, ids=lambda k: ".".join(k))
def test_every_field_refuses_every_hostile_value(kind: tuple[str, str], value: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        build(kind, value)
    err = caught.value
    assert err.status == 400 and err.field == ".".join(kind)
    assert ".".join(kind) in str(err) and len(str(err)) < 200


def test_none_is_a_missing_max_tokens_and_nothing_else() -> None:
    assert Estimate(1, None).max_tokens is None
    for owner, field in FIELDS:
        if field != "max_tokens":
            with pytest.raises(InvalidRequest):
                build((owner, field), None)


@pytest.mark.parametrize("kind", FIELDS, ids=lambda k: ".".join(k))
def test_bounds_are_inclusive(kind: tuple[str, str]) -> None:
    assert getattr(build(kind, 0), kind[1]) == 0
    assert getattr(build(kind, MAX_TOKENS), kind[1]) == MAX_TOKENS


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(FIELDS),
    value=st.one_of(
        st.integers(), st.floats(allow_nan=True), st.booleans(), st.text(max_size=5),
        st.decimals(allow_nan=True), st.fractions(), st.binary(max_size=3),
    ),
)  # fmt: skip
def test_a_field_is_accepted_exactly_when_it_is_an_int_in_bounds(
    kind: tuple[str, str], value: Any
) -> None:
    valid = type(value) is int and 0 <= value <= MAX_TOKENS
    try:
        built = build(kind, value)
    except InvalidRequest as err:
        assert not valid and err.status == 400
    else:
        assert valid and getattr(built, kind[1]) == value


# -- through the router, in both stores ----------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def router(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Router]:
    data = compile_files(tmp_path / f"c{next(_n)}", {
        "catalog.yaml": ORG, "i.yaml": OPENAI_PROVIDER,
        "w.yaml": "kind: Workspace\nslug: team\n" + LIMITS,
    })  # fmt: skip
    if request.param == "memory":
        store: Store = MemoryStore()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        store = RedisStore(server.url, namespace=f"m-{uuid.uuid4().hex[:8]}")
    yield Router.load(data, store)
    store.close()


def attempt(router: Router):  # type: ignore[no-untyped-def]
    return router.resolve("team", "@openai-prod/gpt-4o").attempts[0]


def spent(router: Router, unit: str) -> int:
    store = router.store
    assert isinstance(store, MemoryStore | RedisStore)
    day = window_at("daily", time.time_ns(), None)[0]
    return store.spent(f"workspace/team|budget|{unit}/daily", day)


def inflight(router: Router) -> int:
    store = router.store
    assert isinstance(store, MemoryStore | RedisStore)
    return store.inflight("workspace/team|inflight")


@pytest.mark.parametrize("wrong", [{"input_tokens": 5}, (5, 5), 5, "5"], ids=repr)
def test_wrong_objects_for_estimate_and_usage(router: Router, wrong: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        router.admit(attempt(router), wrong)
    assert caught.value.field == "estimate"
    ticket = router.admit(attempt(router), Estimate(10, 10))
    with pytest.raises(InvalidRequest) as caught:
        ticket.settle(wrong)
    assert caught.value.field == "usage"
    assert ticket.settle(Usage(10, 5)) > 0
    assert spent(router, "tokens") == 15 and inflight(router) == 0


BAD_IDS: tuple[Any, ...] = (
    "", "a" * 129, "a b", "x\n", "{other}:key", "é", "a*", "../x", b"bytes", 5, ["id"],
)  # fmt: skip


@pytest.mark.parametrize("rid", BAD_IDS, ids=lambda v: repr(v)[:14])
def test_hostile_request_ids(router: Router, rid: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        router.admit(attempt(router), Estimate(1, 1), request_id=rid)
    assert caught.value.status == 400 and caught.value.field == "request_id"
    assert spent(router, "tokens") == 0 and inflight(router) == 0


def test_good_request_ids(router: Router) -> None:
    for rid in ("a" * 128, str(uuid.uuid4()), "req_01H:abc.def-9"):
        router.admit(attempt(router), Estimate(1, 1), request_id=rid).settle(Usage(1, 1))
    assert spent(router, "tokens") == 6


def test_a_live_id_is_refused_and_changes_nothing(router: Router) -> None:
    first = router.admit(attempt(router), Estimate(100, 100), request_id="order-1")
    before = (spent(router, "tokens"), spent(router, "usd"), inflight(router))
    for _ in range(3):
        with pytest.raises(InvalidRequest) as caught:
            router.admit(attempt(router), Estimate(100, 100), request_id="order-1")
        assert caught.value.status == 409 and "not settled" in str(caught.value)
    assert (spent(router, "tokens"), spent(router, "usd"), inflight(router)) == before
    first.settle(Usage(100, 10))
    assert spent(router, "tokens") == 110 and inflight(router) == 0  # the lease came back


def test_a_settled_id_is_not_admitted_again(router: Router) -> None:
    router.admit(attempt(router), Estimate(10, 10), request_id="order-2").settle(Usage(10, 10))
    with pytest.raises(InvalidRequest) as caught:
        router.admit(attempt(router), Estimate(10, 10), request_id="order-2")
    assert caught.value.status == 409 and "single-use" in str(caught.value)
    assert spent(router, "tokens") == 20 and inflight(router) == 0


def test_settling_twice_charges_once(router: Router) -> None:
    ticket = router.admit(attempt(router), Estimate(300, 300))
    cost = ticket.settle(Usage(300, 100))
    assert ticket.settle(Usage(900, 900)) == cost  # the ticket remembers
    assert router.store.settle(ticket.reservation, 1800, 10**12) is False  # the store too
    assert spent(router, "tokens") == 400 and inflight(router) == 0
    assert usd(spent(router, "usd")) == (300 * Decimal("2.5") + 100 * 10) / 10**6  # gpt-4o


def test_negative_or_fractional_money_never_reaches_a_counter(router: Router) -> None:
    """The examples of the issue: each is refused before anything is charged."""
    for make in (
        lambda: Estimate(10, -(10**9)),  # reserved negative dollars
        lambda: Usage(-5),  # drove a budget below zero
        lambda: Usage(1.5, 2),  # put floats into money counters
        lambda: Usage(10**30),  # locked a rate limit for 10^25 s
    ):
        with pytest.raises(InvalidRequest):
            make()
    assert spent(router, "usd") == 0 and spent(router, "tokens") == 0


def test_a_wild_usage_leaves_a_bucket_at_most_one_bucket_in_debt(router: Router) -> None:
    """1000 tokens a minute; a request that used 4 * 10^9 tokens more than it estimated
    leaves the bucket empty for about a minute more, not for 7,600 years."""
    ticket = router.admit(attempt(router), Estimate(1, 1))
    ticket.settle(Usage(MAX_TOKENS, MAX_TOKENS, MAX_TOKENS, MAX_TOKENS))
    with pytest.raises(RateLimited) as caught:
        router.admit(attempt(router), Estimate(1, 0))
    assert caught.value.retry_after is not None and 59 < caught.value.retry_after <= 60.1
