"""One shard's ceiling: Redis CPU per admission and the admissions/s one redis-server
sustains, for chains of 1 to 4 levels.

Starts its own redis-server (persistence off) on a free loopback port, pinned to CPU 1; the
load generators are processes pinned to CPU 0 (`pin=False` lets everything float). Each
worker drives `RedisStore` with a `ChainSpec` built here, i.e. the exact keys and scripts
`Router.admit`/`Ticket.settle` send for such a chain (the router adds only client-side work):
- `api`: `store.admit(...)` then `store.settle(...)`, one round trip each, unpipelined: what
  gateway replicas do. Redis cannot be saturated from one client core this way, so the
  ceiling is extrapolated: 1 s / (Redis CPU per admitted-and-settled request).
- `pipelined`: the same two scripts with the same arguments, sent 64 at a time on a
  pipeline, which loads Redis to (near) one full core: the measured ceiling. Pipelining
  saves Redis some per-command socket work, so this is the upper end.
Redis CPU is `INFO cpu` (used_cpu_user + used_cpu_sys, the whole server) over the window;
script time is `INFO commandstats` (evalsha usec_per_call), measured separately for the
admission and the settlement script.
"""

from __future__ import annotations

import multiprocessing
import os
import selectors
import shutil
import socket
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from runtime.bundle.money import UNITS_PER_USD
from runtime.limits.lua import ADMIT, SETTLE
from runtime.limits.redis_acked import sha1
from runtime.limits.redis_store import RedisStore
from runtime.limits.spec import PER_NS, Bucket, BudgetSpec, ChainSpec, LeaseSpec
from tests.redis_server import RedisServer

REDIS_CPU, LOAD_CPU = 1, 0
BATCH = 64
MODES = ("api", "connections", "pipelined")
CONNECTIONS = 32  # per load-generator process, `connections` mode
LEVELS = ("organization", "integration/openai-main", "provider/openai-prod", "workspace/team")


@dataclass(frozen=True)
class Chain:
    name: str
    levels: int
    budgets: bool = True
    rates: bool = True
    concurrency: bool = False

    def spec(self) -> ChainSpec:
        buckets, budgets, leases = [], [], []
        for counter in LEVELS[: self.levels]:
            if self.rates:
                buckets.append(Bucket(f"{counter}|rate|requests/second", counter, "requests",
                                      "second", 10**9, 10**9, PER_NS["second"]))  # fmt: skip
            if self.budgets:
                budgets.append(BudgetSpec(f"{counter}|budget|usd/monthly", counter, "usd",
                                          "monthly", 10**6 * UNITS_PER_USD, None))  # fmt: skip
        if self.concurrency:
            leases.append(LeaseSpec(f"{LEVELS[self.levels - 1]}|inflight", LEVELS[0], 10**6))
        return ChainSpec(tuple(LEVELS[: self.levels]), tuple(buckets), tuple(budgets),
                         tuple(leases), None)  # fmt: skip

    @property
    def keys(self) -> int:
        return self.levels * (int(self.budgets) + int(self.rates)) + int(self.concurrency)


CHAINS = (
    Chain("1 level: 1 budget", 1, rates=False),
    Chain("2 levels: budget + rate limit each", 2),
    Chain("4 levels: budget each", 4, rates=False),
    Chain("4 levels: budget + rate limit each", 4),
    Chain("4 levels: budget + rate limit each, + concurrency", 4, concurrency=True),
)
TOKENS, COST = 700, 3 * UNITS_PER_USD // 1000  # 700 tokens, $0.003
REFUND = UNITS_PER_USD // 10_000  # settled $0.0001 below the estimate


def _worker(url: str, ns: str, chain: Chain, mode: str, start: float, seconds: float,
            pin: bool, out: Any, lease: bool = False) -> None:  # fmt: skip
    if pin:
        os.sched_setaffinity(0, {LOAD_CPU})
    store = RedisStore(url, namespace=ns, settled_ttl=120, timeout=5.0, lease_budgets=lease)
    spec = chain.spec()
    prefix = uuid.uuid4().hex[:8]
    if mode == "api":
        _api(store, spec, f"{prefix}-w", 0, 10)  # warm: scripts loaded, generation joined
        n = 0
        _wait(start)
        while time.time() < start + seconds:
            n += _api(store, spec, prefix, n, BATCH)
    else:
        commands = Commands(store, spec, prefix)
        host, port = url.split("//")[1].split("/")[0].split(":")
        _wait(start)
        run = _pipelined if mode == "pipelined" else _connections
        n = run(commands, (host, int(port)), start + seconds)
    out.put(n)
    store.close()


def _wait(start: float) -> None:
    while time.time() < start:
        time.sleep(0.001)


def _api(store: RedisStore, spec: ChainSpec, prefix: str, n: int, count: int) -> int:
    for i in range(count):
        reservation = store.admit(f"{prefix}-{n + i}", spec, TOKENS, COST)
        store.settle(reservation, TOKENS - 100, COST - REFUND)
    return count


def _resp(parts: list[bytes]) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


NONCE = "0" * 12  # the store draws one per admission; the script only stores and compares it


class Commands:
    """The admission and settlement EVALSHA of one request, as RESP bytes, for any request
    id: keys and arguments come from the store's own (private) helpers once, with a
    placeholder id, so the server runs exactly what `admit`/`settle` send; only the id
    changes per request. Replies are the common ones: `:0` admitted, `:1` settled."""

    def __init__(self, store: RedisStore, spec: ChainSpec, prefix: str) -> None:
        store.start()
        admit_sha = store.client.script_load(ADMIT)
        settle_sha = store.client.script_load(SETTLE)
        self.prefix = prefix
        self.n = 0
        placeholder = "P" * 20
        plan = store.plan(spec, store._day())
        keys, args = store._call(plan, placeholder, TOKENS, COST, NONCE)
        reservation = store._outcome(plan, placeholder, TOKENS, COST, 0)
        assert reservation is not None
        skeys, sargs = store._settle_call(reservation, TOKENS - 100, COST - REFUND)
        self.admit = self._template(admit_sha, keys, args, placeholder)
        self.settle = self._template(settle_sha, skeys, sargs, placeholder)

    @staticmethod
    def _template(sha: str, keys: list[str], args: list[Any], placeholder: str) -> list[bytes]:
        whole = _resp([b"EVALSHA", sha.encode(), str(len(keys)).encode(),
                       *(_raw(k) for k in keys), *(_raw(a) for a in args)])  # fmt: skip
        return whole.split(placeholder.encode())

    def next_id(self) -> bytes:
        self.n += 1
        return f"{self.prefix}{self.n:012d}".encode()  # 20 characters, like the placeholder

    def pair(self) -> tuple[bytes, bytes]:
        rid = self.next_id()
        return rid.join(self.admit), rid.join(self.settle)


def _read(sock: socket.socket, expected: bytes) -> None:
    data = b""
    while len(data) < len(expected):
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("redis-server closed the connection")
        data += chunk
    if data != expected:
        raise RuntimeError(f"unexpected replies: {data[:200]!r}")


def _pipelined(commands: Commands, address: tuple[str, int], stop: float) -> int:
    """One connection, BATCH requests (admission, then its settlement) per write."""
    sock = socket.create_connection(address)
    expected = b":0\r\n:1\r\n" * BATCH
    n = 0
    while time.time() < stop:
        sock.sendall(b"".join(b"".join(commands.pair()) for _ in range(BATCH)))
        _read(sock, expected)
        n += BATCH
    sock.close()
    return n


def _connections(commands: Commands, address: tuple[str, int], stop: float) -> int:
    """CONNECTIONS connections, each with one command in flight (admission, then its
    settlement): many replicas' round trips, unpipelined."""
    selector = selectors.DefaultSelector()
    settles: dict[socket.socket, bytes | None] = {}
    for _ in range(CONNECTIONS):
        sock = socket.create_connection(address)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        admit, settle = commands.pair()
        settles[sock] = settle
        sock.sendall(admit)
    n = 0
    while time.time() < stop:
        for key, _ in selector.select(timeout=1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            reply = sock.recv(64)
            pending = settles[sock]
            if pending is not None:
                if reply != b":0\r\n":
                    raise RuntimeError(f"unexpected admission reply {reply!r}")
                settles[sock] = None
                sock.sendall(pending)
            else:
                if reply != b":1\r\n":
                    raise RuntimeError(f"unexpected settlement reply {reply!r}")
                n += 1
                admit, settle = commands.pair()
                settles[sock] = settle
                sock.sendall(admit)
    for sock in settles:
        selector.unregister(sock)
        sock.close()
    return n


def _cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass
class Point:
    chain: Chain
    mode: str
    rate: float  # admissions (each also settled) per second
    cpu_us: float  # Redis CPU per admission + settlement
    busy: float  # Redis CPU seconds per second
    scripts: float = 0.0  # Redis scripts per admitted-and-settled request


def measure(url: str, chain: Chain, mode: str, workers: int, seconds: float, pin: bool,
            lease: bool = False) -> Point:  # fmt: skip
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    ns = f"ceil-{uuid.uuid4().hex[:6]}"
    start = time.time() + 0.8
    procs = [ctx.Process(target=_worker, args=(url, ns, chain, mode, start, seconds, pin, out,
                                               lease))
             for _ in range(workers)]  # fmt: skip
    for p in procs:
        p.start()
    client = redis.Redis.from_url(url)
    time.sleep(max(0.0, start - time.time()))
    cpu0, t0 = _cpu(client), time.time()
    calls0 = _scripts(client)
    time.sleep(seconds)
    cpu1, t1 = _cpu(client), time.time()
    scripts = _scripts(client) - calls0
    done = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join()
    client.close()
    busy = (cpu1 - cpu0) / (t1 - t0)
    rate = done / seconds
    return Point(chain, mode, rate, (cpu1 - cpu0) / done * 1e6, busy, scripts / (t1 - t0) / rate)


def _scripts(client: redis.Redis) -> int:
    stats: Any = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def script_times(url: str, chain: Chain, n: int = 3000) -> tuple[float, float]:
    """Server time of the admission and of the settlement script (commandstats), in us."""
    store = RedisStore(url, namespace=f"st-{uuid.uuid4().hex[:6]}", settled_ttl=120)
    spec = chain.spec()
    store.start()
    plan = store.plan(spec, store._day())
    client = store.client
    client.script_load(ADMIT)  # the store loads a script on first use; a pipeline cannot
    client.script_load(SETTLE)
    times = []
    for phase in ("admit", "settle"):
        client.config_resetstat()
        pipe = client.pipeline(transaction=False)
        for i in range(n):
            rid = f"x-{i}"
            if phase == "admit":
                keys, args = store._call(plan, rid, TOKENS, COST, NONCE)
                pipe.evalsha(sha1(ADMIT), len(keys), *keys, *args)
            else:
                reservation = store._outcome(plan, rid, TOKENS, COST, 0)
                assert reservation is not None
                keys, args = store._settle_call(reservation, TOKENS - 100, COST - REFUND)
                pipe.evalsha(sha1(SETTLE), len(keys), *keys, *args)
        pipe.execute()
        times.append(float(client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]))
    store.close()
    return times[0], times[1]


def calibrate(cpu: int | None) -> float:
    """ms for `sum(range(10**7))` on `cpu`: how fast this shared VM runs right now."""
    before = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    start = time.perf_counter()
    sum(range(10**7))
    elapsed = (time.perf_counter() - start) * 1000
    os.sched_setaffinity(0, before)
    return elapsed


def run(repeat: int = 3, seconds: float = 1.5, pin: bool = True,
        workers: int = 2) -> list[dict[str, Any]]:  # fmt: skip
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="catalogc-ceiling-") as tmp:
        server = RedisServer(binary, Path(tmp))
        server.start()
        try:
            assert server.proc is not None
            if pin:
                os.sched_setaffinity(server.proc.pid, {REDIS_CPU})
            for chain in CHAINS:
                times = [script_times(server.url, chain) for _ in range(repeat)]
                admit_us = statistics.median(t[0] for t in times)
                settle_us = statistics.median(t[1] for t in times)
                row: dict[str, Any] = {"chain": chain, "admit_us": admit_us,
                                       "settle_us": settle_us}  # fmt: skip
                for mode in MODES:
                    row[mode] = [measure(server.url, chain, mode, workers, seconds, pin)
                                 for _ in range(repeat)]  # fmt: skip
                rows.append(row)
                server.client().flushall()
        finally:
            server.kill()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    def rng(values: list[float], fmt: str) -> str:
        mid = statistics.median(values)
        return f"{mid:{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"

    def point(points: list[Point]) -> str:
        return (f"{rng([p.cpu_us for p in points], '.1f')} µs "
                f"| {statistics.median(p.rate for p in points):,.0f} /s "
                f"({statistics.median(p.busy for p in points):.0%})")  # fmt: skip

    lines = [
        "| chain | keys | admission script | settlement script | real API: Redis CPU per request | real API: achieved (Redis busy) | 64 connections: Redis CPU per request | 64 connections: achieved (Redis busy) | ceiling, unpipelined (1 s / CPU) | pipelined: Redis CPU per request | pipelined: achieved (Redis busy) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        chain: Chain = row["chain"]
        ceiling = rng([1e6 / p.cpu_us for p in row["connections"]], ",.0f")
        lines.append(
            f"| {chain.name} | {chain.keys} | {row['admit_us']:.1f} µs | {row['settle_us']:.1f} µs "
            f"| {point(row['api'])} | {point(row['connections'])} | {ceiling} /s "
            f"| {point(row['pipelined'])} |"
        )
    return "\n".join(lines)


LEASED = (
    Chain("4 levels: budget each", 4, rates=False),
    Chain("4 levels: budget + rate limit each", 4),
)


def leased(repeat: int = 3, seconds: float = 1.5, pin: bool = True,
           workers: int = 2) -> str:  # fmt: skip
    """Exact against `lease_budgets=True`, through the real client (`api` mode): Redis CPU
    and scripts per admitted-and-settled request. Budgets of $1M, blocks of 0.1%."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    lines = ["| chain | store | requests/s (api, 2 processes) | Redis CPU per request | "
             "Redis scripts per request |", "|---|---|---:|---:|---:|"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="catalogc-leased-") as tmp:
        server = RedisServer(binary, Path(tmp))
        server.start()
        try:
            assert server.proc is not None
            if pin:
                os.sched_setaffinity(server.proc.pid, {REDIS_CPU})
            for chain in LEASED:
                for lease in (False, True):
                    points = [measure(server.url, chain, "api", workers, seconds, pin, lease)
                              for _ in range(repeat)]  # fmt: skip
                    rate = statistics.median(p.rate for p in points)
                    cpu = statistics.median(p.cpu_us for p in points)
                    scripts = statistics.median(p.scripts for p in points)
                    lines.append(f"| {chain.name} | {'budgets leased' if lease else 'exact'} | "
                                 f"{rate:,.0f} | {cpu:.1f} µs | {scripts:.4f} |")  # fmt: skip
                    server.client().flushall()
        finally:
            server.kill()
    return "\n".join(lines)
