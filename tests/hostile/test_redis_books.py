"""Redis keeps exact books when the world misbehaves, on a real redis-server: clients whose
clocks are off by days or months, counters flushed or deleted between admission and
settlement, servers that may evict, and several skewed processes racing for one budget.

Probes (see the report): the scripts' calendar against periods.py (hypothesis, 400 seconds
x 4 periods, plus 24 boundary seconds x 4 periods); 29 skewed clients (4 periods x 6 skews
around a boundary, `none` x 5), 15 admissions each; 4 flushes (FLUSHALL and FLUSHDB
fail-closed, FLUSHALL fail-open, FLUSHALL on the async path); 4 deleted or shrunk counters
(a budget key under each policy, a bucket key, a refund past zero); 6 eviction/CONFIG
set-ups, each refused one probed sync and async twice and then with "warn"; 1 race of two
processes with opposite skews (200 attempts at a budget of 60)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import multiprocessing
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import BudgetExceeded, Estimate, Router, StoreUnavailable, Usage
from runtime.bundle.periods import NS_PER_DAY, epoch_day, kind, span
from runtime.limits.lua import FOREVER, SPAN
from runtime.limits.redis_store import RedisStore
from tests.redis_server import RedisServer, free_port
from tests.runtime.conftest import OPENAI_PROVIDER, compile_files

EPOCH = "2026-01-07"
ORG = f'kind: Organization\nversion: 1\nname: Books\nepoch: "{EPOCH}"\n'
PERIODS = ("daily", "weekly", "monthly", "30d", "none")
DAY_S = 86_400


def namespace() -> str:
    return f"b-{uuid.uuid4().hex[:8]}"


def bundle(tmp: Path, workspace_limits: str, org_limits: str = "") -> bytes:
    return compile_files(tmp / uuid.uuid4().hex[:6], {
        "catalog.yaml": ORG + org_limits, "i.yaml": OPENAI_PROVIDER,
        "w.yaml": "kind: Workspace\nslug: team\n" + workspace_limits,
    })  # fmt: skip


def team(router: Router):  # type: ignore[no-untyped-def]
    return router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]


def server_now(client: Any) -> int:
    secs, _ = client.time()
    return int(secs)


# -- the scripts' calendar is periods.py's ---------------------------------------------------


def lua_span(client: Any, period: str, secs: int) -> tuple[str, int | None]:
    """The window label and end (unix s) the scripts compute for `period` at `secs`."""
    code, n = kind(period)
    guess = f"{{x}}:b:c|budget|usd/{period}|" + span(period, 0, EPOCH)[0]  # any other window
    key, label, last = client.eval(SPAN, 1, guess, code, n, epoch_day(EPOCH), secs)
    assert key.decode() == guess.rsplit("|", 1)[0] + "|" + label.decode()
    return label.decode(), int(last)


def python_span(period: str, secs: int) -> tuple[str, int | None]:
    label, _, last = span(period, secs // DAY_S, EPOCH)
    return label, None if last is None else last * DAY_S


@settings(max_examples=400, deadline=None)
@given(secs=st.integers(0, 7_258_118_399))  # 1970 .. 2199
def test_the_scripts_calendar_matches_periods(redis_server: RedisServer, secs: int) -> None:
    client = redis_server.client()
    for period in PERIODS[:4]:
        assert lua_span(client, period, secs) == python_span(period, secs), (period, secs)


def boundary_seconds() -> list[int]:
    """The last and first second around midnights that end days, ISO weeks, months, years
    (leap and ISO-53-week years among them), and 30-day windows from the epoch."""
    days = [dt.date(2026, 11, 30), dt.date(2027, 1, 1), dt.date(2026, 12, 28), dt.date(2024, 2, 29),
            dt.date(2024, 3, 1), dt.date(2021, 1, 4), dt.date(2020, 12, 28), dt.date(2100, 3, 1),
            dt.date(2026, 1, 7), dt.date(2026, 2, 6), dt.date(1970, 1, 5), dt.date(2032, 1, 1)]  # fmt: skip
    out = []
    for day in days:
        midnight = (day - dt.date(1970, 1, 1)).days * DAY_S
        out += [midnight - 1, midnight]
    return out


@pytest.mark.parametrize("secs", boundary_seconds())
def test_the_scripts_calendar_at_boundaries(redis_server: RedisServer, secs: int) -> None:
    client = redis_server.client()
    for period in PERIODS[:4]:
        assert lua_span(client, period, secs) == python_span(period, secs), (period, secs)


# -- clients with skewed clocks ---------------------------------------------------------------


def boundary_skews(period: str, now_s: int) -> list[int]:
    """Client clock offsets (ns) that put it just before the server's window starts (a
    lagging clock) and just after it ends (one running ahead), days and months away."""
    _, first, last = span(period, now_s // DAY_S, EPOCH)
    skews = [-40 * NS_PER_DAY, 3 * NS_PER_DAY, -NS_PER_DAY, 400 * NS_PER_DAY]
    skews.append((first * DAY_S - 1 - now_s) * 10**9)  # the last second of the window before
    if last is not None:
        skews.append((last * DAY_S - now_s) * 10**9)  # the first second of the window after
    return skews


@pytest.mark.parametrize("period", (*PERIODS[:4], "none"))
def test_a_skewed_client_neither_over_admits_nor_writes_short_lived_keys(
    tmp_path: Path, redis_server: RedisServer, period: str
) -> None:
    limit = 5
    data = bundle(tmp_path, f"budgets: [{{limit: {limit}, unit: requests, period: {period}}}]\n")
    client = redis_server.client()
    now_s = server_now(client)
    truth, _, truth_last = span(period, now_s // DAY_S, EPOCH)
    for skew in boundary_skews(period, now_s):
        ns = namespace()
        store = RedisStore(redis_server.url, namespace=ns)
        store.clock = lambda skew=skew: time.time_ns() + skew  # type: ignore[misc]
        router = Router.load(data, store)
        admitted = 0
        for _ in range(3 * limit):
            try:
                ticket = router.admit(team(router), Estimate(1, 1))
            except BudgetExceeded:
                continue
            admitted += 1
            assert ticket.reservation.windows == (truth,)  # settlement charges the same key
            ticket.settle(Usage(1, 1))
        assert admitted == limit, (period, skew)
        keys = [k.decode() for k in client.keys(f"{{{ns}}}:b:*")]
        assert keys == [f"{{{ns}}}:b:workspace/team|budget|requests/{period}|{truth}"]
        # deleted a day after the server's window ends, not the client's; never by a TTL
        deleted_at = client.zscore(f"{{{ns}}}:w", keys[0])
        assert deleted_at == (FOREVER if truth_last is None else truth_last * DAY_S + DAY_S)
        assert client.ttl(keys[0]) == -1
        assert store.spent(f"workspace/team|budget|requests/{period}", truth) == limit


def test_opening_a_window_deletes_windows_whose_time_has_come(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    data = bundle(tmp_path, "budgets: [{limit: 5, unit: requests, period: daily}]\n")
    ns = namespace()
    client = redis_server.client()
    old = [f"{{{ns}}}:b:workspace/team|budget|requests/daily|2020-01-0{d}" for d in (1, 2)]
    for key in old:
        client.set(key, b"x")
    client.zadd(f"{{{ns}}}:w", {old[0]: 1_577_923_200, old[1]: server_now(client) + 60})
    router = Router.load(data, RedisStore(redis_server.url, namespace=ns))
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    assert client.exists(old[0]) == 0 and client.zscore(f"{{{ns}}}:w", old[0]) is None
    assert client.exists(old[1]) == 1  # its time has not come


def test_a_skewed_client_learns_the_server_clock(tmp_path: Path, redis_server: RedisServer) -> None:
    data = bundle(tmp_path, "budgets: [{limit: 100, unit: requests, period: monthly}]\n")
    store = RedisStore(redis_server.url, namespace=namespace())
    store.clock = lambda: time.time_ns() - 45 * NS_PER_DAY  # type: ignore[method-assign]
    router = Router.load(data, store)
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    assert abs(store._skew_ns - 45 * NS_PER_DAY) < 5 * 10**9
    plan = store.plan(team(router).limits, store._day())
    assert plan.windows[0] == span("monthly", server_now(redis_server.client()) // DAY_S, None)[0]


def race(url: str, data: bytes, ns: str, skew_ns: int, threads: int, rounds: int) -> int:
    """One process of the race: a store whose clock is off by `skew_ns`."""
    import threading

    store = RedisStore(url, namespace=ns, max_connections=threads)
    store.clock = lambda: time.time_ns() + skew_ns  # type: ignore[method-assign]
    router = Router.load(data, store)
    attempt = team(router)
    admitted = [0]
    lock = threading.Lock()

    def run() -> None:
        for _ in range(rounds):
            try:
                ticket = router.admit(attempt, Estimate(3, 2))
            except BudgetExceeded:
                continue
            ticket.settle(Usage(3, 1))
            with lock:
                admitted[0] += 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    store.close()
    return admitted[0]


def test_two_processes_with_opposite_skews_share_one_budget_exactly(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    data = bundle(tmp_path, "budgets:\n  - {limit: 60, unit: requests, period: daily}\n"
                  "  - {limit: 400, unit: tokens, period: monthly}\n")  # fmt: skip
    ns = namespace()
    ctx = multiprocessing.get_context("spawn")
    skews = (-40 * NS_PER_DAY, 2 * NS_PER_DAY)
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        futures = [pool.submit(race, redis_server.url, data, ns, s, 4, 25) for s in skews]
        admitted = sum(f.result() for f in futures)
    now_day = server_now(redis_server.client()) // DAY_S
    store = RedisStore(redis_server.url, namespace=ns)
    assert admitted == 60  # 200 tried, the daily budget holds exactly
    day, month = span("daily", now_day, None)[0], span("monthly", now_day, None)[0]
    assert store.spent("workspace/team|budget|requests/daily", day) == 60
    assert store.spent("workspace/team|budget|tokens/monthly", month) == 60 * 4


# -- counters that vanish --------------------------------------------------------------------

LIMITS = "budgets: [{limit: 100, unit: tokens, period: daily}]\nconcurrency: 4\n"
ORG_LIMITS = "rate_limits: [{limit: 1000, unit: requests, per: day}]\n"


def books(tmp_path: Path, url: str, **options: Any) -> tuple[Router, RedisStore, list[str]]:
    seen: list[str] = []
    store = RedisStore(url, namespace=namespace(), on_loss=lambda e: seen.append(str(e)),
                       **options)  # fmt: skip
    return Router.load(bundle(tmp_path, LIMITS, ORG_LIMITS), store), store, seen


def tokens_spent(store: RedisStore) -> int:
    day = span("daily", server_now(store.client) // DAY_S, None)[0]
    return store.spent("workspace/team|budget|tokens/daily", day)


def budget_key(store: RedisStore) -> str:
    day = span("daily", server_now(store.client) // DAY_S, None)[0]
    return f"{store.tag}:b:workspace/team|budget|tokens/daily|{day}"


@pytest.mark.parametrize("flush", ["flushall", "flushdb"])
def test_a_flush_between_admit_and_settle_fails_closed_visibly(
    tmp_path: Path, own_redis: RedisServer, flush: str
) -> None:
    router, store, seen = books(tmp_path, own_redis.url)
    ticket = router.admit(team(router), Estimate(30, 30))
    getattr(own_redis.client(), flush)()
    assert ticket.settle(Usage(30, 0)) >= 0  # a refund against a lost counter: not applied
    assert not own_redis.client().exists(budget_key(store))  # never written below zero
    assert store.losses == 1 and "generation" in seen[0]
    for _ in range(2):
        with pytest.raises(StoreUnavailable) as caught:
            router.admit(team(router), Estimate(1, 1))
        assert "lost counters" in str(caught.value) and "recover()" in str(caught.value)
    assert store.losses == 2 and len(seen) == 2  # each kind of loss reported once
    assert own_redis.client().keys(f"{store.tag}:[brc]:*") == []  # refusals wrote nothing
    store.recover()
    router.admit(team(router), Estimate(10, 10)).settle(Usage(10, 5))
    assert tokens_spent(store) == 15


def test_a_flush_fails_open_visibly(tmp_path: Path, own_redis: RedisServer) -> None:
    router, store, seen = books(tmp_path, own_redis.url, fail_open=True)
    ticket = router.admit(team(router), Estimate(30, 30))
    own_redis.client().flushall()
    ticket.settle(Usage(30, 0))
    router.admit(team(router), Estimate(10, 10)).settle(Usage(10, 5))  # counted afresh
    assert tokens_spent(store) == 15
    assert store.losses == 2 and all("fail-open" in s for s in seen)
    assert store.bypassed == 0


def test_a_flush_is_seen_by_the_async_path(tmp_path: Path, own_redis: RedisServer) -> None:
    router, store, _seen = books(tmp_path, own_redis.url)

    async def run() -> None:
        ticket = await router.aadmit(team(router), Estimate(5, 5))
        own_redis.client().flushall()
        await ticket.asettle(Usage(5, 5))
        with pytest.raises(StoreUnavailable):
            await router.aadmit(team(router), Estimate(1, 1))
        await store.arecover()
        await (await router.aadmit(team(router), Estimate(1, 1))).asettle(Usage(1, 1))

    asyncio.run(run())
    assert store.losses == 2 and tokens_spent(store) == 2


def test_a_deleted_budget_key_is_never_silently_reset(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    router, store, seen = books(tmp_path, own_redis.url)
    client = own_redis.client()
    first = router.admit(team(router), Estimate(40, 40))
    client.delete(budget_key(store))
    state_before = {k: client.dump(k) for k in client.keys("*") if client.type(k) == b"string"}
    with pytest.raises(StoreUnavailable) as caught:
        router.admit(team(router), Estimate(1, 1))
    assert "vanished" in str(caught.value) and "tokens/daily" in str(caught.value)
    state_after = {k: client.dump(k) for k in client.keys("*") if client.type(k) == b"string"}
    assert state_after == state_before  # all or nothing: not even the org's bucket moved
    first.settle(Usage(40, 0))  # a refund of 40 must not make a fresh key of -40
    assert not client.exists(budget_key(store))
    assert store.inflight("workspace/team|inflight") == 0  # its lease came back anyway
    assert store.losses == 2 and "missing" in seen[1]
    store.recover()
    router.admit(team(router), Estimate(10, 10)).settle(Usage(10, 10))
    assert tokens_spent(store) == 20


def test_a_deleted_key_fails_open_visibly(tmp_path: Path, own_redis: RedisServer) -> None:
    router, store, seen = books(tmp_path, own_redis.url, fail_open=True)
    router.admit(team(router), Estimate(40, 40)).settle(Usage(40, 40))
    own_redis.client().delete(budget_key(store))
    router.admit(team(router), Estimate(10, 10)).settle(Usage(10, 10))
    assert tokens_spent(store) == 20 and store.losses == 1 and "vanished" in seen[0]


def test_a_deleted_bucket_key_is_noticed(tmp_path: Path, own_redis: RedisServer) -> None:
    router, store, _seen = books(tmp_path, own_redis.url)
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    own_redis.client().delete(f"{store.tag}:r:organization|rate|requests/day")
    with pytest.raises(StoreUnavailable, match="vanished"):
        router.admit(team(router), Estimate(1, 1))


def test_a_refund_never_drives_a_budget_below_zero(tmp_path: Path, own_redis: RedisServer) -> None:
    router, store, _seen = books(tmp_path, own_redis.url)
    ticket = router.admit(team(router), Estimate(10, 10))
    inflated = ticket.reservation._replace(tokens=10**6)  # claims it reserved far more
    store.settle(inflated, 0, 0)
    assert tokens_spent(store) == 0 and store.losses == 1


# -- servers that may evict counters ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (("--maxmemory-policy", "allkeys-lru"), "allkeys-lru"),
        (("--maxmemory-policy", "volatile-ttl"), "volatile-ttl"),
        (("--maxmemory-policy", "volatile-lru", "--rename-command", "CONFIG", ""), "volatile-lru"),
        (("--rename-command", "CONFIG", "", "--rename-command", "INFO", ""), "cannot tell"),
        (("--rename-command", "CONFIG", ""), None),  # INFO says noeviction: accepted
        ((), None),
    ],
    ids=[
        "allkeys-lru",
        "volatile-ttl",
        "no-CONFIG-volatile",
        "no-CONFIG-no-INFO",
        "no-CONFIG",
        "default",
    ],
)
def test_the_eviction_policy_is_checked_at_start(
    tmp_path: Path,
    make_redis: Callable[..., RedisServer],
    caplog: pytest.LogCaptureFixture,
    args: tuple[str, ...],
    refused: str | None,
) -> None:
    server = make_redis(*args)
    data = bundle(tmp_path, LIMITS)
    router = Router.load(data, RedisStore(server.url, namespace=namespace()))
    if refused is None:
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    else:
        for _ in range(2):  # sync and async, every time
            with pytest.raises(StoreUnavailable, match=refused) as caught:
                router.admit(team(router), Estimate(1, 1))
            assert "eviction_policy='warn'" in str(caught.value)
            with pytest.raises(StoreUnavailable, match=refused):
                asyncio.run(router.aadmit(team(router), Estimate(1, 1)))
        warned = Router.load(data, RedisStore(server.url, namespace=namespace(),
                                              eviction_policy="warn"))  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="runtime.limits.redis"):
            warned.admit(team(warned), Estimate(1, 1)).settle(Usage(1, 1))
        assert refused in caplog.text


def test_a_connection_refused_at_start_is_said_as_such(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The server's own refusal, not "CONFIG GET and INFO are refused" (which sent the
    operator to its ACLs and eviction policy when the URL's database did not exist)."""
    said = "DB index is out of range"
    url = redis_server.url.removesuffix("/0") + "/99"  # a database the server does not have
    router = Router.load(bundle(tmp_path, LIMITS), RedisStore(url, namespace=namespace()))
    with pytest.raises(StoreUnavailable, match=said) as caught:
        router.admit(team(router), Estimate(1, 1))
    assert "eviction" not in str(caught.value)
    with pytest.raises(StoreUnavailable, match=said):
        asyncio.run(router.aadmit(team(router), Estimate(1, 1)))


@pytest.mark.parametrize("fail_open", [False, True])
def test_a_demoted_server_follows_the_fail_policy(
    tmp_path: Path, own_redis: RedisServer, fail_open: bool
) -> None:
    """After a failover the old primary is a read-only replica: a script's first write is
    refused (READONLY). That is the store being unavailable, never a raw redis error."""
    router, store, _ = books(tmp_path, own_redis.url, fail_open=fail_open)
    router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
    own_redis.client().replicaof("127.0.0.1", str(free_port()))  # a primary that is gone
    if fail_open:
        router.admit(team(router), Estimate(1, 1)).settle(Usage(1, 1))
        assert store.bypassed == 1
    else:
        with pytest.raises(StoreUnavailable, match=r"READONLY|read only"):
            router.admit(team(router), Estimate(1, 1))
    assert tokens_spent(store) == 2  # nothing written by the refused script


def test_eviction_policy_option_is_checked() -> None:
    with pytest.raises(ValueError, match="eviction_policy"):
        RedisStore(eviction_policy="ignore")


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_voided_admission_gives_back_every_charge(
    tmp_path: Path, redis_server: RedisServer, asynchronous: bool
) -> None:
    """An admission that ran but cannot stand (here: no replica acknowledged it, in strict
    mode; the same void follows a reply lost in flight) is undone whole: its request budget
    and its request and token rate limits (the request buckets' charge stayed: each
    hiccup took a rate slot from a client answered 503)."""
    limits = ("rate_limits: [{limit: 2, unit: requests, per: minute},\n"
              "              {limit: 500, unit: tokens, per: minute}]\n"
              "budgets: [{limit: 3, unit: requests, period: monthly}]\n")  # fmt: skip
    data = bundle(tmp_path, limits)
    ns = namespace()
    strict = Router.load(data, RedisStore(redis_server.url, namespace=ns, replicas=1,
                                          replica_timeout=0.05))  # fmt: skip
    for _ in range(4):  # each runs on Redis, is not acknowledged, and is voided
        with pytest.raises(StoreUnavailable, match="replica"):
            if asynchronous:
                asyncio.run(strict.aadmit(team(strict), Estimate(100, 100)))
            else:
                strict.admit(team(strict), Estimate(100, 100))
    assert strict.store.pending == 0  # type: ignore[attr-defined]
    plain = Router.load(data, RedisStore(redis_server.url, namespace=ns))
    for _ in range(2):  # the whole minute's requests are still there
        plain.admit(team(plain), Estimate(100, 100)).settle(Usage(100, 100))
    spent = {(u.kind, u.unit): u.spent for u in plain.usage() if u.counter == "workspace/team"}
    assert spent == {("budget", "requests"): 2, ("rate_limit", "requests"): 2,
                     ("rate_limit", "tokens"): 400}  # fmt: skip
