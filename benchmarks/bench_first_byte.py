"""Where a streamed request's time to the first byte goes, and what an idle pause before it
costs.

    python -m benchmarks.bench_first_byte [--requests 300] [--pause-ms 2]

Starts the fast fake upstream (its stream's events all at once: `--chunk-ms 0`) on CPU 0 and
`python -m runtime.gateway` with a time mark around each stage of a request
(benchmarks/gateway/marked_gateway.py) on CPU 1, then sends streamed chat completions one
at a time from CPU 0, twice: back to back, and with `--pause-ms` of idleness before each
(the timed benchmark's stream leaves 2 ms between events, so each of its requests follows
such a pause). Prints, per stage, the median time after the handler starts at which it
begins and ends, in both runs, and the client's median time to the first event.

The two runs do the same work; the second only follows a pause. On a VM whose idle vCPUs
halt at once (`haltpoll.guest_halt_poll_ns=0` here), the host runs other work meanwhile,
and what the request then touches comes from memory: the difference between the columns is
that, not the gateway's code (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.gateway import rows as R
from benchmarks.gateway.loadgen import StreamClient, Target
from benchmarks.gateway.procs import Server, free_port, pin_self

SERVER_CPUS, LOAD_CPUS = "1", "0"


def run(target: Target, count: int, pause_s: float) -> list[float]:
    """Times to the first event (µs) of `count` streamed requests, `pause_s` apart."""
    client = StreamClient(target)
    try:
        for _ in range(30):  # warm-up: pools, first-use paths
            client.once()
        found = []
        for _ in range(count):
            if pause_s:
                time.sleep(pause_s)
            found.append(client.once()[0])
        return found
    finally:
        client.close()


def marked(bundle: Path, work: Path, out: Path) -> Server:
    port = free_port()
    argv = [R.PY, "-m", "benchmarks.gateway.marked_gateway", str(bundle), "--port", str(port)]
    env = {**R._env(), "BENCH_UPSTREAM_KEY": R.UPSTREAM_KEY, "BENCH_MARKS_OUT": str(out)}
    return Server("gateway-marked", argv, port, work, SERVER_CPUS, env).start()


def stage_table(runs: dict[str, list[dict[str, float]]]) -> list[str]:
    first = next(iter(runs.values()))
    names = sorted({name for marks in first for name in marks},
                   key=lambda name: statistics.median(m[name] for m in first if name in m))  # fmt: skip
    head = " | ".join(f"{label}: µs after the handler starts" for label in runs)
    lines = [f"| mark | {head} |", "|---|" + "---:|" * len(runs)]
    for name in names:
        cells = []
        for marks in runs.values():
            values = [m[name] for m in marks if name in m]
            cells.append(f"{statistics.median(values):,.0f}" if values else "–")
        what = name[:-1] + (" begins" if name.endswith(">") else " ends")
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pause-ms", type=float, default=2.0)
    args = parser.parse_args()
    if (why := R.gateway_available()) is not None:
        raise SystemExit(why)
    pin_self(LOAD_CPUS)
    runs: dict[str, list[dict[str, float]]] = {}
    firsts: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-first-byte-") as tmp:
        work = Path(tmp)
        port = free_port()
        argv = [R.PY, "-m", "benchmarks.gateway.upstream", "--port", str(port), "--chunk-ms", "0"]
        upstream = Server("upstream", argv, port, work, LOAD_CPUS, R._env()).start()
        try:
            os.environ["BENCH_UPSTREAM_KEY"] = R.UPSTREAM_KEY
            bundle = R.compile_bundle(upstream.url, work)
            for label, pause in (("back to back", 0.0), (f"after {args.pause_ms:g} ms idle",
                                                          args.pause_ms / 1000)):  # fmt: skip
                out = work / "marks.json"
                server = marked(bundle, work, out)
                target = Target(label, server.url + R.CHAT, "@bench/bench-model",
                                R.gateway_headers())  # fmt: skip
                try:
                    firsts[label] = run(target, args.requests, pause)
                finally:
                    server.stop()
                runs[label] = json.loads(out.read_text())[-args.requests :]
        finally:
            upstream.stop()
    print(f"{args.requests} streamed requests one at a time; gateway on CPU {SERVER_CPUS}, "
          f"upstream and client on CPU {LOAD_CPUS}; medians.\n")  # fmt: skip
    print("\n".join(stage_table(runs)))
    print()
    for label, values in firsts.items():
        print(f"- {label}: the client's first event after {statistics.median(values):,.0f} µs")


if __name__ == "__main__":
    sys.exit(main())
