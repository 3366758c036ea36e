"""Budget alerts: an `alert_threshold` crossed, or a budget exhausted, is posted once to the
catalog's webhook (Organization `alerts`), signed with HMAC-SHA256.

Once means once per (counter, budget, window, threshold) across every gateway sharing the
store: the admission that crosses a threshold reports it (atomically, in the store), and
before posting, the gateway claims the alert's key in the store (`Store.claim`: SET NX on
Redis), so a second crossing in the same window (after refunds) or a second replica never
posts it again. "Exhausted" (threshold 1) is the first refusal of a request by that budget
in the window with less than a tenth of its limit left. Delivery
retries with backoff; what cannot be delivered is appended to the dead-letter file (JSON
Lines), or logged when there is none. Nothing here fails a request."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp

from runtime.bundle.errors import BudgetExceeded, StoreUnavailable
from runtime.bundle.load import Bundle
from runtime.bundle.money import dollars
from runtime.bundle.periods import NS_PER_DAY, span
from runtime.gateway.log import log
from runtime.limits.base import Store
from runtime.limits.spec import BudgetSpec
from runtime.routing.counters_usage import read_usage

SIGNATURE = "x-catalog-signature"  # "sha256=<hex HMAC-SHA256 of the body>"
ALERT_ID = "x-catalog-alert-id"  # the same on every retry: receivers may deduplicate by it
ATTEMPTS = 6
BACKOFF = 0.5  # seconds, doubled per retry (with jitter), at most MAX_BACKOFF
MAX_BACKOFF = 30.0
TIMEOUT = 10.0
QUEUE = 1_000  # alerts waiting for delivery; beyond it they go to the dead letters
SEEN = 100_000  # alert keys remembered per process
CLAIM_TTL_S = 400 * 86_400  # an alert key outlives its window (`none` budgets: a long time)


@dataclass(frozen=True, slots=True)
class Pending:
    counter: str
    budget: str  # "usd/monthly": the budget's unit and period
    window: str
    threshold: Decimal  # 0.8, or 1 for exhaustion

    @property
    def key(self) -> str:
        return f"alert|{self.counter}|{self.budget}|{self.window}|{self.threshold}"


class Alerts:
    def __init__(self, store: Store, dead_letter: str | None = None) -> None:
        self.store = store
        self.dead_letter = dead_letter
        self.bundle: Bundle | None = None
        self.webhook: str | None = None
        self.secret: bytes | None = None
        self.delivered = 0
        self.failed = 0
        self._queue: asyncio.Queue[Pending] = asyncio.Queue(QUEUE)
        # alerts this process already queued: every refusal after exhaustion would queue
        # (and claim in the store) the same alert again
        self._seen: set[str] = set()
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def serve(self, bundle: Bundle, secret: str | None) -> None:
        """Alerts for this bundle (called at start and on every reload)."""
        config = bundle.organization.get("alerts") or {}
        self.bundle = bundle
        self.webhook = str(config["webhook"]) if config else None
        self.secret = secret.encode() if secret is not None else None

    # -- detection (synchronous, on the request's path: only queues) -------------------
    def crossed(self, budget: BudgetSpec, ticket: Any) -> None:
        """Router hook: an admission crossed `budget`'s alert threshold."""
        spec = ticket.reservation.spec
        window = ticket.reservation.windows[spec.budgets.index(budget)]
        threshold = self._threshold(budget)
        if threshold is not None:
            self._queue_alert(Pending(budget.counter, _kind(budget.key), window, threshold))

    def refused(self, exc: BudgetExceeded, epoch: str | None) -> None:
        """A budget refused a request with less than a tenth of its limit left: it is
        exhausted for this window. With more left, the refusal says the request was larger
        than what is left, which any caller can make it: alerting then used up the window's
        one alert before the real exhaustion (reviews: at 0 spent; then, once per tenth,
        oversized requests between small ones claimed every tenth from half spent on)."""
        if exc.limit > 0 and exc.remaining * 10 >= exc.limit:
            return
        day = time.time_ns() // NS_PER_DAY
        window = span(exc.period, day, epoch)[0]
        self._queue_alert(Pending(exc.counter, f"{exc.unit}/{exc.period}", window, Decimal(1)))

    def _threshold(self, budget: BudgetSpec) -> Decimal | None:
        if self.bundle is None:
            return None
        counter = self.bundle.counters.get(budget.counter)
        for b in counter.budgets if counter is not None else ():
            if b.key == _kind(budget.key):
                return b.alert_threshold
        return None

    def _queue_alert(self, alert: Pending) -> None:
        if self.webhook is None or alert.key in self._seen:
            return
        if len(self._seen) >= SEEN:
            self._seen.clear()  # a bound; the store's claim still keeps each alert once
        self._seen.add(alert.key)
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self._dead(alert, None, "the alert queue is full")

    # -- delivery ----------------------------------------------------------------------
    def start(self) -> None:
        self._worker = asyncio.ensure_future(self._run())

    async def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (for at most `timeout`), then dead-letter the rest."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._queue.join()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while not self._queue.empty():
            self._dead(self._queue.get_nowait(), None, "the gateway stopped")
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            alert = await self._queue.get()
            try:
                await self._one(alert)
            except asyncio.CancelledError:  # `stop`: the alert being delivered is not lost
                self._dead(alert, None, "the gateway stopped while delivering it")
                raise
            except Exception as exc:  # a bug must not stop delivery: logged by type
                log("alert_failed", error=type(exc).__name__)
            finally:
                self._queue.task_done()

    async def _one(self, alert: Pending) -> None:
        try:
            if not await self.store.aclaim(alert.key, CLAIM_TTL_S):
                return  # another crossing or another replica has it
        except StoreUnavailable:
            pass  # better twice than never: post it (receivers deduplicate by its id)
        body = await self._body(alert)
        await self._post(alert, body)

    async def _body(self, alert: Pending) -> bytes:
        assert self.bundle is not None
        counter = self.bundle.counters[alert.counter]
        epoch = self.bundle.organization.get("epoch")
        rows = await asyncio.to_thread(read_usage, self.store, [counter], epoch, time.time_ns())
        row = next(r for r in rows if r.kind == "budget" and f"{r.unit}/{r.period}" ==
                   alert.budget)  # fmt: skip
        payload = {
            "event": "budget_exhausted" if alert.threshold == 1 else "budget_threshold",
            "id": hashlib.sha256(alert.key.encode()).hexdigest()[:32],
            "counter": alert.counter, "level": row.level, "name": row.name,
            "unit": row.unit, "period": row.period, "limit": _shown(row.limit),
            "spent": _shown(row.spent + (row.reserved or 0)),  # what admission counts
            "threshold": dollars(alert.threshold), "window": alert.window,
            "window_start": row.to_json()["window_start"],
            "window_end": row.to_json()["window_end"],
            "bundle": self.bundle.digest,
        }  # fmt: skip
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()

    async def _post(self, alert: Pending, body: bytes) -> None:
        assert self.webhook is not None
        if self.secret is None:
            self._dead(
                alert, body, "its signing secret could not be read when the bundle was loaded"
            )
            return
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        headers = {"content-type": "application/json", SIGNATURE: f"sha256={signature}",
                   ALERT_ID: json.loads(body)["id"]}  # fmt: skip
        if self._session is None:
            self._session = aiohttp.ClientSession(  # no cookies: each alert stands alone
                timeout=aiohttp.ClientTimeout(total=TIMEOUT), cookie_jar=aiohttp.DummyCookieJar()
            )
        why = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                delay = min(BACKOFF * 2 ** (attempt - 1), MAX_BACKOFF)
                await asyncio.sleep(delay * (1 + random.random() / 2))
            try:
                async with self._session.post(self.webhook, data=body, headers=headers,
                                              allow_redirects=False) as resp:  # fmt: skip
                    if 200 <= resp.status < 300:
                        self.delivered += 1
                        log("alert_sent", counter=alert.counter, threshold=str(alert.threshold),
                            window=alert.window, attempts=attempt + 1)  # fmt: skip
                        return
                    why = f"HTTP {resp.status}"
                    if 400 <= resp.status < 500 and resp.status not in (408, 429):
                        break  # the receiver refuses it: retrying will not help
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                why = type(exc).__name__
        self._dead(alert, body, why)

    def _dead(self, alert: Pending, body: bytes | None, why: str) -> None:
        self.failed += 1
        log("alert_undelivered", counter=alert.counter, threshold=str(alert.threshold),
            window=alert.window, error=why, dead_letter=self.dead_letter)  # fmt: skip
        if self.dead_letter is None:
            return
        line = {"ts": round(time.time(), 3), "error": why, "alert":
                json.loads(body) if body else {"counter": alert.counter, "budget": alert.budget,
                                               "window": alert.window,
                                               "threshold": str(alert.threshold)}}  # fmt: skip
        try:
            fd = os.open(self.dead_letter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
            finally:
                os.close(fd)
        except OSError as exc:
            log("alert_dead_letter_failed", error=type(exc).__name__)


def _kind(budget_key: str) -> str:
    """ "workspace/x|budget|usd/monthly" -> "usd/monthly" (the bundle's BudgetLimit.key)."""
    return budget_key.rpartition("|")[2]


def _shown(value: Decimal | int) -> str | int:
    return dollars(value) if isinstance(value, Decimal) else value
