"""Redis admission: latency against a bare PING, async throughput, and the overshoot of a
naive per-level design under contention.

    python benchmarks/bench_redis.py

Starts its own redis-server (Debian package redis-server) on a free loopback port.
- latency: median `admit` of one request through a four-level chain (one Lua script, one
  round trip) vs `PING` on the same connection pool; and the server time of the admission
  and settlement scripts (INFO commandstats), which load on the machine disturbs less.
- throughput: admit + settle per second with 1, 8 and 64 concurrent asyncio callers.
- overshoot: 32 threads racing for a 1,000-request daily budget at four levels, ours vs a
  naive "GET each level, then INCR each level" client. Prints a markdown table.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

from benchmarks.bench_runtime import CHAIN_CATALOG
from catalog_compiler.compiler import compile_catalog
from runtime import BudgetExceeded, Estimate, Router, Usage
from runtime.limits.redis_store import RedisStore
from tests.redis_server import RedisServer

BUDGET_CATALOG = {
    "catalog.yaml": "kind: Organization\nversion: 1\nname: Race\n"
    "budgets: [{limit: 1000000, unit: requests, period: daily}]\n",
    "rest.yaml": """kind: Integration
slug: openai-main
service: openai
credentials: {api_key: {env: OPENAI_API_KEY}}
budgets: [{limit: 1000000, unit: requests, period: daily}]
---
kind: Provider
slug: openai-prod
integration: openai-main
budgets: [{limit: 1000000, unit: requests, period: daily}]
---
kind: Workspace
slug: team
budgets: [{limit: 1000, unit: requests, period: daily}]
""",
}


def bundle(files: dict[str, str], work: Path) -> bytes:
    root = work / uuid.uuid4().hex[:6]
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    compiled = compile_catalog(root)
    assert compiled.data is not None, compiled.errors
    return compiled.data


def latency(router: Router, store: RedisStore) -> tuple[float, float]:
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]
    estimate = Estimate(500, 200)
    admits, pings = [], []
    for _ in range(3000):
        start = time.perf_counter()
        ticket = router.admit(attempt, estimate)
        admits.append(time.perf_counter() - start)
        pings.append(store.ping())
        ticket.settle(Usage(500, 100))
    return statistics.median(admits) * 1e6, statistics.median(pings) * 1e6


def script_cost(router: Router, store: RedisStore, n: int = 1000) -> tuple[float, float]:
    """Server time per admission and per settlement script (INFO commandstats), in us:
    steadier than round trips on a shared machine."""
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]
    client = store.client
    client.config_resetstat()
    tickets = [router.admit(attempt, Estimate(500, 200)) for _ in range(n)]
    admit = float(client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])
    client.config_resetstat()
    for ticket in tickets:
        ticket.settle(Usage(500, 100))
    settle = float(client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])
    return admit, settle


def throughput(router: Router, callers: int, seconds: float = 2.0) -> float:
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]

    async def caller(stop: float, counts: list[int]) -> None:
        while time.perf_counter() < stop:
            ticket = await router.aadmit(attempt, Estimate(10, 10))
            await ticket.asettle(Usage(10, 5))
            counts.append(1)

    async def run() -> int:
        counts: list[int] = []
        stop = time.perf_counter() + seconds
        await asyncio.gather(*(caller(stop, counts) for _ in range(callers)))
        return len(counts)

    return asyncio.run(run()) / seconds


def race_ours(router: Router, threads: int = 32) -> int:
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]
    admitted = []

    def worker() -> None:
        for _ in range(100):
            try:
                router.admit(attempt, Estimate(1, 0)).settle(Usage(1))
                admitted.append(1)
            except BudgetExceeded:
                pass

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(admitted)


def race_naive(url: str, threads: int = 32) -> int:
    """Per level: GET the counter, compare, then INCR: the race existing gateways have."""
    client = redis.Redis.from_url(url, max_connections=threads)
    levels = [(f"naive:{uuid.uuid4().hex}:{i}", limit) for i, limit in
              enumerate([1_000_000, 1_000_000, 1_000_000, 1000])]  # fmt: skip
    admitted = []

    def worker() -> None:
        for _ in range(100):
            if all(int(client.get(key) or 0) < limit for key, limit in levels):
                for key, _ in levels:
                    client.incr(key)
                admitted.append(1)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(admitted)


def main() -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    with tempfile.TemporaryDirectory(prefix="catalogc-redis-") as tmp:
        work = Path(tmp)
        server = RedisServer(binary, work)
        server.start()
        try:
            store = RedisStore(server.url, namespace="bench")
            router = Router.load(bundle(CHAIN_CATALOG, work), store)
            admit_us, ping_us = latency(router, store)
            script_admit, script_settle = script_cost(router, store)
            rates = {n: throughput(router, n) for n in (1, 8, 64)}
            race_store = RedisStore(server.url, namespace="race", max_connections=32)
            race = Router.load(bundle(BUDGET_CATALOG, work), race_store)
            ours = race_ours(race)
            naive = race_naive(server.url)
        finally:
            server.kill()
    hits = sum(len(c.budgets) + len(c.rate_limits) for c in router.resolve(
        "team", "@openai-prod/gpt-4o-mini").attempts[0].chain)  # fmt: skip
    print("| measure | value | target |")
    print("|---|---:|---|")
    print(f"| admit, 4-level chain ({hits} limits), median | {admit_us:.0f} us | <= 2x PING |")
    print(f"| PING on the same pool, median | {ping_us:.0f} us | |")
    print(f"| ratio admit / PING | {admit_us / ping_us:.2f} | <= 2 |")
    print(f"| admission script, server time per call | {script_admit:.1f} us | |")
    print(f"| settlement script, server time per call | {script_settle:.1f} us | |")
    for n, rate in rates.items():
        print(f"| admit + settle, {n} async caller(s) | {rate:,.0f} /s | |")
    print(
        f"| 32 threads x 100 requests vs a 1,000/day budget: ours | {ours} admitted | exactly 1000 |"
    )
    print(
        f"| same race, naive GET-then-INCR per level | {naive} admitted | (overshoot {naive - 1000:+d}) |"
    )


if __name__ == "__main__":
    main()
