"""The books of one request, closed when it is answered: its access-log line, its usage
event (runtime/gateway/usage_events.py) and its metrics (runtime/gateway/metrics.py)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.bundle.price_tables import requested_tier
from runtime.gateway.log import log
from runtime.gateway.replies import Failure

if TYPE_CHECKING:
    from runtime.gateway.execute import Outcome
    from runtime.gateway.metrics import Metrics, Tally
    from runtime.gateway.tracing import Tracing
    from runtime.gateway.usage_events import EventLog


@dataclass
class Books:
    """What one process keeps of every request: optional event log and metrics."""

    events: EventLog | None = None
    metrics: Metrics | None = None
    tracing: Tracing | None = None
    bundle: str = ""  # the digest serving now (swapped on reload)


@dataclass
class Record:
    """One request's entry, filled as it goes and written once (`write`)."""

    endpoint: str
    books: Books | None = None
    started: float = field(default_factory=time.perf_counter)
    fields: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome | None = None
    failure: Failure | None = None  # the gateway's own refusal, when that was the answer
    ttft: float | None = None  # seconds to the first streamed event
    span: Any = None  # the request's OpenTelemetry span, when tracing is on
    closed: bool = False  # written, or about to be (`write_after_answer`)
    bundle: str = ""  # the digest of the bundle that priced it (a reload may come after)

    def write_after_answer(self, status: int) -> None:
        """`write`, once the answer has gone out: aiohttp writes what the handler returns
        before the loop runs its next callback, so the client does not wait for the books.
        Once per request: a later call (a fault after the books were closed) is ignored."""
        if self.closed:
            return
        self.closed = True
        asyncio.get_running_loop().call_soon(self._write_logged, status)

    def _write_logged(self, status: int) -> None:
        try:
            self.write(status)
        except Exception as exc:  # a bug: no handler is left to answer it, so log it here
            log("internal_error", endpoint=self.endpoint, error=type(exc).__name__,
                where="books")  # fmt: skip

    def write(self, status: int) -> None:
        ms = (time.perf_counter() - self.started) * 1000
        log("request", endpoint=self.endpoint, status=status, latency_ms=round(ms, 3),
            **self.fields)  # fmt: skip
        if self.books is not None:
            if self.span is not None and self.books.tracing is not None:
                last = self.outcome.attempt if self.outcome is not None else None
                self.books.tracing.end(
                    self.span, status, workspace=self.fields.get("workspace"),
                    provider=_provider(last) or None, model=last.model if last else None,
                    attempts=self.outcome.attempts if self.outcome is not None else 0,
                )  # fmt: skip
            if self.books.events is not None:
                self._event(self.books.events, status)
            if self.books.metrics is not None:
                self._count(self.books.metrics, status)

    def _event(self, events: EventLog, status: int) -> None:
        from runtime.gateway.usage_events import usage_event

        out = self.outcome
        if out is None or not out.tickets:
            return
        # the last attempt sent upstream: its charges are the event's, and the last attempt
        # tried may be one the gateway refused before any call (a review: a budget's 412
        # named a provider never contacted, with the cost of the one before it)
        attempt = out.tickets[-1].attempt
        event = usage_event(
            tickets=out.tickets, workspace=self.fields.get("workspace", ""),
            provider=attempt.provider, model=attempt.model, endpoint=self.endpoint, status=status,
            attempts=out.attempts, stream="stream" in self.fields,
            trace_id=self.fields.get("trace_id"),
            bundle=self.bundle or (self.books.bundle if self.books else ""),
        )  # fmt: skip
        if event is not None:
            if (
                "alias" in self.fields
            ):  # the model alias the request named (runtime/bundle/aliases.py)
                event["alias"] = self.fields["alias"]
            events.add(event)

    def _count(self, m: Metrics, status: int) -> None:
        workspace = str(self.fields.get("workspace", ""))
        out = self.outcome
        last = out.attempt if out is not None else None
        tally = m.tally((workspace, _provider(last), last.model if last else ""))
        statuses = tally.statuses
        statuses[status] = statuses.get(status, 0) + 1
        if self.failure is not None:
            m.count(m.refusals, (self.failure.reason, self.failure.level))
        if out is not None:
            self._count_tickets(m, out, workspace, last, tally)
            self._count_tries(m, out, workspace, last)
        m.settle()

    def _count_tickets(self, m: Metrics, out: Outcome, workspace: str, last: Any,
                       last_tally: Tally) -> None:  # fmt: skip
        for ticket in out.tickets:
            used, a = ticket.usage, ticket.attempt
            if used is None:
                continue
            t = last_tally if a is last else m.tally((workspace, _provider(a), a.model))
            t.settled += 1
            t.inputs += used.input_tokens
            t.outputs += used.output_tokens
            t.reads += used.cache_read_tokens
            t.writes += used.cache_write_tokens + used.cache_write_1h_tokens
            charged = ticket.units or 0
            t.charged += charged
            if (a.catalog_rates is None and not ticket.batch) or not ticket.billed:
                t.catalog += charged  # the catalog's price was charged, or nothing was billed
            else:
                t.catalog += (a.catalog_rates or a.rates).cost(used, requested_tier(a.params))

    def _count_tries(self, m: Metrics, out: Outcome, workspace: str, last: Any) -> None:
        moves = 0
        for i, (attempt, seconds, retry) in enumerate(out.tries):
            if seconds is not None:
                m.observe(m.latency, (_provider(attempt), attempt.model), seconds)
            if retry:
                m.count(m.retries, (_provider(attempt), attempt.model))
            elif i:
                moves += 1
        if moves:
            m.count(m.fallbacks, (workspace,), moves)
        if self.ttft is not None and last is not None:
            m.observe(m.ttft, (_provider(last), last.model), self.ttft)


def _provider(attempt: Any) -> str:
    if attempt is None:
        return ""
    return str(attempt.provider or attempt.service)
