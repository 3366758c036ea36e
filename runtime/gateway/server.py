"""Processes, signals and reloads. One process serves with the memory store; `--workers N`
forks N processes sharing one listening socket, which needs the Redis store (the memory
store is per process: N of them would admit N times the limits).

SIGHUP, or a change of the bundle file, reloads: the new bundle is loaded and checked whole,
its secrets read, and only then swapped in; a bad one keeps the old one serving (logged,
shown by /readyz, and tried again with backoff until one loads). SIGTERM/SIGINT drain: stop
accepting, let in-flight requests finish and settle (up to the drain timeout), then exit."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from runtime.bundle.errors import BundleError
from runtime.bundle.load import Bundle
from runtime.gateway import hup
from runtime.gateway.alerts import Alerts
from runtime.gateway.app import Gateway, build_app
from runtime.gateway.body_budget import DEFAULT_LIMIT, BodyBudget
from runtime.gateway.books import Books
from runtime.gateway.capped_site import CappedSite, default_max_connections
from runtime.gateway.execute import Engine
from runtime.gateway.live import Live
from runtime.gateway.log import FINISH_WAIT, close_sink, log, open_sink
from runtime.gateway.metrics import Metrics
from runtime.gateway.secrets import MissingSecrets
from runtime.gateway.tracing import Tracing
from runtime.gateway.transport import Transport
from runtime.gateway.usage_events import EventLog
from runtime.limits.base import Store
from runtime.routing.router import Router

WATCH_EVERY = 1.0  # seconds between looks at the bundle file
RETRY_FIRST, RETRY_MOST = 1.0, 30.0  # seconds before retrying a failed reload (Backoff)
CANCEL_GRACE = 2.0  # seconds, at most, of the drain timeout for cancelled requests (drain)
LAST_WAIT = 0.25  # seconds aiohttp waits (twice) for a handler still running after that
DRAIN_POLL = 0.05  # seconds between looks at what is still in flight while draining
# Allocations, net of frees, between the cyclic collector's young passes (CPython: 700).
# A request's objects are freed by reference counting: it leaves no cycles (held by
# tests/gateway/test_no_cycles.py and test_memory_bounds.py). But at 32 requests in flight
# a pass every 700 allocations keeps walking the live ones: ~6% of the instructions per
# request, measured. Cyclic garbage waits for at most this many objects.
YOUNG_COLLECTION_EVERY = 20_000


@dataclass(frozen=True)
class Options:
    bundle: Path
    host: str = "127.0.0.1"
    port: int = 8787
    workers: int = 1
    redis: str | None = None
    namespace: str = "catalog"
    allow_missing_secrets: bool = False
    max_body: int = 16 * 1024 * 1024
    drain_timeout: float = 30.0
    watch: bool = True
    events: str | None = None  # usage events: a JSON Lines file, or "-" for stdout
    events_max_bytes: int = 64 * 1024 * 1024
    metrics: bool = True
    alerts_dead_letter: str | None = None  # undeliverable budget alerts, JSON Lines
    lease_budgets: bool = False  # budget leasing on the Redis store (docs/scaling.md)
    lease_block: float = 0.001
    # seconds a client may take to send a request's headers, or its body, or to read its
    # answer, and that a connection may idle between requests; then it is closed
    client_timeout: float = 30.0
    max_connections: int = 0  # open client connections; 0: from the descriptor limit
    max_body_memory: int = DEFAULT_LIMIT  # bytes of request bodies held at once


def listen(options: Options) -> socket.socket:
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux; accepted connections inherit it
        # A client that stops reading leaves our data unacknowledged (a zero window): the
        # kernel drops the connection after this long, whatever the answer (aiohttp's own
        # last write of a whole answer waits for room with no bound).
        timeout_ms = int(options.client_timeout * 1000)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, timeout_ms)
    sock.bind((options.host, options.port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def make_store(options: Options) -> Store:
    if options.redis is None:
        from runtime.limits.memory import MemoryStore

        return MemoryStore()
    from runtime.limits.redis_store import RedisStore

    if options.lease_budgets:
        return RedisStore(options.redis, namespace=options.namespace, lease_budgets=True,
                          lease_block=options.lease_block)  # fmt: skip
    return RedisStore(options.redis, namespace=options.namespace)


def make_books(options: Options) -> Books:
    events = EventLog(options.events, options.events_max_bytes) if options.events else None
    return Books(events=events, metrics=Metrics() if options.metrics else None)


async def run(options: Options, sock: socket.socket, first: Live,
              loaded: Stamp | None = None) -> None:  # fmt: skip
    """Serve on `sock` until SIGTERM/SIGINT, then drain. `loaded`: the bundle file's stamp
    taken before `first` was read from it (a change since is reloaded)."""
    open_sink()  # a log reader that stops reading must not stop the requests
    last: float | None = None  # when output still waiting at exit is given up
    try:
        last = await _serve(options, sock, first, loaded)
    finally:
        close_sink(last)


async def _serve(options: Options, sock: socket.socket, first: Live,
                 loaded: Stamp | None) -> float:  # fmt: skip
    """`run`'s work; the time (monotonic) until which what is still waiting to be written
    at exit, events and log together, may wait for its reader."""
    store = make_store(options)
    if options.redis is not None:
        await store.astart()  # type: ignore[attr-defined]
    # as many upstream connections as client ones (each has one request at a time): a
    # hung upstream cannot take the pool from the others before the clients' cap is full
    transport = Transport(options.max_connections or default_max_connections())
    await transport.open()
    alerts = Alerts(store, options.alerts_dead_letter)
    alerts.serve(first.bundle, first.secrets.alert_secret)
    router = Router(first.bundle, store, on_alert=alerts.crossed)
    books = make_books(options)
    books.tracing = Tracing()
    gw = Gateway(router, first, Engine(router, transport, books.tracing, alerts),
                 "redis" if options.redis else "memory", books=books, alerts=alerts,
                 client_timeout=options.client_timeout,
                 bodies=BodyBudget(options.max_body_memory))  # fmt: skip
    alerts.start()
    runner = web.AppRunner(
        build_app(gw, options.max_body), access_log=None, handle_signals=False,
        shutdown_timeout=LAST_WAIT,  # for what `drain` left (nothing, unless a bug)
        max_field_size=40 * 1024, max_line_size=16 * 1024,  # a header; an inline config fits
        # aiohttp closes a connection this long idle, or this long into headers that never
        # end (its own default is an hour: a slow client could hold connections that long)
        keepalive_timeout=options.client_timeout,
    )  # fmt: skip
    await runner.setup()
    limit = options.max_connections or default_max_connections()
    await CappedSite(runner, sock, limit, gw.lingering, gw.reading).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    reloads = Reloads(gw, options)
    loop.add_signal_handler(signal.SIGHUP, reloads.request)
    if hup.pending:  # one came while starting (hup.catch): its reload is made now
        reloads.request()
    watcher = asyncio.ensure_future(watch(options, reloads, loaded)) if options.watch else None
    freeze_heap()
    host, port = sock.getsockname()[:2]
    log("listening", host=host, port=port, digest=first.bundle.digest, pid=os.getpid(),
        store=gw.store_kind, max_connections=limit)  # fmt: skip
    await stop.wait()
    gw.draining = True
    log("draining", pid=os.getpid(), inflight=gw.inflight)
    reloads.stop()
    if watcher is not None:
        watcher.cancel()
    await drain(gw, runner, options)
    await asyncio.sleep(0)  # the books of the last answers (Record.write_after_answer)
    await alerts.stop()
    await transport.close()
    close = getattr(store, "aclose", None)
    if close is not None:
        await close()
    last = time.monotonic() + FINISH_WAIT
    if gw.books.events is not None:
        gw.books.events.close(last)
    log("stopped", pid=os.getpid())
    return last


async def drain(gw: Gateway, runner: web.AppRunner, options: Options) -> None:
    """Stop accepting; let what is in flight finish until the drain timeout less a grace;
    then cancel what is left, which answers in the grace: a request 503, a stream an error
    event, both settled and logged (app.py). aiohttp alone waits the timeout, waits it
    again, then cancels and closes the connection at once: past a supervisor's patience,
    and with no answer, nor a log line, for what it cut."""
    for site in list(runner.sites):
        await site.stop()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + options.drain_timeout - _grace(options)
    while gw.inflight and loop.time() < deadline:
        await asyncio.sleep(DRAIN_POLL)
    for task in list(gw.serving):
        task.cancel()
    deadline = loop.time() + _grace(options)
    while gw.inflight and loop.time() < deadline:
        await asyncio.sleep(DRAIN_POLL)
    await runner.cleanup()  # closes the idle connections


def _grace(options: Options) -> float:
    """Seconds of the drain timeout kept for cancelled requests to answer and settle."""
    return min(CANCEL_GRACE, options.drain_timeout / 4)


class Backoff:
    """When to retry a failed reload: its cause may lie outside the bundle file and go away
    unseen by the watcher (a secret file landing after the bundle, as Kubernetes updates a
    Secret volume apart from a ConfigMap's). 1 s after the first failure, doubling to 30 s."""

    def __init__(self) -> None:
        self.delay = RETRY_FIRST

    def failed(self) -> float:
        """The seconds to wait before the next try."""
        delay, self.delay = self.delay, min(self.delay * 2, RETRY_MOST)
        return delay

    def succeeded(self) -> None:
        self.delay = RETRY_FIRST


class Reloads:
    """Reloads made one at a time: two at once could finish out of order and leave the
    older file serving. A reload asked for while one runs makes one more after it (the file
    as it is then): a storm of SIGHUPs costs two loads, not one per signal. A failed one is
    tried again, with backoff, until one succeeds; a retry logs only an error not logged
    just before (an asked reload logs its own)."""

    def __init__(self, gw: Gateway, options: Options) -> None:
        self.gw, self.options = gw, options
        self.running: asyncio.Task[None] | None = None
        self.again = False
        self.asked = False  # the next reload was asked for (SIGHUP, a change), not a retry
        self.backoff = Backoff()
        self.retry: asyncio.TimerHandle | None = None
        self.stopped = False

    def request(self) -> None:
        self.asked = True
        self._start()

    def stop(self) -> None:
        """No more retries (draining)."""
        self.stopped = True
        if self.retry is not None:
            self.retry.cancel()

    def _start(self) -> None:
        if self.running is not None:
            self.again = True
            return
        self.running = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            self.again = True
            while self.again:
                self.again = False
                asked, self.asked = self.asked, False
                self._settle(await reload(self.gw, self.options), asked)
        finally:
            self.running = None

    def _settle(self, error: str | None, asked: bool) -> None:
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        if error is None:
            self.backoff.succeeded()
            return
        delay = self.backoff.failed()
        if asked or error != self.gw.reload_error:
            log("reload_failed", error=error, serving=self.gw.live.bundle.digest,
                retry_in_s=delay)  # fmt: skip
        self.gw.reload_error = error
        if not self.stopped:
            self.retry = asyncio.get_running_loop().call_later(delay, self._retried)

    def _retried(self) -> None:
        self.retry = None
        self._start()


async def reload(gw: Gateway, options: Options) -> str | None:
    """Load the bundle file and serve it; or the error that kept it out (nothing swapped)."""
    try:
        # in a thread, both: a bundle is large, and a secret file may be slow to read
        bundle = await asyncio.to_thread(Bundle.load, options.bundle)
        live = await asyncio.to_thread(Live.of, bundle, options.allow_missing_secrets)
    except (BundleError, MissingSecrets) as exc:
        return str(exc)
    old = gw.live.bundle.digest
    gw.swap(live)  # even the same bundle: its credentials were read again (rotated secrets)
    freeze_heap()
    log("reloaded", digest=bundle.digest, previous=old)
    log_missing(live)  # a credential lost since: said as at start, not only by 503s
    return None


def log_missing(live: Live) -> None:
    """A line per reference `--allow-missing-secrets` let go unread (names, never values)."""
    missing = live.missing()
    for fields in missing["credentials_missing"]:
        log("credentials_missing", **fields)
    for fields in missing["endpoints_missing"]:
        log("endpoint_missing", **fields)  # base_url or header reference


def freeze_heap() -> None:
    """Keep what lives as long as the process (modules, the bundle and its indexes) out of
    the cyclic collector's passes, which otherwise walk all of it again and again as
    requests allocate: ~7% of the CPU per request, measured. A reload thaws first, so the
    bundle it replaced is collected once and the new one frozen in its place."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, older, oldest)


async def watch(options: Options, reloads: Reloads, seen: Stamp | None) -> None:
    """Reload when the bundle file is replaced or rewritten (polling: works everywhere),
    from `seen`: the stamp of the file the serving bundle was read from."""
    if seen is None:
        seen = stamp(options.bundle)
    while True:
        now = stamp(options.bundle)
        if now != seen and now is not None:
            seen = now
            reloads.request()
        await asyncio.sleep(WATCH_EVERY)


Stamp = tuple[int, int, int, int]


def stamp(path: Path) -> Stamp | None:
    """The file's identity and version: a replacement or a rewrite changes it. The change
    time too: `cp -p` or `rsync --inplace` may keep inode, size and mtime (reproducible
    artifacts), and a chmod that makes the file readable changes nothing else; no tool can
    set the ctime."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns
