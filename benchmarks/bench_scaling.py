"""Scaling past one Redis shard (issue 13, item 4): the ceiling, and budget leasing simulated.

    python -m benchmarks.bench_scaling                 # both parts (~3 min)
    python -m benchmarks.bench_scaling --ceiling       # one shard's ceiling (real redis-server)
    python -m benchmarks.bench_scaling --sim --seeds 10  # the leasing simulation (no Redis)
    python -m benchmarks.bench_scaling --leased        # exact vs budget leasing (~30 s)

--ceiling (benchmarks/scaling/ceiling.py): starts its own redis-server on a free loopback
port (persistence off) pinned to CPU 1, load generator processes on CPU 0 (`--no-pin`: let
them float), and measures, per chain depth, the admission and settlement scripts' server
time, Redis CPU per admitted-and-settled request, and the admissions/s one shard sustains.
--repeat runs each point that many times; the table gives median (min–max).

--sim (benchmarks/scaling/sim.py): replicas x lease block x traffic shape x scheme, over
--seeds seeds each; overshoot, under-use and Redis scripts per admitted request. Prints
markdown tables; docs/scaling.md and benchmarks/RESULTS.md carry them with the machine.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.scaling import ceiling, report


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ceiling", action="store_true", help="measure one shard's ceiling")
    parser.add_argument("--sim", action="store_true", help="run the leasing simulation")
    parser.add_argument("--leased", action="store_true",
                        help="exact against budget leasing, through the real client")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2, help="simulation processes")
    args = parser.parse_args()
    if args.leased:
        start = time.perf_counter()
        print(ceiling.leased(repeat=args.repeat, seconds=args.seconds, pin=not args.no_pin))
        print(f"\n(leased: {time.perf_counter() - start:.0f} s; load {load()})")
        return
    both = not (args.ceiling or args.sim)
    if args.ceiling or both:
        start = time.perf_counter()
        pin = None if args.no_pin else ceiling.REDIS_CPU
        print(f"calibration before: {ceiling.calibrate(pin):.0f} ms; load {load()}")
        rows = ceiling.run(repeat=args.repeat, seconds=args.seconds, pin=not args.no_pin)
        print(f"calibration after: {ceiling.calibrate(pin):.0f} ms; load {load()}\n")
        print(ceiling.table(rows))
        print(f"\n(ceiling: {time.perf_counter() - start:.0f} s)\n")
    if args.sim or both:
        start = time.perf_counter()
        print(report.all_tables(args.seeds, args.jobs))
        print(f"\n(simulation: {time.perf_counter() - start:.0f} s, {args.seeds} seeds)")


if __name__ == "__main__":
    main()
