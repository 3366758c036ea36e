"""Runtime speed: bundle load, model-string resolution, in-memory admission.

    python benchmarks/bench_runtime.py [--docs 5000]

- load: `Router.load` of the largest synthetic bundle (digest verified).
- resolve: median of `router.resolve(ws, "@p/m")` on a warm router, largest vs tiny bundle.
- admit+settle: one request through a four-level chain (organization, integration,
  provider, workspace; budgets and rate limits at each), versus the `limits` library
  hitting the same per-level limits one after another (not atomic) in the same run.
Prints a markdown table; copy it into benchmarks/RESULTS.md with the machine description.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.gen_catalog import generate
from catalog_compiler.compiler import compile_catalog
from runtime import Estimate, Router, Usage

CHAIN_CATALOG = {
    "catalog.yaml": """kind: Organization
version: 1
name: Bench
budgets: [{limit: 1000000, unit: usd, period: monthly}]
rate_limits: [{limit: 1000000000, unit: requests, per: second}]
""",
    "rest.yaml": """kind: Integration
slug: openai-main
service: openai
credentials: {api_key: {env: OPENAI_API_KEY}}
budgets: [{limit: 1000000, unit: usd, period: monthly}]
rate_limits: [{limit: 1000000000, unit: tokens, per: second}]
---
kind: Provider
slug: openai-prod
integration: openai-main
budgets: [{limit: 1000000000000, unit: tokens, period: daily}]
rate_limits: [{limit: 1000000000, unit: requests, per: second}]
---
kind: Workspace
slug: team
budgets: [{limit: 1000000, unit: usd, period: daily}]
rate_limits: [{limit: 1000000000, unit: requests, per: second}]
""",
}


def per_call(fn: Callable[[], object], n: int, rounds: int = 7) -> float:
    """Median over rounds of the mean time per call, in microseconds."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def bundle_for(docs: int, work: Path) -> bytes:
    root = work / f"cat{docs}"
    generate(docs, root)
    compiled = compile_catalog(root)
    assert compiled.data is not None, compiled.errors[:3]
    return compiled.data


def route_of(router: Router) -> tuple[str, str]:
    ws = sorted(router.bundle.workspaces)[len(router.bundle.workspaces) // 2]
    provider, model = next(iter(router.bundle.routes(ws)))
    return ws, f"@{provider}/{model}"


def bench_resolve(data: bytes) -> float:
    router = Router.load(data)
    ws, model = route_of(router)
    router.resolve(ws, model)
    return per_call(lambda: router.resolve(ws, model), 200_000)


def bench_load(data: bytes) -> float:
    samples = []
    for _ in range(5):
        gc.collect()
        start = time.perf_counter()
        Router.load(data)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def bench_admission(work: Path) -> tuple[float, float, int]:
    root = work / "chain"
    root.mkdir()
    for name, text in CHAIN_CATALOG.items():
        (root / name).write_text(text)
    compiled = compile_catalog(root)
    assert compiled.data is not None, compiled.errors
    router = Router.load(compiled.data)
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]
    estimate = Estimate(500, 200)
    usage = Usage(500, 120)

    def ours() -> None:
        router.admit(attempt, estimate).settle(usage)

    ours()
    mine = per_call(ours, 50_000)
    hits = sum(len(c.budgets) + len(c.rate_limits) for c in attempt.chain)
    return mine, bench_limits_library(hits), hits


def bench_limits_library(hits: int) -> float:
    """The `limits` package doing the same number of per-level hits, one by one."""
    try:
        from limits import RateLimitItemPerSecond, parse
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter
    except ImportError:
        return float("nan")
    limiter = MovingWindowRateLimiter(MemoryStorage())
    items = [RateLimitItemPerSecond(10**9) for _ in range(hits)]
    _ = parse
    keys = [f"level-{i}" for i in range(hits)]

    def theirs() -> None:
        for item, key in zip(items, keys, strict=True):
            limiter.hit(item, key)

    theirs()
    return per_call(theirs, 20_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="catalogc-rt-") as tmp:
        work = Path(tmp)
        big = bundle_for(args.docs, work)
        tiny = bundle_for(20, work)
        load_ms = bench_load(big)
        resolve_big = bench_resolve(big)
        resolve_tiny = bench_resolve(tiny)
        mine, theirs, hits = bench_admission(work)
    print("| measure | value | target |")
    print("|---|---:|---|")
    print(
        f"| bundle load, {args.docs:,} documents ({len(big) / 1e6:.1f} MB) | {load_ms:.0f} ms | <= 150 ms |"
    )
    print(f"| resolve `@p/m`, {args.docs:,}-document bundle | {resolve_big:.2f} us | <= 1 us |")
    print(f"| resolve `@p/m`, 20-document bundle | {resolve_tiny:.2f} us | |")
    print(f"| resolve ratio large/tiny | {resolve_big / resolve_tiny:.2f} | <= 1.2 |")
    print(f"| admit + settle, 4-level chain ({hits} limits), memory | {mine:.2f} us | <= 10 us |")
    print(
        f"| `limits` MovingWindowRateLimiter, {hits} hits (not atomic) | {theirs:.2f} us | slower than ours |"
    )


if __name__ == "__main__":
    main()
