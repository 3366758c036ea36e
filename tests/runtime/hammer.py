"""A worker process for the multi-process Redis test (importable for `spawn`)."""

from __future__ import annotations

import random
import threading
from typing import Any

from runtime import BudgetExceeded, ConcurrencyExceeded, Estimate, RateLimited, Router, Usage
from runtime.limits.redis_store import RedisStore


def hammer(
    bundle: bytes,
    url: str,
    namespace: str,
    seed: int,
    threads: int,
    rounds: int,
    stores: int = 1,
    **options: Any,
) -> dict[str, Any]:
    """`threads` threads admitting and settling `rounds` requests each, over `stores` stores
    (as many replicas in one process)."""
    all_stores = [RedisStore(url, namespace=namespace, max_connections=threads, **options)
                  for _ in range(stores)]  # fmt: skip
    routers = [Router.load(bundle, s) for s in all_stores]
    lock = threading.Lock()
    out: dict[str, Any] = {"admitted": 0, "tokens": 0, "refused": 0}

    def run(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        router = routers[k % stores]
        store = all_stores[k % stores]
        attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]
        for _ in range(rounds):
            estimate = Estimate(rng.randint(1, 40), rng.randint(0, 40))
            try:
                ticket = router.admit(attempt, estimate)
            except (BudgetExceeded, RateLimited, ConcurrencyExceeded):
                with lock:
                    out["refused"] += 1
                continue
            usage = Usage(estimate.input_tokens, rng.randint(0, estimate.max_tokens or 0))
            ticket.settle(usage)
            store.settle(ticket.reservation, usage.tokens, 0)  # a retried settlement
            with lock:
                out["admitted"] += 1
                out["tokens"] += usage.tokens

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for store in all_stores:
        store.close()
    return out


def hold_and_hang(bundle: bytes, url: str, namespace: str, requests: int, ready: Any) -> None:
    """A replica that leases a block, admits and settles `requests`, reports, then hangs
    until it is killed (tests/runtime/test_redis_leases.py)."""
    store = RedisStore(url, namespace=namespace, lease_budgets=True, lease_block=0.2,
                       lease_budget_ttl=1.0, lease_idle=60.0)  # fmt: skip
    router = Router.load(bundle, store)
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]
    for _ in range(requests):
        router.admit(attempt, Estimate(1, 1)).settle(Usage(1, 1))
    assert store.budget_leases is not None
    ready.put(store.budget_leases.stats())
    threading.Event().wait()
