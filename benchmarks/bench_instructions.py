"""Instructions per request of the floor and of our gateway, counted by valgrind: a number
that does not move with the VM's speed, for changes too small for wall-clock runs to see.

    python -m benchmarks.bench_instructions [--small 30] [--large 130] [--clients 1]

`benchmarks/bench_gateway.py` times the servers; on a shared 2-vCPU VM its CPU-per-request
column moves ±25% between quiet runs, so a 3% change can only be seen interleaved, many
times. Here each server (the bare aiohttp pass-through, `python -m runtime.gateway` on the
memory store) runs under `valgrind --tool=callgrind`, answers `--small` and then, in a
second run, `--large` sequential keep-alive requests per client, and exits; the
difference of the two runs' instruction totals over the difference of the counts is what
one more request costs, start-up and shutdown cancelling out. Same code, same count,
within ~2% (hash seeds and the loop's timing still vary a little).

Rows: a chat completion, whole and streamed (SSE). The fake upstream spaces its stream's
events `--chunk-ms` apart (20 ms, against 2 in the timed benchmark): a simulated server is
~50 times slower, and events arriving closer would be read several at a time, a number
that changes with timing, and the count with it.

`--clients K` splits each run's requests over K concurrent keep-alive connections (threads):
the simulated server falls behind at once, so K requests are in flight at a time, as under
the timed benchmark's 32 clients. That shows what only concurrency costs (the cyclic
collector walking the in-flight requests' objects) and what it saves (the loop's batching).

What it does not show: cache misses (instructions are not CPU time). Needs valgrind (`apt-get install valgrind`); a run
takes a few minutes, as every instruction is simulated.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from benchmarks.gateway import rows as R
from benchmarks.gateway.loadgen import body
from benchmarks.gateway.procs import Server, free_port

STARTUP = 600.0  # seconds: the gateway imports and loads under simulation


def callgrind(server: Server, out: Path) -> Server:
    """`server` started under callgrind, writing its totals to `out` when it exits."""
    tool = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    server.argv = [*tool, *server.argv]
    return server.start(timeout=STARTUP)


def send(server: Server, model: str, headers: dict[str, str], count: int, stream: bool,
         clients: int = 1) -> None:  # fmt: skip
    """`count` requests, over `clients` concurrent connections."""
    if clients > 1:
        failed: list[BaseException] = []

        def one() -> None:
            try:
                send(server, model, headers, count // clients, stream)
            except BaseException as exc:  # reported below, from the main thread
                failed.append(exc)

        threads = [threading.Thread(target=one) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failed:
            raise failed[0]
        return
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=STARTUP)
    data = body(model, stream)
    for _ in range(count):
        conn.request("POST", R.CHAT, data, {"Content-Type": "application/json", **headers})
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"{server.name} answered {answer.status}:\n{server.tail()}")
    conn.close()


def total(out: Path) -> int:
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction total in {out}")


Make = Callable[[], Server]  # a server of the row, not started yet


def per_request(make: Make, model: str, headers: dict[str, str], work: Path, small: int,
                large: int, stream: bool, clients: int) -> float:  # fmt: skip
    counts = {}
    for n in (small, large):
        server = make()
        out = work / f"{server.name}-{int(stream)}-{n}.callgrind"
        callgrind(server, out)
        try:
            send(server, model, headers, 3 * clients, stream, clients)  # pools, imports
            send(server, model, headers, n * clients, stream, clients)
        finally:
            server.stop()
        counts[n] = total(out)
    return (counts[large] - counts[small]) / ((large - small) * clients)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=30)
    parser.add_argument("--large", type=int, default=130)
    parser.add_argument("--chunk-ms", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=1, help="concurrent connections")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is needed: apt-get install valgrind", file=sys.stderr)
        return 2
    if (why := R.gateway_available()) is not None:
        print(why, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-instr-") as tmp:
        work = Path(tmp)
        port = free_port()
        argv = [R.PY, "-m", "benchmarks.gateway.upstream", "--port", str(port),
                "--chunk-ms", str(args.chunk_ms)]  # fmt: skip
        upstream = Server("upstream", argv, port, work, None, R._env()).start()
        try:
            os.environ["BENCH_UPSTREAM_KEY"] = R.UPSTREAM_KEY
            bundle = R.compile_bundle(upstream.url, work)
            rows: dict[str, tuple[Make, str, dict[str, str]]] = {
                "floor": (lambda: R.floor_server(upstream.url, work, None), "bench-model", {}),
                "gateway": (lambda: R.gateway_server(bundle, None, work, None),
                            "@bench/bench-model", R.gateway_headers()),
            }  # fmt: skip
            found = {(name, stream): per_request(*row, work, args.small, args.large, stream,
                                                 args.clients)
                     for stream in (False, True) for name, row in rows.items()}  # fmt: skip
        finally:
            upstream.stop()
    print("| request | floor | gateway (memory store) | gateway's own | floor / gateway |\n"
          "|---|---:|---:|---:|---:|")  # fmt: skip
    for stream, name in ((False, "chat completion"), (True, "chat completion, streamed")):
        floor, ours = found[("floor", stream)], found[("gateway", stream)]
        print(f"| {name} | {floor:,.0f} | {ours:,.0f} | {ours - floor:,.0f} | "
              f"{floor / ours:.0%} |")  # fmt: skip
    print(
        f"\ninstructions per request (callgrind), {(args.large - args.small) * args.clients} "
        f"requests between two runs of {args.small * args.clients} and "
        f"{args.large * args.clients}, over {args.clients} connection(s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
