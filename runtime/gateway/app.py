"""The routes: the OpenAI-compatible endpoints, `/v1/messages`, `/v1/models`, health.

A request is answered in its endpoint's own error shape whatever goes wrong; an unexpected
exception is logged by type (never its text, which may quote the request) and answered 500."""

from __future__ import annotations

import asyncio
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import HttpVersion10, HttpVersion11, web
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from aiohttp.web_urldispatcher import MatchInfoError, UrlMappingMatchInfo

from runtime.bundle.aliases import usable_aliases
from runtime.bundle.errors import RequestError, StoreUnavailable, clip
from runtime.bundle.money import Usage, dollars
from runtime.bundle.suggest import did_you_mean
from runtime.gateway.alerts import Alerts
from runtime.gateway.auth import Caller
from runtime.gateway.body_budget import BodyBudget, Lease
from runtime.gateway.books import Books, Record
from runtime.gateway.capped_site import Lingering, Reading, close_unread
from runtime.gateway.connection import when_lost
from runtime.gateway.deadline import Deadline
from runtime.gateway.execute import Engine, Job, Outcome, check_served, estimate, timeout_of
from runtime.gateway.forms import Form, any_trace_id, choices, max_output, read_form
from runtime.gateway.live import Live
from runtime.gateway.log import log
from runtime.gateway.relay import Counted, relay, settle_stream
from runtime.gateway.replies import Failure, error_body, failure_of, retry_after_header
from runtime.gateway.spaced import Spaced
from runtime.gateway.tracing import trace_context
from runtime.routing.router import Router
from runtime.routing.ticket import Ticket
from runtime.upstream.common import scrubber
from runtime.upstream.json_codec import loads

ENDPOINTS = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
}
JSON = "application/json"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
INVITED = "catalogc.invited"  # a request's key: its `Expect: 100-continue` was answered
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(eq=False)
class Gateway:
    """What the routes share in one process."""

    router: Router
    live: Live
    engine: Engine
    store_kind: str
    reload_error: str | None = None
    draining: bool = False
    inflight: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    books: Books = field(default_factory=Books)
    alerts: Alerts | None = None
    client_timeout: float = 30.0  # seconds for a request body to arrive, a stream to be read
    bodies: BodyBudget = field(default_factory=BodyBudget)  # request bodies held at once
    lingering: Lingering = field(default_factory=Lingering)  # answered, body not all read
    reading: Reading = field(default_factory=Reading)  # bodies still arriving
    serving: set[asyncio.Task[Any]] = field(default_factory=set)  # the requests' own tasks

    def __post_init__(self) -> None:
        self.books.bundle = self.live.bundle.digest
        # /metrics is unauthenticated and costly on a large catalog: spaced (spaced.py)
        self.exposition: Spaced[bytes] = Spaced(self._expose)

    async def _expose(self) -> bytes:
        metrics = self.books.metrics
        assert metrics is not None
        # the budget gauges, from what the store holds now; without the store the rest
        # still answers (/readyz reports the store)
        try:
            metrics.budgets(await asyncio.to_thread(self.router.usage))
        except StoreUnavailable:
            metrics.budgets_unknown()
        except NotImplementedError:
            pass
        return metrics.text()

    def swap(self, live: Live) -> None:
        """Serve a new bundle from the next request on (no await between the assignments)."""
        self.router.swap(live.bundle)
        self.live = live
        self.books.bundle = live.bundle.digest
        if self.alerts is not None:
            self.alerts.serve(live.bundle, live.secrets.alert_secret)
        self.reload_error = None


GATEWAY = web.AppKey("gateway", Gateway)


def build_app(gw: Gateway, max_body: int = MAX_BODY_BYTES) -> web.Application:
    router = _Router()
    with warnings.catch_warnings():  # "router argument is deprecated": the one way to it
        warnings.simplefilter("ignore", DeprecationWarning)
        app = web.Application(client_max_size=max_body, router=router)
    app[GATEWAY] = gw
    # every route: a body is invited only by `_read`, once the caller is known (none of
    # these reads one, so none is invited)
    for path, route in (("/healthz", healthz), ("/readyz", readyz), ("/v1/models", models),
                        ("/metrics", metrics), ("/v1/catalog/usage", usage)):  # fmt: skip
        app.router.add_get(path, route, expect_handler=_defer_expect)
    app.router.add_get("/v1/models/{model:.+}", model, expect_handler=_defer_expect)
    app.router.add_post("/v1/catalog/recover", recover, expect_handler=_defer_expect)
    for path, endpoint in ENDPOINTS.items():
        app.router.add_post(path, _handler(endpoint), expect_handler=_defer_expect)
    # last: what no route above takes (aiohttp would answer in plain text, and invite the
    # body of an `Expect: 100-continue` first)
    router.rest = app.router.add_route("*", "/{tail:.*}", _unrouted, expect_handler=_defer_expect)
    app.on_response_prepare.append(_mark_unread)
    return app


class _Router(web.UrlDispatcher):
    """Every request resolves to one of the gateway's routes. A request target that is not
    a path (`OPTIONS *`, `CONNECT host:port`) matches no pattern, and aiohttp answered it
    before any handler: in text/plain, and its check of the `Expect` header quoted the
    header back (a 417). Such a request goes to `_unrouted`, as do a request line of an HTTP
    version the gateway does not speak and a path with a percent-escape (below)."""

    rest: web.AbstractRoute | None = None

    async def resolve(self, request: web.Request) -> UrlMappingMatchInfo:
        if self.rest is not None and (
            request.version not in SPOKEN or ("%" in request.raw_path and _escaped(request))
        ):
            return UrlMappingMatchInfo({}, self.rest)
        found = await super().resolve(request)
        if isinstance(found, MatchInfoError) and self.rest is not None:
            return UrlMappingMatchInfo({}, self.rest)
        return found


SPOKEN = (HttpVersion11, HttpVersion10)  # llhttp also takes 0.9 and 2.0 request lines
GETS = ("/healthz", "/readyz", "/v1/models", "/metrics", "/v1/catalog/usage")
POSTS = ("/v1/catalog/recover",)  # besides the ENDPOINTS


def _escaped(request: web.Request) -> bool:
    """A path with a percent-escape, outside a model id (`/v1/models/%40p%2Fm`, as SDKs
    escape one): no route of the gateway is spelled so, and aiohttp matched the decoded
    path, so `/%6detrics` was `/metrics` past a front proxy filtering the literal path."""
    path = request.raw_path.partition("?")[0]
    return "%" in path and not path.startswith("/v1/models/")


async def _unrouted(request: web.Request) -> web.Response:
    """A path the gateway does not serve, or a method its path does not take: answered in
    the OpenAI error shape (Anthropic's on /v1/messages), quoting nothing the client sent.
    Paths are told apart as sent, escapes and all (`/v1/chat%2Fcompletions` is no route)."""
    if request.version not in SPOKEN:
        failure = Failure(505, "the gateway speaks HTTP/1.1 and HTTP/1.0 only",
                          "http_version_not_supported")  # fmt: skip
        answer = _error(failure, False)
        answer.force_close()
        return answer
    path = request.raw_path.partition("?")[0]
    one_model = path.startswith("/v1/models/") and path != "/v1/models/"
    if path in ENDPOINTS or path in GETS or path in POSTS or one_model:
        allowed = "GET, HEAD" if path in GETS or one_model else "POST"
        failure = Failure(405, f"this endpoint takes {allowed} only", "method_not_allowed",
                          headers={"Allow": allowed})  # fmt: skip
    else:
        served = ", ".join(ENDPOINTS)
        failure = Failure(404, f"no endpoint at this path: the gateway serves POST {served}, "
                          "and GET /v1/models[/{id}]", "unknown_endpoint")  # fmt: skip
    # Anthropic's shape under its path: SDKs call /v1/messages/count_tokens
    return _error(failure, path == "/v1/messages" or path.startswith("/v1/messages/"))


async def _defer_expect(request: web.Request) -> web.Response | None:
    """aiohttp's default answers `Expect: 100-continue` before any handler runs, inviting
    the body of a client without a key, or of one too large. Here nothing is answered yet:
    `_read` invites the body once the caller is known and its announced size fits. An
    expectation the gateway does not meet is refused there (and logged as the request's
    answer), or here on the other routes (a review: a GET with one was served)."""
    if request.path not in ENDPOINTS and _unmet_expectation(request):
        answer = _error(_expectation_failed(), request.path.startswith("/v1/messages"))
        answer.force_close()
        return answer
    return None


def _expectation_failed() -> Failure:  # the client's value is not quoted back
    return Failure(417, "the only expectation supported is `Expect: 100-continue`",
                   "expectation_failed", close=True)  # fmt: skip


def _unmet_expectation(request: web.Request) -> bool:
    """An HTTP/1.1 request expects something other than `100-continue` (in any of its
    `Expect` headers, any item of their lists; HTTP/1.0 has no expectations)."""
    if request.version != HttpVersion11:
        return False
    values = request.headers.getall("Expect", ())
    items = (item.strip().lower() for v in values for item in v.split(","))
    return any(item and item != "100-continue" for item in items)  # an empty item is none


async def _mark_unread(request: web.Request, response: web.StreamResponse) -> None:
    """Any answer (aiohttp's own 404 too) given before the body was all read: aiohttp will
    read and drop the rest, and at the connection cap such a connection may be evicted.
    A body never invited (`Expect: 100-continue`) may never come: that connection closes."""
    if request.content.is_eof():
        return
    if _expects_continue(request) and not request.get(INVITED):
        response.force_close()  # the hook runs after aiohttp chose the header, not after it
        response.headers["Connection"] = "close"  # wrote it: say so to the client
        close_unread(request.protocol)
        return
    request.app[GATEWAY].lingering.add(request.protocol, request.content)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition (labels: catalog slugs only). Unauthenticated, like /healthz:
    bind the gateway where only the scraper reaches it, or filter the path in front."""
    gw = request.app[GATEWAY]
    if gw.books.metrics is None:
        return web.json_response({"error": "metrics are off (--no-metrics)"}, status=404)
    body = await gw.exposition.get()
    return web.Response(body=body, headers={"content-type": gw.books.metrics.content_type})


async def usage(request: web.Request) -> web.Response:
    """Every counter's use now: a workspace key sees the counters its requests are charged
    to; an organization admin key sees all (or one workspace's, with `?workspace=`)."""
    gw = request.app[GATEWAY]
    live = gw.live
    caller = live.keys.caller(request.headers) or live.keys.admin(request.headers)
    if caller is None:
        return _error(Failure(401, "a workspace or organization admin key is required",
                              "invalid_api_key"), False)  # fmt: skip
    asked = request.query.get("workspace")
    if not caller.admin and asked not in (None, caller.workspace):
        return _error(Failure(403, "a workspace key sees its own workspace's usage only",
                              "access_denied"), False)  # fmt: skip
    workspace = caller.workspace if not caller.admin else asked
    try:
        rows = await asyncio.to_thread(gw.router.usage, workspace)
    except (RequestError, StoreUnavailable) as exc:
        return _error(failure_of(exc), False)
    except NotImplementedError:
        return _error(Failure(501, "this limits store cannot report usage", "unsupported"), False)
    body = {"object": "catalog.usage", "bundle": live.bundle.digest, "workspace": workspace,
            "counters": [row.to_json() for row in rows]}  # fmt: skip
    return web.json_response(body)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    body: dict[str, Any] = {"digest": gw.live.bundle.digest, "store": gw.store_kind}
    if gw.reload_error:
        body["reload_error"] = gw.reload_error
    # what --allow-missing-secrets serves without (503 for those providers), by name
    body.update((kind, listed) for kind, listed in gw.live.missing().items() if listed)
    problem = "draining" if gw.draining else await _store_problem(gw)
    body["status"] = problem or "ready"
    return web.json_response(body, status=503 if problem else 200)


async def _store_problem(gw: Gateway) -> str | None:
    client = getattr(gw.router.store, "async_client", None)
    if client is None:  # the memory store is always there
        return None
    try:
        async with asyncio.timeout(1.0):
            await _ping(client())
    except Exception:  # any failure to answer a PING means "not ready"
        return "store_unreachable"
    # a loss is seen here, before an admission finds it (the check records it). The marker
    # lives with the namespace's counters: on a cluster, the PING above may reach another
    # node than theirs, so a marker that cannot be read is a store that cannot serve (a
    # review: every request was 503 while /readyz said ready)
    store = gw.router.store
    for attempt in range(2):  # once more, as for the PING: a pooled connection gone stale
        try:
            async with asyncio.timeout(1.0):
                await store.acheck_generation()  # type: ignore[attr-defined]
            break
        except (StoreUnavailable, TimeoutError):
            if getattr(store, "counters_lost", False):
                break
            if attempt:
                return "store_unreachable"
    if getattr(store, "counters_lost", False):  # refusing until accepted: not ready
        return "counters_lost"
    return None


async def _ping(client: Any) -> None:
    """PING, once more if it fails: a pooled connection the server closed (it restarted,
    its idle `timeout` passed, CLIENT KILL) fails its first use, and the pool then makes a
    new one. Without the second try /readyz said `store_unreachable` of a healthy store."""
    try:
        await client.ping()
    except Exception:  # redis-py's errors (the gateway need not import redis)
        await client.ping()


async def recover(request: web.Request) -> web.Response:
    """An organization admin accepts counters the Redis store lost (FLUSHALL, a failover to
    an empty replica): they count afresh from now. Until then a fail-closed store refuses
    what needs them, and /readyz says `counters_lost`. This process's store only: every
    worker and replica sharing the namespace is recovered by this call to it, or restarted."""
    gw = request.app[GATEWAY]
    caller = gw.live.keys.admin(request.headers)
    if caller is None:
        return _error(Failure(401, "an organization admin key is required", "invalid_api_key"),
                      False)  # fmt: skip
    arecover = getattr(gw.router.store, "arecover", None)
    if arecover is None:
        return _error(Failure(501, "the memory store loses no counters: nothing to recover",
                              "unsupported"), False)  # fmt: skip
    try:
        generation = await arecover()
    except StoreUnavailable as exc:
        return _error(failure_of(exc), False)
    log("counters_recovered", generation=generation, pid=os.getpid())
    return web.json_response({"object": "catalog.recovered", "generation": generation,
                              "pid": os.getpid()})  # fmt: skip


async def models(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    live = gw.live
    caller = live.keys.caller(request.headers)
    if caller is None:
        return _error(Failure(401, "a workspace API key is required", "invalid_api_key"), False)
    return web.Response(body=_models_of(live, caller.workspace)[0], content_type=JSON)


async def model(request: web.Request) -> web.Response:
    """One model of the caller's list, as OpenAI's `models.retrieve` answers (the SDKs send
    `@provider/model` with its `/` percent-encoded; a raw `/` is read the same)."""
    live = request.app[GATEWAY].live
    caller = live.keys.caller(request.headers)
    if caller is None:
        return _error(Failure(401, "a workspace API key is required", "invalid_api_key"), False)
    ident, listed = request.match_info["model"], _models_of(live, caller.workspace)[1]
    found = listed.get(ident)
    if found is not None:
        return web.Response(body=found, content_type=JSON)
    suggestion = did_you_mean(ident, listed)
    hint = f"; did you mean `{suggestion}`?" if suggestion else ""
    return _error(Failure(404, f"`{clip(ident)}` is not a model this workspace may use{hint}",
                          "model_not_found"), False)  # fmt: skip


def _models_of(live: Live, workspace: str) -> tuple[bytes, dict[str, bytes]]:
    """What `workspace` may use, as /v1/models lists it: made once per bundle."""
    made = live._models.get(workspace)
    if made is None:
        data: list[dict[str, Any]] = [
            {"id": m, "object": "model", "created": 0, "owned_by": m[1:].split("/")[0],
             "mode": mode} for m, mode in live.models(workspace)]  # fmt: skip
        data += [{"id": a.name, "object": "model", "created": 0,
                  "owned_by": a.provider or "config"}
                 for a in usable_aliases(live.bundle, workspace)]  # fmt: skip
        body = json.dumps({"object": "list", "data": data}).encode()
        made = live._models[workspace] = (body, {m["id"]: json.dumps(m).encode() for m in data})
    return made


def _handler(endpoint: str):  # type: ignore[no-untyped-def]
    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve(request, endpoint)

    return handle


async def serve(request: web.Request, endpoint: str) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    anthropic = endpoint == "messages"
    record = Record(endpoint, gw.books)
    record.fields["trace_id"] = any_trace_id(request.headers)
    gw.inflight += 1
    task = asyncio.current_task()
    if task is not None:  # a drain that times out cancels it (server.drain)
        gw.serving.add(task)
    lease = gw.bodies.lease()
    try:
        return await _serve(request, gw, endpoint, record, lease)
    except Failure as exc:
        failure = record.failure = exc.detached()
        record.write_after_answer(failure.status)
        answer = _error(failure, anthropic, record.fields.get("trace_id"))
        if failure.close:
            answer.force_close()
        return answer
    except (RequestError, StoreUnavailable) as exc:
        failure = record.failure = failure_of(exc)
        record.write_after_answer(failure.status)
        return _error(failure, anthropic, record.fields.get("trace_id"))
    except asyncio.CancelledError:  # the drain timed out (server.drain): answered, settled
        _uncancel()
        if record.outcome is not None and "cost_usd" not in record.fields:
            _cancelled(record, record.outcome)
        failure = record.failure = Failure(503, "the gateway is shutting down; retry",
                                           "gateway_shutdown", retry_after=1.0)  # fmt: skip
        record.write_after_answer(503)
        answer = _error(failure, anthropic, record.fields.get("trace_id"))
        answer.force_close()
        return answer
    except Exception as exc:  # a bug: answered, logged by type only
        log("internal_error", endpoint=endpoint, error=type(exc).__name__,
            where=_where(exc))  # fmt: skip
        record.failure = Failure(500, "internal error", "internal_error")
        record.write_after_answer(500)
        return _error(Failure(500, "internal error", "internal_error"), anthropic,
                      record.fields.get("trace_id"))  # fmt: skip
    finally:
        lease.close()
        gw.inflight -= 1
        if task is not None:
            gw.serving.discard(task)


async def _serve(
    request: web.Request, gw: Gateway, endpoint: str, record: Record, lease: Lease
) -> web.StreamResponse:
    authed = gw.live
    caller = _caller(authed, request)
    record.fields["workspace"] = lease.workspace = caller.workspace
    size, body = await _body(request, gw, lease)
    # From here on one bundle serves the whole request, even across a reload: the plan
    # (resolved synchronously below) and `live` (secrets, URLs) come from the same swap.
    live = gw.live
    if live is not authed:  # reloaded while the body came: the key is the new bundle's to judge
        caller = _caller(live, request)
        record.fields["workspace"] = caller.workspace
    record.bundle = live.bundle.digest  # the bundle that prices it, for its usage event
    form = read_form(request.headers, body, record.fields["trace_id"])
    record.fields["trace_id"] = form.trace_id  # the id the answer's header carries
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    plan = gw.router.resolve(
        caller.workspace, form.model, provider=form.provider, config=form.config,
        metadata=form.metadata, params=body, path=request.path, endpoint=endpoint,
    )  # fmt: skip
    check_served(plan, endpoint)
    if plan.alias is not None:  # the log names the target as provider/model, and the alias
        record.fields["alias"] = plan.alias
    trace = trace_context(request.headers)
    span = record.span = gw.engine.tracing.request_span(f"POST {request.path}", trace)
    job = Job(caller.workspace, endpoint, body, request.headers, stream, include_usage,
              estimate(size, max_output(body, endpoint), choices(body, endpoint)), form.timeout_ms,
              form.forward, trace, span)  # fmt: skip
    outcome = record.outcome = Outcome()  # what a drain's cancel leaves is logged (`serve`)
    await gw.engine.run(job, plan, live, outcome)
    _describe(record, outcome)
    headers = _headers(outcome, form, record.fields["cost_usd"])
    if outcome.stream is not None:
        return await _stream(request, gw, job, outcome, headers, record)
    if outcome.failure is not None:
        record.failure = outcome.failure
        record.write_after_answer(_logged(request, outcome.failure.status))
        headers.update(retry_after_header(outcome.failure.retry_after))
        failure = outcome.failure
        return web.Response(status=failure.status, headers=headers, content_type=JSON,
                            body=error_body(failure.status, failure.message, failure.code,
                                            endpoint == "messages"))  # fmt: skip
    if outcome.status == 429 or outcome.status >= 500:
        headers.update(retry_after_header(outcome.retry_after))
    record.write_after_answer(_logged(request, outcome.status))
    return web.Response(status=outcome.status, body=outcome.body, headers=headers,
                        content_type=JSON)  # fmt: skip


def _logged(request: web.Request, status: int) -> int:
    """The status the log gives a whole answer: 499 when the client's connection closed
    while the upstream worked (the answer was charged, and can no longer be sent; a review:
    such a request was logged 200 though the client got nothing)."""
    transport = request.transport
    return 499 if transport is None or transport.is_closing() else status


def _caller(live: Live, request: web.Request) -> Caller:
    caller = live.keys.caller(request.headers)
    if caller is None:
        raise Failure(401, "a workspace API key is required (`Authorization: Bearer <key>` or "
                      "`x-portkey-api-key`)", "invalid_api_key")  # fmt: skip
    return caller


async def _body(request: web.Request, gw: Gateway, lease: Lease) -> tuple[int, dict[str, Any]]:
    """The body's size and its JSON object. The bytes are not kept: a request waits on its
    upstream (or relays a stream) for seconds, holding only what it parsed."""
    headers = request.headers
    if "content-encoding" in headers or "transfer-encoding" in headers:
        _check_codings(headers)
    timeout = gw.client_timeout
    try:
        if request.content.is_eof():  # all of it is here (the common case): nothing to wait
            raw = await _read(request, lease)
        else:  # a client trickling its body must not hold the request open for ever
            raw = await _read_slowly(request, lease, timeout, gw.reading)
    except TimeoutError:
        raise Failure(408, f"the request body did not arrive within {timeout:g} s",
                      "request_body_timeout", close=True) from None  # fmt: skip
    except ConnectionError:  # it went away mid-body: logged as a client gone, not a fault
        raise Failure(499, "the client closed the connection before its body arrived",
                      "client_gone", close=True) from None  # fmt: skip
    except (HttpProcessingError, RequestPayloadError):  # framing or content encoding
        raise Failure(400, "the request body's framing is malformed (Content-Length, chunked "
                      "encoding or content encoding)", "malformed_http",
                      close=True) from None  # fmt: skip
    try:
        body = loads(raw)
    except (ValueError, RecursionError):
        raise Failure(400, "the request body is not JSON", "invalid_json") from None
    if not isinstance(body, dict):
        raise Failure(400, "the request body is not a JSON object", "invalid_json")
    return len(raw), body


# what aiohttp decodes; any other coding it would take as none at all (a review)
CODINGS = frozenset({"", "identity", "gzip", "deflate"} | ({"br"} if HAS_BROTLI else set())
                    | ({"zstd"} if HAS_ZSTD else set()))  # fmt: skip


def _check_codings(headers: Mapping[str, str]) -> None:
    """A body in a coding the gateway cannot undo is refused, not read as if it had none:
    `Content-Encoding: x-foo` (415, RFC 9110 8.4.1), a transfer coding other than chunked
    alone (`gzip, chunked`: 501, RFC 9112 6.1). Both close the connection."""
    coding = headers.get("content-encoding")
    if coding is not None and coding.strip(" \t").lower() not in CODINGS:
        raise Failure(415, "the request body's Content-Encoding is not one the gateway decodes "
                      f"({', '.join(sorted(CODINGS - {''}))})", "unsupported_content_encoding",
                      close=True)  # fmt: skip
    transfer = headers.get("transfer-encoding")
    if transfer is not None and transfer.strip(" \t").lower() != "chunked":
        raise Failure(501, "the gateway takes no transfer coding but chunked alone",
                      "unsupported_transfer_encoding", close=True)  # fmt: skip


async def _read_slowly(request: web.Request, lease: Lease, timeout: float,
                       reading: Reading) -> bytes:  # fmt: skip
    """`_read` for a body still arriving: within `timeout`, and where the connection cap
    may cut it (runtime/gateway/capped_site.py, `Reading`)."""
    handler = request.protocol
    reading.start(handler, asyncio.get_running_loop().time())
    try:
        async with Deadline(timeout):
            return await _read(request, lease)
    except ConnectionError:
        if reading.finish(handler):
            raise Failure(408, "the request body had been arriving longest when the gateway "
                          "reached its connection cap (--max-connections) with none idle",
                          "request_body_too_slow", close=True) from None  # fmt: skip
        raise
    finally:
        reading.finish(handler)


async def _read(request: web.Request, lease: Lease) -> bytes:
    """The body, each part counted in the process's budget as it is read
    (runtime/gateway/body_budget.py); refused as soon as it is too large for either."""
    limit = request.app._client_max_size
    length = request.content_length
    if length is not None and length > limit:  # refused before reading any of it
        raise _too_large(limit)
    await _invite(request, lease, length)
    parts: list[bytes] = []
    size = 0
    content = request.content
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not lease.take(len(chunk)):
            raise _memory_full()
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def _invite(request: web.Request, lease: Lease, length: int | None) -> None:
    """Answer the request's expectation, now that it is to be read (see `_defer_expect`):
    a body announced larger than the budget has room for is refused, not invited."""
    expect = request.headers.get("Expect")
    if expect is None or request.version != HttpVersion11:
        return  # HTTP/1.0 has no expectations
    if _unmet_expectation(request):  # refused on the route already (`_defer_expect`)
        raise _expectation_failed()
    if request.content.is_eof():
        return  # the body is here already, or there is none: nothing to invite
    if length is not None and not lease.fits(length):
        raise _memory_full()
    if not request.get(INVITED):
        request[INVITED] = True
        await request.writer.write(CONTINUE)
        request.writer.output_size = 0  # the interim answer is not the answer's size


def _expects_continue(request: web.Request) -> bool:
    """The client holds its body until invited (another expectation's body comes anyway)."""
    expect = request.headers.get("Expect")
    return (
        expect is not None and expect.lower() == "100-continue" and request.version == HttpVersion11
    )


def _memory_full() -> Failure:
    return Failure(503, "the gateway holds as many request bodies as it may at once, or as "
                   "many as one workspace may (--max-body-memory, half of it per "
                   "workspace); retry shortly", "body_memory_full", retry_after=1.0,
                   close=True)  # fmt: skip


def _too_large(limit: int) -> Failure:
    return Failure(413, f"the request body is larger than {limit} bytes", "request_too_large",
                   close=True)  # fmt: skip


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Failure(400, f"`{name}` must be true or false", "invalid_request")
    return value


def _describe(record: Record, outcome: Outcome) -> None:
    record.outcome = outcome
    attempt = outcome.attempt
    fields = record.fields
    if attempt is not None:
        fields["provider"] = attempt.provider or attempt.service
        fields["model"] = attempt.model
        fields["option"] = attempt.option
    fields["attempts"] = outcome.attempts
    fields["retries"] = outcome.retries
    _usage(record, outcome.tickets, outcome.cost)


def _cancelled(record: Record, outcome: Outcome) -> None:
    """The books of a run the drain cancelled: what its tickets were settled at (a cancel
    may have cut the sum short while the last settlement ran)."""
    outcome.cost = sum((t.cost for t in outcome.tickets if t.cost is not None), Decimal(0))
    _describe(record, outcome)


def _usage(record: Record, tickets: list[Ticket], cost: Decimal) -> None:
    """The request's cost and the tokens it was charged for: both summed over every
    attempt settled (a 408's input, a retry's), so that one always explains the other."""
    record.fields["cost_usd"] = dollars(cost)
    used = [t.usage for t in tickets if t.usage is not None]
    if len(used) == 1:  # the common case, without the sums
        _tokens(record, used[0])
    elif used:
        tokens = record.fields["tokens"] = {
            "input": sum(u.input_tokens for u in used),
            "output": sum(u.output_tokens for u in used),
            "cache_read": sum(u.cache_read_tokens for u in used),
            "cache_write": sum(u.cache_write_tokens + u.cache_write_1h_tokens for u in used),
        }
        hour = sum(u.cache_write_1h_tokens for u in used)
        if hour:  # of which 1-hour TTL (priced apart)
            tokens["cache_write_1h"] = hour


def _tokens(record: Record, usage: Usage) -> None:
    tokens = record.fields["tokens"] = {
        "input": usage.input_tokens, "output": usage.output_tokens,
        "cache_read": usage.cache_read_tokens,
        "cache_write": usage.cache_write_tokens + usage.cache_write_1h_tokens,
    }  # fmt: skip
    if usage.cache_write_1h_tokens:  # of which 1-hour TTL (priced apart)
        tokens["cache_write_1h"] = usage.cache_write_1h_tokens


def retry_count(outcome: Outcome) -> str:
    """Portkey's convention: the retries made, or -1 when they ran out on a status that
    retries (or a Retry-After passed the cap)."""
    return "-1" if outcome.exhausted else str(outcome.retries)


def _headers(outcome: Outcome, form: Form, cost_usd: str) -> dict[str, str]:
    """`cost_usd`: the request's cost as the log line has it (`_describe`)."""
    headers = {"x-portkey-trace-id": form.trace_id,
               "x-portkey-retry-attempt-count": retry_count(outcome),
               "x-portkey-cache-status": "DISABLED"}  # fmt: skip  # no response cache (yet)
    attempt = outcome.attempt
    if attempt is not None:
        headers["x-portkey-provider"] = f"@{attempt.provider}" if attempt.provider else (
            attempt.service)  # fmt: skip
        if attempt.option is not None:
            headers["x-portkey-last-used-option-index"] = attempt.option
    if outcome.stream is None:
        headers["x-catalog-cost-usd"] = cost_usd
    return headers


async def _stream(
    request: web.Request,
    gw: Gateway,
    job: Job,
    outcome: Outcome,
    headers: dict[str, str],
    record: Record,
) -> web.StreamResponse:
    assert outcome.stream is not None
    resp, adapter, call, ticket = outcome.stream
    translator = adapter.stream(call)
    client = web.StreamResponse(
        status=resp.status,
        headers={**headers, "content-type": "text/event-stream", "cache-control": "no-cache"},
    )
    complete = False
    writer = Counted(client.write)
    # a client gone while the upstream is silent: its call closes at once, and the relay,
    # finding the upstream ended, then the client gone, says `client_gone`
    forget = when_lost(request.protocol, resp.close)
    try:
        try:
            await client.prepare(request)
        except (ConnectionError, RuntimeError):  # gone before its headers went out
            resp.close()
            record.fields["stream"] = "client_gone"
            return client
        # a stream's request_timeout bounds each silence between chunks
        idle = timeout_of(job, ticket.attempt)
        ended = await relay(resp, translator, writer, idle, gw.client_timeout, scrubber(call))
        complete = ended == "ok"
        record.fields["stream"] = ended
    finally:
        forget()
        cost, _ = await settle_stream(ticket, translator, complete, writer.events)
        outcome.tickets.append(ticket)
        if writer.first is not None:
            record.ttft = writer.first - record.started
        _usage(record, outcome.tickets, outcome.cost + cost)
        how = record.fields.get("stream")
        gone = how in ("client_gone", "client_timeout")
        stopped = how == "gateway_shutdown"
        record.write_after_answer(resp.status if complete else 499 if gone else 503 if stopped
                                  else 502)  # fmt: skip
    if record.fields.get("stream") == "client_timeout":
        _abort(request)  # it stopped reading: what is still buffered for it goes
        return client
    try:
        async with Deadline(gw.client_timeout):
            await client.write_eof()
    except TimeoutError:
        _abort(request)
    except (ConnectionError, RuntimeError):
        pass
    return client


def _uncancel() -> None:
    """The cancel is answered, not passed on: aiohttp's shutdown waits for the handler to
    end, and this one ends by answering (the task is no longer being cancelled)."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _where(exc: BaseException) -> str:
    """file:line of the innermost frame: enough to find a bug, without the message."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"


def _error(failure: Failure, anthropic: bool, trace_id: str | None = None) -> web.Response:
    headers = {**failure.headers, **retry_after_header(failure.retry_after)}
    if trace_id:
        headers["x-portkey-trace-id"] = trace_id
    return web.Response(
        status=failure.status,
        headers=headers,
        content_type=JSON,
        body=error_body(failure.status, failure.message, failure.code, anthropic),
    )
