"""CPU per Redis command on the gateway's path: redis-py's asyncio client (a blocking pool,
as the store builds it) against the store's pipelined connection (runtime/limits/redis_pipe.py).

    python -m benchmarks.bench_redis_pipe [--commands 20000] [--callers 1,32]

Starts its own redis-server on a free loopback port, loads a small script, and has
`--callers` concurrent tasks on uvloop run EVALSHA with the key and argument shape of an
admission (five keys, five arguments) until `--commands` are done; prints the client's CPU
time per command (getrusage of this process: the server's work is not counted) and the
commands per second. Needs `redis-server` (Debian package) and the `redis` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

SCRIPT = "return 0"
KEYS = ["{c}:b:1", "{c}:bu:2|w", "{c}:s:req-1", "{c}:g", "{c}:w"]
ARGS = ["packed-numbers-0123456789", "req-1", "generation", "172800", "a1b2c3d4e5f6"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(
    call: Callable[[], Awaitable[Any]], commands: int, callers: int
) -> tuple[float, float]:
    for _ in range(200):  # warm: connections open, script cached
        await call()

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    cpu, wall = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker(commands // callers) for _ in range(callers)))
    done = commands // callers * callers
    return (_cpu() - cpu) / done * 1e6, done / (time.perf_counter() - wall)


async def _measure(port: int, commands: int, callers: list[int]) -> list[str]:
    import redis.asyncio as aioredis

    from runtime.limits.redis_pipe import Pipe

    pool = aioredis.BlockingConnectionPool(port=port, max_connections=64, timeout=0.5)
    client = aioredis.Redis(connection_pool=pool)
    sha = await client.script_load(SCRIPT)
    pipe = Pipe(("127.0.0.1", port, 0, None, None), 0.5)
    rows = []
    for n in callers:
        theirs = await _run(lambda: client.evalsha(sha, len(KEYS), *KEYS, *ARGS), commands, n)
        ours = await _run(lambda: pipe.call("EVALSHA", sha, len(KEYS), *KEYS, *ARGS), commands, n)
        rows.append(f"| {n} | {theirs[0]:.1f} µs | {theirs[1]:,.0f} | {ours[0]:.1f} µs | "
                    f"{ours[1]:,.0f} | {theirs[0] / ours[0]:.1f}x |")  # fmt: skip
    pipe.close()
    await client.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--callers", default="1,32", help="concurrent callers, comma-separated")
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(0.5)
        import uvloop

        callers = [int(n) for n in args.callers.split(",")]
        rows = uvloop.run(_measure(port, args.commands, callers))
    finally:
        server.terminate()
        server.wait()
    print(f"{args.commands:,} EVALSHA per point; client CPU per command (this process only)\n")
    print("| callers | redis-py asyncio, CPU | commands/s | pipe, CPU | commands/s | CPU ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
