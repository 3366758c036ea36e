"""Many threads against one tight chain: bounds hold exactly, and a refused request leaves no
charge anywhere."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from runtime import BudgetExceeded, ConcurrencyExceeded, Estimate, RateLimited, Router, Usage
from runtime.bundle.money import UNITS_PER_USD
from runtime.bundle.periods import window_at
from runtime.limits.memory import MemoryStore
from tests.runtime.conftest import FakeClock

CATALOG = {
    "catalog.yaml": """\
        kind: Organization
        version: 1
        name: Contended
        budgets: [{limit: 100000, unit: requests, period: daily}]
        rate_limits: [{limit: 200, unit: requests, per: second, burst: 300}]
        """,
    "i.yaml": """\
        kind: Integration
        slug: openai-main
        service: openai
        credentials: {api_key: {env: OPENAI_API_KEY}}
        rate_limits: [{limit: 50000, unit: tokens, per: minute}]
        ---
        kind: Provider
        slug: openai-prod
        integration: openai-main
        concurrency: 6
        """,
    "w.yaml": """\
        kind: Workspace
        slug: team
        budgets:
          - {limit: 40000, unit: tokens, period: daily}
          - {limit: 0.02, unit: usd, period: daily}
        """,
}


def test_threads_never_exceed_any_bound(
    make_router: Callable[..., Router], clock: FakeClock
) -> None:
    router = make_router(CATALOG)
    store = router.store
    assert isinstance(store, MemoryStore)
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]
    lock = threading.Lock()
    admitted: list[int] = []
    used_tokens: list[int] = []
    refused = {"budget": 0, "rate": 0, "concurrency": 0}
    peak = {"inflight": 0, "now": 0}

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            estimate = Estimate(rng.randint(1, 200), rng.randint(0, 200))
            try:
                ticket = router.admit(attempt, estimate)
            except BudgetExceeded:
                with lock:
                    refused["budget"] += 1
                continue
            except RateLimited:
                with lock:
                    refused["rate"] += 1
                continue
            except ConcurrencyExceeded:
                with lock:
                    refused["concurrency"] += 1
                continue
            with lock:
                peak["now"] += 1
                peak["inflight"] = max(peak["inflight"], peak["now"])
            # real usage never exceeds the estimate, as the bound requires
            usage = Usage(estimate.input_tokens, rng.randint(0, estimate.max_tokens or 0))
            with lock:
                peak["now"] -= 1
                admitted.append(1)
                used_tokens.append(usage.tokens)
            ticket.settle(usage)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    day = window_at("daily", clock(), None)[0]
    # The clock is frozen: the request bucket admits exactly its burst, never more.
    assert len(admitted) <= 300
    assert sum(used_tokens) <= 40000  # the token budget never goes past its limit
    assert store.spent("workspace/team|budget|tokens/daily", day) == sum(used_tokens)
    # nothing was charged at the organization for a request another level refused
    assert store.spent("organization|budget|requests/daily", day) == len(admitted)
    assert peak["inflight"] <= 6
    assert store.inflight("provider/openai-prod|inflight") == 0  # every lease came back
    assert sum(refused.values()) == 16 * 300 - len(admitted)
    spent_usd = store.spent("workspace/team|budget|usd/daily", day)
    assert spent_usd <= 2 * UNITS_PER_USD // 100  # 0.02 USD
