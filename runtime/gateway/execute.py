"""Executing a plan: for each attempt, admit on its chain → call the upstream → settle from
the usage it reports; retry with backoff (honouring Retry-After, capped) and move on to the
next attempt on the statuses the plan names. A streamed answer is handed back unread, with
its admission still open, for the app to relay and settle (runtime/gateway/relay.py)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runtime.bundle.errors import BudgetExceeded, RequestError, StoreUnavailable
from runtime.bundle.hosts import credential_header
from runtime.bundle.money import MAX_TOKENS, Estimate, Usage, reserved_usage
from runtime.gateway.alerts import Alerts
from runtime.gateway.deadline import Deadline
from runtime.gateway.forms import NOT_FORWARDED, choices, max_output, remote_input
from runtime.gateway.live import Live
from runtime.gateway.replies import Failure, failure_of
from runtime.gateway.tracing import Tracing
from runtime.gateway.transport import BROKEN, Transport, UpstreamUnreachable
from runtime.routing.modes import ENDPOINT_PATHS
from runtime.routing.plan import Attempt, Plan
from runtime.routing.router import Router
from runtime.routing.ticket import Ticket
from runtime.upstream import SERVICES, adapter_for
from runtime.upstream.base import Adapter, Call, Response, Unsupported, UpstreamProtocolError
from runtime.upstream.common import redact

DEFAULT_RETRY_ON = frozenset({429, 500, 502, 503, 504})
MAX_RETRIES = 5  # Portkey's cap on `retry.attempts`
MAX_RETRY_WAIT = 60.0  # seconds of waiting per request, in total (Portkey's cap)
BACKOFF_BASE = 0.1  # seconds; doubled per retry, with jitter
DEFAULT_TIMEOUT = 600.0  # seconds, when the plan sets no request_timeout
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a whole (non-streamed) upstream answer
# client headers an adapter may read from Call.headers (the Anthropic one's); OpenAI's
# organization and project come from the catalog's secrets, never from the client
FORWARDED = ("anthropic-version", "anthropic-beta")


@dataclass
class Job:
    """One client request, parsed and authenticated."""

    workspace: str
    endpoint: str
    body: dict[str, Any]
    headers: Mapping[str, str]  # lower-case
    stream: bool
    include_usage: bool
    estimate: Estimate
    timeout_ms: int | None = None  # the client's x-portkey-request-timeout, over the plan's
    forward: tuple[str, ...] | None = None  # the client's x-portkey-forward-headers, likewise
    trace: Mapping[str, str] = field(default_factory=dict)  # the client's valid traceparent
    span: Any = None  # the request's OpenTelemetry span, when tracing is on


@dataclass
class Outcome:
    """What happened, for the client's answer and the access log."""

    status: int = 502
    body: bytes = b""
    attempt: Attempt | None = None
    retries: int = 0  # of the last attempt
    exhausted: bool = False  # its retries ran out (or hit the wait cap) on a retried status
    attempts: int = 0
    cost: Decimal = Decimal(0)
    usage: Usage | None = None
    failure: Failure | None = None
    refused: bool = False  # the last try was refused by the gateway itself, never sent
    retry_after: float | None = None
    # a stream ready to relay: the upstream response, its adapter call and admission
    stream: tuple[Response, Adapter, Call, Ticket] | None = None
    tickets: list[Ticket] = field(default_factory=list)  # every admission, once settled
    # every try: its attempt, the upstream's seconds to answer (None: never sent), retry no.
    tries: list[tuple[Attempt, float | None, int]] = field(default_factory=list)


class Engine:
    def __init__(
        self,
        router: Router,
        transport: Transport,
        tracing: Tracing | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        self.router = router
        self.transport = transport
        self.tracing = tracing or Tracing()
        self.alerts = alerts

    async def run(self, job: Job, plan: Plan, live: Live, out: Outcome) -> None:
        """Fill `out`, the caller's, as the plan runs: a run cancelled (by the drain) still
        tells the books what it admitted and settled."""
        waited = 0.0
        index: int | None = 0
        while index is not None and index < len(plan.attempts):
            attempt = plan.attempts[index]
            out.attempt, out.retries, out.exhausted = attempt, 0, False
            count, retry_on, honour = _retry_policy(attempt.retry)
            while True:
                out.attempts += 1
                status = await self._try(job, attempt, live, out)
                # the gateway's own refusal (a budget, a rate limit, the store) is answered
                # at once, as Portkey answers its own: only the upstream's statuses retry
                if out.stream is not None or out.refused or status not in retry_on:
                    break
                if out.retries >= count:
                    out.exhausted = True  # every retry used, and still a status that retries
                    break
                delay = _backoff(out.retries, out.retry_after if honour else None)
                if delay >= MAX_RETRY_WAIT or waited + delay > MAX_RETRY_WAIT:
                    out.exhausted = True  # a Retry-After past the cap: no more retries
                    break
                waited += delay
                out.retries += 1
                await asyncio.sleep(delay)
            if out.stream is not None:
                return
            index = attempt.next_after(status)

    async def _try(self, job: Job, attempt: Attempt, live: Live, out: Outcome) -> int:
        """One upstream call; its status (the gateway's own for refusals) is recorded."""
        out.failure, out.retry_after, out.body, out.refused = None, None, b"", False
        span = self.tracing.attempt_span(job.span, attempt.provider or attempt.service,
                                         attempt.model, out.retries)  # fmt: skip
        try:
            return await self._attempt(job, attempt, live, out, span)
        finally:
            self.tracing.end(span, out.status)

    async def _attempt(self, job: Job, attempt: Attempt, live: Live, out: Outcome,
                       span: Any) -> int:  # fmt: skip
        try:
            adapter = adapter_for(attempt.service)
            call = self._call(job, attempt, live, self.tracing.headers(span, job.trace))
            outbound = adapter.prepare(call)
            reserve = _reserve(job, attempt, adapter, call)
        except Unsupported as exc:
            return _refused(out, Failure(exc.status, exc.message, "unsupported"), own=True)
        except Failure as exc:
            return _refused(out, exc, own=True)
        try:
            ticket = await self.router.aadmit(attempt, reserve)
        except (RequestError, StoreUnavailable) as exc:
            out.tries.append((attempt, None, out.retries))
            if isinstance(exc, BudgetExceeded) and self.alerts is not None:
                self.alerts.refused(exc, self.router.bundle.organization.get("epoch"))
            return _refused(out, failure_of(exc), own=True)
        timeout = timeout_of(job, attempt)
        settle: Usage | None = None  # None: cancelled (input only)
        billed = True  # False: the upstream answered an error without usage, or nothing
        sent = time.perf_counter()
        answered: float | None = None
        try:
            async with Deadline(timeout):
                resp = await self.transport.send(outbound, attempt.service, call.settings)
                answered = time.perf_counter() - sent
                if not _answerable(resp.status):  # an answer without usage: not billed
                    resp.close()
                    settle, billed = Usage(), False
                    raise UpstreamProtocolError(f"the upstream answered HTTP {resp.status}")
                if job.stream and 200 <= resp.status < 300:
                    out.status, out.stream = resp.status, (resp, adapter, call, ticket)
                    ticket = None  # type: ignore[assignment]  # the relay settles it now
                    return resp.status
                body = await resp.read(MAX_ANSWER_BYTES)
            reply = adapter.reply(call, resp.status, body, resp.headers)
            out.status, out.retry_after = reply.status, reply.retry_after
            out.body = redact(reply.body, call)  # whatever it said, its credential goes no further
            if reply.usage is not None:
                settle = reply.usage
            elif 200 <= reply.status < 300:  # no usage reported: charge what was reserved
                settle = reserved_usage(reserve, attempt.max_output_tokens)
            else:  # an upstream error with no usage is not billed (nor its per-request fee)
                settle, billed = Usage(), False
            out.usage = settle
            return reply.status
        except TimeoutError:
            # Portkey's words and its `code: null`, so a client tells the two apart the same way
            ms = round(timeout * 1000)
            answered = timeout
            return _refused(out, Failure(408, "Request exceeded the timeout sent in the request: "
                                         f"{ms}ms", None))  # fmt: skip
        except UpstreamUnreachable as exc:
            settle, billed = Usage(), False
            return _refused(out, Failure(502, f"the upstream of `{attempt.target}` cannot be "
                                         f"reached ({exc})", "upstream_unreachable"))  # fmt: skip
        except (UpstreamProtocolError, ValueError) as exc:
            return _refused(out, Failure(502, f"the upstream answered badly: {exc}",
                                         "upstream_protocol_error"))  # fmt: skip
        except BROKEN as exc:  # a reset or closed connection mid-answer
            exc.__traceback__ = None  # aiohttp keeps it on `resp`: a cycle through this frame
            return _refused(out, Failure(502, f"the upstream connection failed "
                                         f"({type(exc).__name__})", "upstream_error"))  # fmt: skip
        finally:
            out.tries.append((attempt, answered, out.retries))
            if ticket is not None:
                out.tickets.append(ticket)  # first: a cancel below still leaves it in the books
                out.cost += await ticket.asettle_through_cancel(settle, billed)

    def _call(self, job: Job, attempt: Attempt, live: Live, trace: Mapping[str, str]) -> Call:
        up = live.upstream(attempt)
        if up.missing_secret is not None:
            raise Failure(
                503,
                f"`{attempt.target}` is unavailable: its credential reference "
                f"`{up.missing_secret}` could not be read when the bundle was loaded",
                "credentials_unavailable",
            )
        if up.unavailable is not None:
            raise Failure(503, f"`{attempt.target}` is unavailable: its endpoint reference "
                          f"`{up.unavailable}` could not be read when the bundle was loaded",
                          "endpoint_unavailable")  # fmt: skip
        if up.base_url is None:
            raise Failure(502, f"`{attempt.target}` has no base_url to call", "no_base_url")
        forwarded = {k: v for k in FORWARDED if (v := _header(job.headers, k)) is not None}
        if attempt.service == "mock":
            forwarded.update(
                {k.lower(): v for k, v in job.headers.items() if k.lower().startswith("x-mock-")}
            )
        return Call(
            endpoint=job.endpoint, body=_as_asked(attempt.params, job.stream), stream=job.stream,
            base_url=up.base_url, secrets=up.secrets, settings=up.settings, headers=forwarded,
            include_usage=job.include_usage, service=attempt.service, auth=attempt.auth,
            passed={**passed_headers(job, attempt), **trace, **up.headers},
        )  # fmt: skip


def _answerable(status: int) -> bool:
    """Whether an upstream status is one a client can read as an answer: 101 or 999 left
    SDKs with a connection error; a 204/205/304 cannot carry the answer (the client got
    nothing), and a redirect is never followed, since it would take the credential
    elsewhere (relayed, it was an answer with no meaning). Such a status is not billed."""
    return 200 <= status <= 599 and status not in _NO_ANSWER and not 300 <= status < 400


_NO_ANSWER = frozenset((204, 205))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A client header an adapter reads, or Portkey's name for it (the portkey SDKs send
    `anthropic_beta=` as `x-portkey-anthropic-beta`): it was dropped, silently."""
    value = headers.get(name)
    return value if value is not None else headers.get("x-portkey-" + name)


def _as_asked(params: Mapping[str, Any], stream: bool) -> Mapping[str, Any]:
    """The upstream answers in the form the client asked for, which is how the answer is
    read, relayed and settled: a config's `stream` (refused by the compiler, E0515, and in
    inline configs) is dropped here too, for bundles compiled before that. A streamed call's
    adapter sets `stream: true` itself."""
    if not stream and params.get("stream", False) is not False:
        return {key: value for key, value in params.items() if key != "stream"}
    return params


def check_served(plan: Plan, endpoint: str) -> None:
    """Refuse the whole request (400) when an attempt's service speaks an API without this
    endpoint (a fallback to an OpenAI target on /v1/messages, to an Anthropic one on
    /v1/responses), as a model of the wrong mode is (runtime/routing/modes.py): taken in
    turn, it would fail only once the targets before it had, and its 400 would replace
    their real answer. A service without an adapter yet is left to its attempt (501)."""
    for attempt in plan.attempts:
        adapter = SERVICES.get(attempt.service)
        if adapter is not None and endpoint not in adapter.endpoints:
            served = " and ".join(ENDPOINT_PATHS[e] for e in sorted(adapter.endpoints))
            raise Failure(400, f"`{attempt.target}` cannot serve {ENDPOINT_PATHS[endpoint]}: "
                          f"service `{attempt.service}` speaks the {adapter.family} API, which "
                          f"serves {served}; every target a request may reach must serve it",
                          "unsupported")  # fmt: skip


def passed_headers(job: Job, attempt: Attempt) -> dict[str, str]:
    """The client headers `forward_headers` names (the request's list over the config's),
    lower-cased. A credential or framing header never passes, whoever names it: a compiled
    config that lists one is warned (W0501), a client's list refused (forms.py)."""
    names = job.forward
    if names is None:
        listed = attempt.carried.get("forward_headers")
        names = tuple(n for n in listed if isinstance(n, str)) if listed else ()
    passed: dict[str, str] = {}
    for name in names:
        low = name.lower()
        if low in NOT_FORWARDED or credential_header(low):
            continue
        value = job.headers.get(low)
        if value is not None:
            passed[low] = value
    return passed


def _reserve(job: Job, attempt: Attempt, adapter: Adapter, call: Call) -> Estimate:
    """What admission reserves for this attempt: the output cap of the body it sends, not
    the client's (a config's `override_params` or `drop_params` may change `max_tokens`),
    else the cap the adapter sends on its own, else (None) the model's most; for each
    completion asked (`n`...). Input: the body's bytes, or the model's context window when
    the body names input it does not carry (an image URL, a stored response)."""
    cap = max_output(attempt.params, job.endpoint)
    if cap is None:
        cap = adapter.output_cap(call)
    many = choices(attempt.params, job.endpoint)
    given = job.estimate.input_tokens
    if attempt.context_window and remote_input(attempt.params, job.endpoint):
        given = max(given, min(attempt.context_window, MAX_TOKENS))  # what it may read at most
    base = job.estimate
    if cap == base.max_tokens and many == base.choices and given == base.input_tokens:
        return base
    return Estimate(given, cap, many)


def timeout_of(job: Job, attempt: Attempt) -> float:
    """Seconds an attempt may wait for its upstream: the client's header first (Portkey's
    order), then the target's `request_timeout`."""
    ms = job.timeout_ms or attempt.timeout_ms
    return ms / 1000 if ms else DEFAULT_TIMEOUT


def _refused(out: Outcome, failure: Failure, own: bool = False) -> int:
    """The try ends in `failure`; `own`: the gateway refused it itself, nothing was sent."""
    failure = failure.detached()  # a caught one's frames would hold the request in a cycle
    out.status, out.failure, out.retry_after = failure.status, failure, failure.retry_after
    out.refused = own
    return failure.status


def _retry_policy(retry: Mapping[str, Any] | None) -> tuple[int, frozenset[int], bool]:
    """(retries allowed, statuses that retry whatever their range, honour Retry-After)."""
    count = min(int((retry or {}).get("attempts") or 0), MAX_RETRIES)
    if not retry or count == 0:
        return 0, frozenset(), False
    codes = retry.get("on_status_codes")
    honour = bool(retry.get("use_retry_after_header") or retry.get("use_retry_after_headers"))
    # an empty list retries on nothing (Portkey's `onStatusCodes ?? defaults`): only an
    # absent one means the defaults
    return count, frozenset(codes) if codes is not None else DEFAULT_RETRY_ON, honour


def _backoff(retries: int, retry_after: float | None) -> float:
    if retry_after is not None and retry_after >= 0:
        return retry_after  # past the cap, it ends the retries (Engine.run)
    jitter: float = 1 + random.random() / 2
    return BACKOFF_BASE * float(2**retries) * jitter


def estimate(raw_size: int, max_output: int | None, many: int = 1) -> Estimate:
    """What admission reserves. Input: the request's size in bytes, an upper bound on its
    tokens for byte-level tokenizers (we do not tokenize); output: the client's max, for
    each of the `many` completions it asks for (forms.choices)."""
    return Estimate(min(raw_size, MAX_TOKENS), max_output, many)
