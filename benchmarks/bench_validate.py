"""Validation speed: cold, warm (content-hash cache) and side by side with check-jsonschema.

    python benchmarks/bench_validate.py [--scales 500,2000,5000] [--repeat 3]

Every timing is wall-clock of a real `catalogc validate` process (python -m catalog_compiler,
no shell shims). `--fast` runs the per-file and reference checks (the stage check-jsonschema
is compared with, and what an editor loop runs); plain `validate` also resolves the catalog
and runs every semantic check, as `compile` does. The exception is the "in-process" column: a long-lived process (an editor or a watch
loop) re-validating through an in-memory cache after one file changed.
check-jsonschema validates the same files against our own schema/catalog.schema.json.
Prints a markdown table; copy it into benchmarks/RESULTS.md with the machine description.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_catalog import generate

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema" / "catalog.schema.json"
CLI = [sys.executable, "-m", "catalog_compiler", "validate"]


def wall(cmd: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def median(fn: Callable[[], float], repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def edit(path: Path, i: int) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"# edit {i}\n")


def in_process_revalidation(catalog: Path, target: Path, repeat: int) -> float:
    from catalog_compiler.check.cache import ParseCache
    from catalog_compiler.pipeline import validate

    cache = ParseCache(None, catalog)
    validate(catalog, cache=cache)
    cache.save()
    times = []
    for i in range(repeat):
        edit(target, 1000 + i)
        start = time.perf_counter()
        result = validate(catalog, cache=cache)
        cache.save()
        times.append(time.perf_counter() - start)
        assert result.ok, result.errors[:3]
    return statistics.median(times)


def bench_scale(n: int, repeat: int, work: Path) -> dict[str, float]:
    catalog = work / f"cat{n}"
    generate(n, catalog)
    files = sorted(str(p.relative_to(catalog)) for p in catalog.rglob("*.yaml"))
    cache_dir = work / f"cache{n}"
    target = catalog / "providers" / "prov-7.yaml"
    row: dict[str, float] = {"docs": n}
    row["cold"] = median(lambda: wall([*CLI, str(catalog), "--fast", "--no-cache"]), repeat)
    row["cold_full"] = median(lambda: wall([*CLI, str(catalog), "--no-cache"]), repeat)
    checker = shutil.which("check-jsonschema")
    if checker:
        cmd = [checker, "--schemafile", str(SCHEMA), *files]
        row["cjs"] = median(lambda: wall(cmd, cwd=catalog), max(1, repeat - 1))
    cached = [*CLI, str(catalog), "--fast", "--cache-dir", str(cache_dir)]
    wall(cached)  # fill the cache
    row["warm_same"] = median(lambda: wall(cached), repeat)
    edits = iter(range(100))

    def one_edit(cmd: list[str]) -> float:
        edit(target, next(edits))
        return wall(cmd)

    row["warm_edit"] = median(lambda: one_edit(cached), repeat)
    full = [*CLI, str(catalog), "--cache-dir", str(cache_dir)]
    wall(full)
    row["warm_edit_full"] = median(lambda: one_edit(full), repeat)
    row["in_process"] = in_process_revalidation(catalog, target, repeat)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="500,2000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="catalogc-bench-") as tmp:
        rows = [bench_scale(int(n), args.repeat, Path(tmp)) for n in args.scales.split(",")]
    print("| documents | cold --fast | check-jsonschema | ratio (ours/theirs) | cold, all checks "
          "| warm --fast, unchanged | warm --fast, 1 file edited | warm all checks, 1 file edited "
          "| in-process re-validate |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cjs = r.get("cjs")
        ratio = f"{r['cold'] / cjs:.2f}" if cjs else "n/a"
        cjs_text = f"{cjs:.2f} s" if cjs else "not installed"
        print(
            f"| {int(r['docs']):,} | {r['cold']:.2f} s | {cjs_text} | {ratio} "
            f"| {r['cold_full']:.2f} s | {r['warm_same']:.3f} s | {r['warm_edit']:.3f} s "
            f"| {r['warm_edit_full']:.3f} s | {r['in_process']:.3f} s |"
        )


if __name__ == "__main__":
    main()
