"""Load for topology tests: threads (or asyncio tasks) admitting and settling through one
Router while the test changes the topology underneath. Every outcome is recorded, and any
exception that is neither a refusal nor StoreUnavailable is kept as a failure, so a test can
assert that callers only ever see typed errors. Afterwards `audit` reads the survivors'
state keys on the primary: which admissions and settlements a failover lost, and when."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from runtime import (
    BudgetExceeded,
    ConcurrencyExceeded,
    Estimate,
    RateLimited,
    Router,
    StoreUnavailable,
    Usage,
)
from runtime.bundle.periods import window_at
from runtime.limits.redis_store import BYPASS, RedisStore
from tests.runtime.conftest import OPENAI_PROVIDER, compile_files

REFUSALS = (BudgetExceeded, RateLimited, ConcurrencyExceeded)
ESTIMATE = Estimate(10, 10)  # reserves 20 tokens
USAGE = Usage(10, 3)  # settles at 13 tokens
_n = itertools.count()


def books(tmp: Path, budget: int) -> bytes:
    """A workspace with a requests budget (the bound under test), a tokens budget far away
    (to count settlements exactly) and a provider concurrency limit (leases)."""
    return compile_files(tmp / f"c{next(_n)}", {
        "catalog.yaml": "kind: Organization\nversion: 1\nname: HA\n",
        "i.yaml": OPENAI_PROVIDER + "concurrency: 64\n",
        "w.yaml": f"""\
            kind: Workspace
            slug: team
            budgets:
              - {{limit: {budget}, unit: requests, period: monthly}}
              - {{limit: 1000000000, unit: tokens, period: monthly}}
            """,
    })  # fmt: skip


def namespace() -> str:
    return f"ha-{uuid.uuid4().hex[:8]}"


@dataclass
class Record:
    request_id: str
    admitted_at: float
    settled_at: float | None = None
    bypassed: bool = False


@dataclass
class Outcome:
    admitted: list[Record] = field(default_factory=list)
    refused: int = 0
    unavailable: list[float] = field(default_factory=list)  # when StoreUnavailable was seen
    failures: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counted(self) -> list[Record]:
        return [r for r in self.admitted if not r.bypassed]


def run_threads(router: Router, stop: threading.Event, threads: int = 4,
                pause: float = 0.004) -> tuple[Outcome, list[threading.Thread]]:  # fmt: skip
    """Start the load; join the returned threads after setting `stop`."""
    out = Outcome()
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]

    def one() -> None:
        while not stop.is_set():
            try:
                ticket = router.admit(attempt, ESTIMATE)
            except REFUSALS:
                with out.lock:
                    out.refused += 1
            except StoreUnavailable:
                with out.lock:
                    out.unavailable.append(time.monotonic())
            except BaseException as exc:  # a raw error reached the caller: the test fails
                with out.lock:
                    out.failures.append(exc)
            else:
                record = Record(ticket.request_id, time.monotonic(),
                                bypassed=ticket.reservation.prepared == BYPASS)  # fmt: skip
                try:
                    ticket.settle(USAGE)
                    record.settled_at = time.monotonic()
                except BaseException as exc:
                    with out.lock:
                        out.failures.append(exc)
                with out.lock:
                    out.admitted.append(record)
            time.sleep(pause)

    workers = [threading.Thread(target=one, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    return out, workers


async def run_tasks(router: Router, until: Callable[[], bool], tasks: int = 8,
                    pause: float = 0.004) -> Outcome:  # fmt: skip
    """The same load on asyncio (aadmit, asettle), until `until()` says stop."""
    out = Outcome()
    attempt = router.resolve("team", "@openai-prod/gpt-4o-mini").attempts[0]

    async def one() -> None:
        while not until():
            try:
                ticket = await router.aadmit(attempt, ESTIMATE)
            except REFUSALS:
                out.refused += 1
            except StoreUnavailable:
                out.unavailable.append(time.monotonic())
            except BaseException as exc:
                out.failures.append(exc)
            else:
                record = Record(ticket.request_id, time.monotonic(),
                                bypassed=ticket.reservation.prepared == BYPASS)  # fmt: skip
                try:
                    await ticket.asettle(USAGE)
                    record.settled_at = time.monotonic()
                except BaseException as exc:
                    out.failures.append(exc)
                out.admitted.append(record)
            await asyncio.sleep(pause)

    await asyncio.gather(*(one() for _ in range(tasks)))
    return out


@dataclass
class Audit:
    lost_admissions: list[Record]  # admitted, and no trace of them on the primary
    lost_settlements: list[Record]  # admitted, settled by the caller, still live there
    requests: int  # what the requests budget holds on the primary
    tokens: int

    def window(self, since: float) -> float:
        """How long after `since` the last lost write was acknowledged (0 if none)."""
        times = [r.admitted_at for r in self.lost_admissions]
        times += [r.settled_at for r in self.lost_settlements if r.settled_at is not None]
        return max((t - since for t in times), default=0.0)


def audit(store: RedisStore, primary: redis.Redis | Any, out: Outcome) -> Audit:
    """Compare what callers were told with what the primary holds."""
    lost_admissions, lost_settlements = [], []
    counted = out.counted()
    states = primary.mget([f"{store.tag}:s:{r.request_id}" for r in counted]) if counted else []
    for record, state in zip(counted, states, strict=True):
        if state is None:
            lost_admissions.append(record)
        elif state != b"s" and record.settled_at is not None:
            lost_settlements.append(record)
    month = window_at("monthly", time.time_ns(), None)[0]
    requests = store.spent("workspace/team|budget|requests/monthly", month)
    tokens = store.spent("workspace/team|budget|tokens/monthly", month)
    return Audit(lost_admissions, lost_settlements, requests, tokens)


def new_store(url: str, ns: str, **options: Any) -> RedisStore:
    return RedisStore(url, namespace=ns, **{"timeout": 0.3, "lease_ttl": 3.0, **options})


class Load:
    """`with Load(router, "sync" | "async"):` — load runs inside the block; `.out` after."""

    def __init__(self, router: Router, mode: str) -> None:
        self.router, self.mode = router, mode
        self.stop = threading.Event()
        self.out = Outcome()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        if self.mode == "sync":
            self.out, self._threads = run_threads(self.router, self.stop)
        else:

            def loop() -> None:
                self.out = asyncio.run(run_tasks(self.router, self.stop.is_set))

            self._threads = [threading.Thread(target=loop, daemon=True)]
            self._threads[0].start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join()
