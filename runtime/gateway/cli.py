"""`python -m runtime.gateway BUNDLE [options]` (and what `catalogc serve` calls)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from runtime.bundle.errors import BundleError
from runtime.bundle.load import Bundle
from runtime.gateway import hup
from runtime.gateway.body_budget import DEFAULT_LIMIT, SHARE
from runtime.gateway.live import Live
from runtime.gateway.log import log, route_library_logs
from runtime.gateway.metrics import MULTIPROC_ENV
from runtime.gateway.secrets import MissingSecrets, read_reference
from runtime.gateway.server import Options, Stamp, listen, log_missing, run, stamp

MAX_WORKERS = 256
QUICK_EXIT = 10.0  # seconds: a worker dying sooner after its start counts as failing to start
MAX_QUICK_EXITS = 3  # such deaths in a row stop the supervisor instead of another restart


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runtime.gateway",
        description="Serve a compiled catalog bundle as an OpenAI-compatible gateway.",
        epilog="example: python -m runtime.gateway catalog.bundle.json --port 8787",
    )
    p.add_argument("bundle", type=Path, help="the compiled bundle (catalogc compile -o …)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    p.add_argument("--workers", type=int, default=1, help="processes (N > 1 needs --redis)")
    p.add_argument(
        "--redis",
        default=None,
        help="the shared limits store: redis://host:port/db, rediss:// (TLS), unix://, "
        "redis+cluster://h1:p1,h2:p2, redis+sentinel://s1:p1,s2:p2/service (docs/redis.md); "
        "or env:NAME / file:PATH holding it, to keep a password out of the process list",
    )
    p.add_argument("--namespace", default="catalog", help="the Redis key namespace")
    p.add_argument("--redis-lease-budgets", action="store_true",
                   help="admit budgets locally within blocks leased from Redis: no Redis call "
                   "per request for budgets (docs/scaling.md, docs/redis.md)")  # fmt: skip
    p.add_argument("--redis-lease-block", type=float, default=0.001, metavar="FRACTION",
                   help="the leased block, a fraction of each budget's limit")  # fmt: skip
    p.add_argument(
        "--allow-missing-secrets",
        action="store_true",
        help="start even if a credential cannot be read; its providers answer 503",
    )
    p.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024)
    p.add_argument("--max-body-memory", type=int, default=DEFAULT_LIMIT, metavar="BYTES",
                   help="bytes of request bodies held at once, half of it per workspace; "
                   "a body past either gets 503 (bodies up to 64 KiB always pass)")  # fmt: skip
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds in-flight requests get to finish on SIGTERM",
    )
    p.add_argument("--client-timeout", type=float, default=30.0, metavar="S",
                   help="seconds a client may take to send a request's headers or body, or "
                   "to read its answer, and a connection may idle")  # fmt: skip
    p.add_argument("--max-connections", type=int, default=0, metavar="N",
                   help="open client connections per process; at the cap a new one replaces "
                   "the oldest idle one, or is answered 503 when none is idle (default 0: "
                   "half the descriptor limit, at most 10,000)")  # fmt: skip
    p.add_argument("--no-watch", action="store_true", help="reload on SIGHUP only")
    p.add_argument("--events", default=None, metavar="PATH",
                   help="write one usage event per settled request to PATH (JSON Lines, "
                   "rotated by size), or - for stdout")  # fmt: skip
    p.add_argument("--events-max-bytes", type=int, default=64 * 1024 * 1024,
                   help="rotate the events file past this size (keeps 5)")  # fmt: skip
    p.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")
    p.add_argument("--alerts-dead-letter", default=None, metavar="PATH",
                   help="append undeliverable budget alerts to PATH (JSON Lines)")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    route_library_logs()
    problem = _check(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.redis is not None and args.redis.startswith(("env:", "file:")):
        try:  # a URL with a password, read where `ps` cannot see it
            args.redis = read_reference(args.redis)
        except LookupError as exc:
            print(f"error: cannot read --redis {args.redis}: {exc}", file=sys.stderr)
            return 2
    options = Options(args.bundle, args.host, args.port, args.workers, args.redis,
                      args.namespace, args.allow_missing_secrets, args.max_body_bytes,
                      args.drain_timeout, not args.no_watch, args.events,
                      args.events_max_bytes, not args.no_metrics,
                      args.alerts_dead_letter, lease_budgets=args.redis_lease_budgets,
                      lease_block=args.redis_lease_block,
                      client_timeout=args.client_timeout,
                      max_connections=args.max_connections,
                      max_body_memory=args.max_body_memory)  # fmt: skip
    hup.catch()  # (again: `main` may be called directly)
    loaded = stamp(options.bundle)  # before reading it: a change from here on is reloaded
    try:
        live = Live.of(Bundle.load(options.bundle), options.allow_missing_secrets)
    except (BundleError, MissingSecrets) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log_missing(live)
    try:
        sock = listen(options)
    except OSError as exc:
        print(f"error: cannot listen on {options.host}:{options.port}: {exc.strerror}",
              file=sys.stderr)  # fmt: skip
        return 2
    if options.workers == 1:
        return _serve(options, sock, live, loaded)
    return _supervise(options, sock, live, loaded)


def _check(args: argparse.Namespace) -> str | None:
    if not 1 <= args.workers <= MAX_WORKERS:
        return f"--workers is 1 to {MAX_WORKERS}"
    if args.workers > 1 and args.redis is None:
        return ("--workers > 1 needs --redis: the memory store is per process, so each "
                "worker would admit the whole of every limit")  # fmt: skip
    if args.redis_lease_budgets and args.redis is None:
        return "--redis-lease-budgets needs --redis"
    if not 0 < args.redis_lease_block <= 1:
        return "--redis-lease-block is a fraction of each budget's limit, in (0, 1]"
    if not 0 <= args.port <= 65535:
        return "--port is 0 to 65535"
    if args.max_body_bytes < 1024:
        return "--max-body-bytes is at least 1024"
    if not SHARE * args.max_body_bytes <= args.max_body_memory <= 2**50:
        return ("--max-body-memory is at least twice --max-body-bytes (one workspace may hold "
                "half of it, and a body of the largest size must fit)")  # fmt: skip
    if args.events_max_bytes < 4096:
        return "--events-max-bytes is at least 4096"
    if not 0.1 <= args.client_timeout <= 3600:  # NaN fails too
        return "--client-timeout is 0.1 to 3600 seconds"
    if not 0 <= args.max_connections <= 1_000_000:
        return "--max-connections is 0 (from the descriptor limit) to 1,000,000"
    return None


def _serve(options: Options, sock: object, live: Live, loaded: Stamp | None) -> int:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the default loop works, a little slower
        pass
    try:
        asyncio.run(run(options, sock, live, loaded))  # type: ignore[arg-type]
    except Exception as exc:  # start-up failures (e.g. Redis unreachable), by type and text
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _supervise(options: Options, sock: object, live: Live, loaded: Stamp | None) -> int:
    """Fork the workers on the shared socket; pass signals on; wait for them. A worker that
    dies while serving (killed, a crash) is logged and replaced, and the new one reloads
    the bundle file at start (the one in hand may be older than its siblings'); workers
    that keep dying within seconds of starting stop the whole (exit 1). Their metrics go to
    files in one directory, so that a scrape of any worker sums all."""
    shared = tempfile.TemporaryDirectory(prefix="catalogc-metrics-") if options.metrics else None
    if shared is not None:
        os.environ[MULTIPROC_ENV] = shared.name
    workers: dict[int, float] = {}  # pid -> when it started (time.monotonic())
    stopping: list[int] = []  # the SIGTERM/SIGINT that stops everything, once received

    def spawn(restart: bool) -> None:
        pid = os.fork()
        if pid == 0:  # a worker: the signals are its own until its loop takes them
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                hup.catch()
                if restart:
                    hup.pending.append(signal.SIGHUP)
                code = _serve(options, sock, live, loaded)
            finally:
                os._exit(code)
        workers[pid] = time.monotonic()

    def forward(signum: int, frame: object) -> None:
        if signum != signal.SIGHUP:
            stopping.append(signum)
        for pid in list(workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for _ in range(options.workers):
        spawn(restart=False)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    status = _reap(workers, stopping, spawn, forward)
    if shared is not None:
        shared.cleanup()
    return status


def _reap(workers: dict[int, float], stopping: list[int], spawn: Callable[[bool], None],
          forward: Callable[[int, object], None]) -> int:  # fmt: skip
    """Wait for the workers; replace one that dies unasked. The exit status: the first
    worker's that failed when asked to stop, or 1 when workers kept dying at start."""
    status, quick = 0, 0
    while workers:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        started = workers.pop(pid, None)
        if started is None:
            continue
        exited = os.waitstatus_to_exitcode(code)
        if stopping:
            status = status or exited
            continue
        log("worker_exited", pid=pid, status=exited)
        _forget_metrics(pid)
        quick = quick + 1 if time.monotonic() - started < QUICK_EXIT else 0
        if quick >= MAX_QUICK_EXITS:
            log("workers_failing", exits=quick, within_s=QUICK_EXIT)
            forward(signal.SIGTERM, None)
            status = 1
            continue
        spawn(True)
    return status


def _forget_metrics(pid: int) -> None:
    """A dead worker's live gauges leave the sums (its counters stay: they happened)."""
    if os.environ.get(MULTIPROC_ENV):
        with contextlib.suppress(ImportError, OSError):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
