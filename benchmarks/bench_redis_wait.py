"""What strict mode costs: admission latency and throughput with `replicas=0` (asynchronous
replication) and `replicas=1` (WAIT 1 after each admission), on a primary and one replica.

    python benchmarks/bench_redis_wait.py

Starts its own redis-server pair on free loopback ports (Debian package redis-server).
- latency: median and p99 of `admit` of one request through a four-level chain, then its
  settlement (not waited for), sequential, 3,000 each;
- throughput: admit + settle per second with 8 and 64 concurrent asyncio callers.
Prints a markdown table. On loopback the replica acknowledges in well under a millisecond;
across availability zones add the primary-replica round trip to every admission.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.bench_redis import bundle
from benchmarks.bench_runtime import CHAIN_CATALOG
from runtime import Estimate, Router, Usage
from runtime.limits.redis_store import RedisStore
from tests.redis_ha.topologies import wait_for
from tests.redis_server import RedisServer, redis_binary

N = 3000


def latency(router: Router) -> tuple[float, float]:
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]
    times = []
    for _ in range(N):
        start = time.perf_counter()
        ticket = router.admit(attempt, Estimate(500, 200))
        times.append(time.perf_counter() - start)
        ticket.settle(Usage(500, 100))
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


async def throughput(router: Router, callers: int, seconds: float = 2.0) -> float:
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]
    done = 0
    end = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal done
        while time.perf_counter() < end:
            ticket = await router.aadmit(attempt, Estimate(500, 200))
            await ticket.asettle(Usage(500, 100))
            done += 1

    await asyncio.gather(*(one() for _ in range(callers)))
    return done / seconds


def main() -> None:
    binary = redis_binary()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "p").mkdir()
        (work / "r").mkdir()
        primary = RedisServer(binary, work / "p")
        primary.start()
        replica = RedisServer(binary, work / "r", ("--replicaof", "127.0.0.1", str(primary.port)))
        replica.start()
        with primary.client() as client:
            wait_for(
                lambda: client.info("replication").get("slave0", {}).get("state") == "online",
                "the replica",
            )
        data = bundle(CHAIN_CATALOG, work)
        rows = []
        try:
            for replicas in (0, 1):
                store = RedisStore(
                    primary.url,
                    namespace=f"w-{uuid.uuid4().hex[:6]}",
                    replicas=replicas,
                    max_connections=64,
                )
                router = Router.load(data, store)
                p50, p99 = latency(router)
                tput = [asyncio.run(throughput(router, c)) for c in (8, 64)]
                rows.append((replicas, p50, p99, *tput))
                store.close()
        finally:
            replica.kill()
            primary.kill()
    print("| replicas | admit p50 (us) | admit p99 (us) | admit+settle/s, 8 callers | 64 callers |")
    print("|---|---|---|---|---|")
    for replicas, p50, p99, t8, t64 in rows:
        print(f"| {replicas} | {p50:.0f} | {p99:.0f} | {t8:,.0f} | {t64:,.0f} |")


if __name__ == "__main__":
    main()
