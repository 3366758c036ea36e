"""Compile speed and bundle size: cold `catalogc compile` at several scales.

    python -m benchmarks.bench_compile [--scales 500,2000,5000] [--repeat 3]

Timings are wall-clock of a real `catalogc compile --no-cache` process (python -m
catalog_compiler). The size columns show the bundle grows with the number of documents,
not with workspaces x models: bytes per document stays flat while the product grows ~N^2.
Prints a markdown table; copy it into benchmarks/RESULTS.md with the machine description.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.gen_catalog import generate

CLI = [sys.executable, "-m", "catalog_compiler", "compile"]


def compile_once(catalog: Path, out: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [*CLI, str(catalog), "-o", str(out), "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"compile failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def bench_scale(n: int, repeat: int, work: Path) -> dict[str, float]:
    catalog = work / f"cat{n}"
    generate(n, catalog)
    out = work / f"bundle{n}.json"
    seconds = statistics.median(compile_once(catalog, out) for _ in range(repeat))
    size = out.stat().st_size
    data = json.loads(out.read_bytes())
    workspaces = len(data.get("workspaces", {}))
    models = sum(len(p.get("models", {})) for p in data.get("providers", {}).values())
    return {
        "docs": n,
        "seconds": seconds,
        "bytes": size,
        "workspaces": workspaces,
        "models": models,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scales", default="500,2000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="catalogc-bench-") as tmp:
        rows = [bench_scale(int(n), args.repeat, Path(tmp)) for n in args.scales.split(",")]
    print("| documents | cold compile | bundle size | bytes per document "
          "| workspaces x provider models |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        product = int(r["workspaces"] * r["models"])
        print(
            f"| {int(r['docs']):,} | {r['seconds']:.2f} s | {r['bytes'] / 1e6:.2f} MB "
            f"| {r['bytes'] / r['docs']:,.0f} | {product:,} |"
        )


if __name__ == "__main__":
    main()
