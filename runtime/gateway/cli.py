"""`python -m runtime.gateway BUNDLE [options]` (and what `catalogc serve` calls)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import select
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from runtime.bundle.errors import BundleError
from runtime.bundle.load import Bundle
from runtime.gateway import hup
from runtime.gateway.body_budget import DEFAULT_LIMIT, SHARE
from runtime.gateway.live import Live
from runtime.gateway.log import close_sink, log, open_sink, retry_sink, route_library_logs
from runtime.gateway.metrics import MULTIPROC_ENV
from runtime.gateway.secrets import MissingSecrets, read_reference
from runtime.gateway.server import (
    WATCH_EVERY,
    Backoff,
    Options,
    Stamp,
    listen,
    log_missing,
    run,
    stamp,
)

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


def _serve(options: Options, sock: socket.socket, live: Live, loaded: Stamp | None) -> int:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the default loop works, a little slower
        pass
    try:
        asyncio.run(run(options, sock, live, loaded))
    except Exception as exc:  # start-up failures (e.g. Redis unreachable), by type and text
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _supervise(options: Options, sock: socket.socket, live: Live, loaded: Stamp | None) -> int:
    """Fork the workers on the shared socket; pass signals on; wait for them. A worker that
    dies while serving (killed, a crash) is logged and replaced, from the bundle its
    siblings serve (Kept); workers that keep dying within seconds of starting stop the
    whole (exit 1). Their metrics go to files in one directory, so that a scrape of any
    worker sums all."""
    shared = tempfile.TemporaryDirectory(prefix="catalogc-metrics-") if options.metrics else None
    if shared is not None:
        os.environ[MULTIPROC_ENV] = shared.name
    status = Supervisor(options, sock, Kept(options, live, loaded)).run()
    if shared is not None:
        shared.cleanup()
    return status


class Kept:
    """The supervisor's copy of the bundle its workers serve, reloaded when theirs are (a
    SIGHUP, a change of the file, a retry of a failed reload): a replacement worker starts
    from it. Started from the bundle loaded at start, it served what a reload had replaced
    (a revoked key accepted again) until its own reload, and kept it if that failed."""

    def __init__(self, options: Options, live: Live, loaded: Stamp | None) -> None:
        self.options, self.live = options, live
        self.loaded = loaded  # the stamp of the file `live` was read from
        self.tried = loaded  # ... of the file read last, whether it loaded or not
        self.failed = False  # the last reload failed: the workers are retrying it
        self.backoff = Backoff()
        self.retry_at = 0.0

    def follow(self, asked: bool) -> None:
        """Reload as the workers do: asked (SIGHUP), the file changed, or a retry is due."""
        if asked or self.changed() or (self.failed and time.monotonic() >= self.retry_at):
            self.reload()

    def fresh(self) -> None:
        """Before a worker starts: what the workers would have loaded by now, if anything."""
        if self.changed() or self.failed:
            self.reload()

    def changed(self) -> bool:
        now = stamp(self.options.bundle)
        return self.options.watch and now is not None and now != self.tried

    def reload(self) -> None:
        seen = stamp(self.options.bundle)  # before reading it, as at start
        self.tried = seen
        try:
            live = Live.of(Bundle.load(self.options.bundle), self.options.allow_missing_secrets)
        except (BundleError, MissingSecrets):  # the workers log it and show it (/readyz)
            self.failed = True
            self.retry_at = time.monotonic() + self.backoff.failed()
            return
        self.live, self.loaded, self.failed = live, seen, False
        self.backoff.succeeded()
        gc.collect()  # the bundle replaced: the supervisor allocates too little for a pass


class Supervisor:
    """The workers' parent. It sleeps on a self-pipe (signal.set_wakeup_fd) that a signal
    wakes, a worker's exit (SIGCHLD) among them, or for a look at the bundle file: the
    handlers only forward and note, and the loop reaps, replaces and reloads (Kept)."""

    def __init__(self, options: Options, sock: socket.socket, kept: Kept) -> None:
        self.options, self.sock, self.kept = options, sock, kept
        self.workers: dict[int, float] = {}  # pid -> when it started (time.monotonic())
        self.stopping: list[int] = []  # the SIGTERM/SIGINT that stops everything, once received
        self.hups = 0  # SIGHUPs the supervisor has not reloaded for yet
        self.status, self.quick = 0, 0  # the exit status; deaths in a row soon after a start
        self.wake = os.pipe()
        for fd in self.wake:
            os.set_blocking(fd, False)

    def run(self) -> int:
        """The exit status: the first worker's that failed when asked to stop, or 1 when
        workers kept dying at start."""
        self.catch()
        open_sink()  # a stalled log reader must not stop restarts, nor the stop itself
        try:
            for _ in range(self.options.workers):
                self.spawn()
            if hup.pending:  # one came while starting: the workers forked since make it too
                hup.pending.clear()
                self.hups += 1
            while self.workers:
                self.sleep()
                self.reap()
                retry_sink()
                if not self.stopping:
                    asked, self.hups = self.hups > 0, 0
                    self.kept.follow(asked)
        finally:
            close_sink()
        return self.status

    def catch(self) -> None:
        signal.set_wakeup_fd(self.wake[1], warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.on_stop)
        signal.signal(signal.SIGHUP, self.on_hup)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # the wakeup fd wakes

    def on_stop(self, signum: int, frame: object) -> None:
        """Close this copy of the listening socket too: while one is open the kernel
        completes handshakes no worker will accept (reset after the drain), and a new
        gateway cannot bind the port (a rolling restart)."""
        self.stopping.append(signum)
        self.sock.close()
        self.forward(signum)

    def on_hup(self, signum: int, frame: object) -> None:
        self.hups += 1
        self.forward(signum)

    def forward(self, signum: int) -> None:
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def sleep(self) -> None:
        """Until a signal, or the next look at the bundle file (WATCH_EVERY)."""
        select.select([self.wake[0]], [], [], WATCH_EVERY)
        with contextlib.suppress(BlockingIOError):
            os.read(self.wake[0], 4096)

    def spawn(self) -> None:
        """Fork a worker with the signals held: one that comes before it set its own
        handlers waits for them (a SIGHUP is its reload, not the supervisor's handler)."""
        caught = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
        held = signal.pthread_sigmask(signal.SIG_BLOCK, caught)
        try:
            pid = os.fork()
            if pid == 0:
                self.work(caught)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        self.workers[pid] = time.monotonic()

    def work(self, caught: set[signal.Signals]) -> NoReturn:
        """The worker, forked: the signals are its own until its loop takes them."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for fd in self.wake:
                os.close(fd)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            hup.catch()
            if self.kept.failed:  # its siblings are retrying a failed reload: so does it
                hup.pending.append(signal.SIGHUP)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, caught)
            code = _serve(self.options, self.sock, self.kept.live, self.kept.loaded)
        finally:
            os._exit(code)

    def reap(self) -> None:
        while self.workers:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.workers.clear()
                return
            if pid == 0:
                return
            started = self.workers.pop(pid, None)
            if started is not None:
                self.exited(pid, started, os.waitstatus_to_exitcode(code))

    def exited(self, pid: int, started: float, status: int) -> None:
        """Replace a worker that died unasked, from the bundle its siblings serve."""
        if self.stopping:
            self.status = self.status or status
            return
        log("worker_exited", pid=pid, status=status)
        _forget_metrics(pid)
        self.quick = self.quick + 1 if time.monotonic() - started < QUICK_EXIT else 0
        if self.quick >= MAX_QUICK_EXITS:
            log("workers_failing", exits=self.quick, within_s=QUICK_EXIT)
            self.on_stop(signal.SIGTERM, None)
            self.status = 1
            return
        self.kept.fresh()
        self.spawn()


def _forget_metrics(pid: int) -> None:
    """A dead worker's live gauges leave the sums (its counters stay: they happened)."""
    if os.environ.get(MULTIPROC_ENV):
        with contextlib.suppress(ImportError, OSError):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
