"""The gateway as operators run it: start-up checks, hostile requests, hot reload, drain,
workers. Real processes on loopback sockets; upstreams are the in-process mock."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.redis_server import RedisServer
from tests.runtime.conftest import compile_files
from tests.runtime.gateway_proc import Gateway

KEY = "gw-ops-key-FAKE-0001"
CREDENTIAL = "sk-test-FAKE-credential-0000"
AUTH = {"authorization": f"Bearer {KEY}"}


def catalog(limit: int = 1000, extra_model: str = "") -> dict[str, str]:
    return {
        "catalog.yaml": "kind: Organization\nversion: 1\nname: Ops\n",
        "i.yaml": f"""\
kind: Integration
slug: mock-local
service: mock
---
kind: Provider
slug: mock
integration: mock-local
models: {{allow: [echo{extra_model}]}}
---
kind: Integration
slug: openai-main
service: openai-compatible
base_url: http://127.0.0.1:9/v1
credentials: {{api_key: {{env: GW_OPS_FAKE_KEY}}}}
models: {{custom: [{{name: local-model, pricing: {{input: 1, output: 1}}}}]}}
---
kind: Provider
slug: openai-prod
integration: openai-main
""",
        "w.yaml": f"""\
kind: Workspace
slug: ops
rate_limits: [{{limit: {limit}, unit: requests, per: minute}}]
api_keys: [{{name: ops, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}]
""",
    }


def chat(model: str = "@mock/echo", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "one two three"}], **extra}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", catalog()))
    return path


@pytest.fixture
def gateway(bundle: Path) -> Iterator[Gateway]:
    gw = Gateway(bundle, env={"GW_OPS_FAKE_KEY": CREDENTIAL})
    yield gw
    gw.stop()
    assert KEY not in gw.text() and CREDENTIAL not in gw.text()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runtime.gateway", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, env=env)  # fmt: skip


def test_a_missing_secret_fails_start_naming_the_reference(bundle: Path) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != "GW_OPS_FAKE_KEY"}
    done = run_cli(str(bundle), "--port", "0", env=env)
    assert done.returncode == 2
    assert "env:GW_OPS_FAKE_KEY (not set)" in done.stderr and "Traceback" not in done.stderr


def test_allow_missing_secrets_makes_only_those_providers_503(bundle: Path) -> None:
    gw = Gateway(bundle, "--allow-missing-secrets")
    try:
        assert gw.events("credentials_missing")[0]["reference"] == "env:GW_OPS_FAKE_KEY"
        status, _, body = gw.request("POST", "/v1/chat/completions",
                                     chat("@openai-prod/local-model"), AUTH)  # fmt: skip
        assert status == 503 and b"env:GW_OPS_FAKE_KEY" in body
        assert gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
    finally:
        gw.stop()


def test_workers_need_the_redis_store(bundle: Path) -> None:
    done = run_cli(str(bundle), "--workers", "2")
    assert done.returncode == 2 and "--workers > 1 needs --redis" in done.stderr


def test_an_unusable_bundle_fails_start_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "catalog-bundle/2"}')
    done = run_cli(str(bad))
    assert done.returncode == 2 and done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("raw, headers, status, code", [
    (b"{", {}, 400, "invalid_json"),
    (b"[1]", {}, 400, "invalid_json"),
    (b"[" * 100_000, {}, 400, "invalid_json"),
    (b'{"model": "@mock/echo", "n": 1' + b"0" * 5000 + b"}", {}, 400, "invalid_json"),
    (json.dumps(chat(stream="yes")).encode(), {}, 400, "invalid_request"),
    (json.dumps(chat(max_tokens=-1)).encode(), {}, 400, "invalid_request"),
    (json.dumps(chat("@mock/ecko")).encode(), {}, 404, "model_not_found"),
    (json.dumps(chat("@nope/echo")).encode(), {}, 404, "provider_not_found"),
    (json.dumps(chat("@mock/echo-large")).encode(), {}, 403, "access_denied"),
    (json.dumps(chat("echo")).encode(), {}, 400, "invalid_request"),
    (json.dumps(chat()).encode(), {"x-portkey-config": "nope"}, 404, "config_not_found"),
    (json.dumps(chat()).encode(), {"x-portkey-config": '{"provider": "@mock", '
                                   '"custom_host": "https://evil.example"}'}, 403, "access_denied"),
    (json.dumps(chat()).encode(), {"x-portkey-metadata": "nope"}, 400, "invalid_request"),
    (json.dumps({"model": "@mock/echo", "messages": [{"role": "user", "content": "x" * 20}] * 2,
                 "deep": json.loads("[" * 100 + "]" * 100)}).encode(), {}, 400, "invalid_request"),
])  # fmt: skip
def test_hostile_requests_get_typed_errors(
    gateway: Gateway, raw: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    got, head, body = gateway.request("POST", "/v1/chat/completions", raw=raw,
                                      headers={**AUTH, **headers})  # fmt: skip
    error = json.loads(body)["error"]
    assert (got, error["code"]) == (status, code), error
    assert head["x-portkey-trace-id"]


def test_a_bad_value_in_the_request_is_not_called_a_config_error(gateway: Gateway) -> None:
    # the body's own values out of bounds: the client's request, not a routing config
    raw = b'{"model": "@mock/echo", "messages": [{"role": "user", "content": "\\ud800"}]}'
    status, _, body = gateway.request("POST", "/v1/chat/completions", raw=raw, headers=AUTH)
    message = json.loads(body)["error"]["message"]
    assert status == 400 and message.startswith("invalid request: params.messages[0].content")
    status, _, body = gateway.request("POST", "/v1/chat/completions", raw=b"{}", headers=AUTH)
    assert json.loads(body)["error"]["message"].startswith("invalid request: ")  # no model


def test_unknown_callers_get_401_in_each_endpoints_shape(gateway: Gateway) -> None:
    for headers in ({}, {"authorization": "Bearer wrong"}, {"x-portkey-api-key": KEY + "x"}):
        status, _, body = gateway.request("POST", "/v1/chat/completions", chat(), headers)
        assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
        status, _, body = gateway.request("POST", "/v1/messages", chat(), headers)
        assert status == 401 and json.loads(body)["type"] == "error"
        assert gateway.request("GET", "/v1/models", None, headers)[0] == 401


def test_body_and_header_sizes_are_bounded(bundle: Path) -> None:
    gw = Gateway(bundle, "--max-body-bytes", "4096", env={"GW_OPS_FAKE_KEY": CREDENTIAL})
    try:
        big = chat(padding="x" * 10_000)
        status, _, body = gw.request("POST", "/v1/chat/completions", big, AUTH)
        assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"
        status, _, _ = gw.request(
            "POST",
            "/v1/chat/completions",
            chat(),
            {**AUTH, "x-portkey-metadata": "{" + " " * 100_000 + "}"},
        )
        assert status in (400, 431)
        # an over-long key: refused, and aiohttp's report of it quotes nothing of it
        long_key = {"authorization": "Bearer " + KEY + "z" * 50_000}
        assert gw.request("POST", "/v1/chat/completions", chat(), long_key)[0] in (400, 431)
        assert gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
        assert KEY not in gw.text()
        assert all(line.startswith("{") for line in gw.text().splitlines()), gw.text()[-2000:]
    finally:
        gw.stop()


def test_answers_carry_portkeys_headers_and_the_exact_cost(gateway: Gateway) -> None:
    status, head, body = gateway.request(
        "POST", "/v1/chat/completions", chat(), {**AUTH, "x-portkey-trace-id": "trace-1"}
    )
    assert status == 200
    usage = json.loads(body)["usage"]
    # echo: 1 USD per 1M input tokens, 2 USD per 1M output
    expected = (usage["prompt_tokens"] * 1 + usage["completion_tokens"] * 2) / 10**6
    assert head["x-catalog-cost-usd"] == f"{expected:.6f}".rstrip("0")
    assert (head["x-portkey-trace-id"], head["x-portkey-provider"]) == ("trace-1", "@mock")
    assert head["x-portkey-retry-attempt-count"] == "0"
    line = gateway.request_line("trace-1")  # written after the answer, in the loop's next turn
    assert (line["workspace"], line["provider"], line["model"], line["status"]) == (
        "ops",
        "mock",
        "echo",
        200,
    )
    assert line["cost_usd"] == head["x-catalog-cost-usd"] and line["trace_id"] == "trace-1"


def test_models_lists_what_the_workspace_may_use(gateway: Gateway) -> None:
    status, _, body = gateway.request("GET", "/v1/models", None, AUTH)
    ids = [m["id"] for m in json.loads(body)["data"]]
    assert status == 200 and ids == ["@mock/echo", "@openai-prod/local-model"]


def test_reload_swaps_whole_bundles_and_keeps_serving_on_a_bad_one(
    gateway: Gateway, bundle: Path, tmp_path: Path
) -> None:
    first = json.loads(gateway.request("GET", "/readyz")[2])["digest"]
    assert gateway.request("POST", "/v1/chat/completions", chat("@mock/echo-large"), AUTH)[0] == 403
    new = compile_files(tmp_path / "cat2", catalog(extra_model=", echo-large"))
    staged = tmp_path / "staged.json"
    staged.write_bytes(new)
    staged.replace(bundle)  # an atomic replace, as `catalogc compile -o` does: noticed by stat
    _wait(lambda: gateway.events("reloaded"))
    status, _, body = gateway.request("GET", "/readyz")
    assert status == 200 and json.loads(body)["digest"] != first
    assert gateway.request("POST", "/v1/chat/completions", chat("@mock/echo-large"), AUTH)[0] == 200
    bundle.write_bytes(new[:-40] + b"tampered" + new[-32:])  # broken: the old one keeps serving
    gateway.signal(signal.SIGHUP)
    _wait(lambda: gateway.events("reload_failed"))
    status, _, body = gateway.request("GET", "/readyz")
    assert status == 200 and json.loads(body)["reload_error"]
    assert gateway.request("POST", "/v1/chat/completions", chat("@mock/echo-large"), AUTH)[0] == 200


def test_sigterm_drains_in_flight_requests_and_settles_them(gateway: Gateway) -> None:
    answers: list[int] = []
    slow = threading.Thread(
        target=lambda: answers.append(
            gateway.request(
                "POST", "/v1/chat/completions", chat(), {**AUTH, "x-mock-latency-ms": "1500"}
            )[0]
        )
    )
    slow.start()
    _wait(lambda: _inflight(gateway))
    gateway.signal(signal.SIGTERM)
    slow.join(30)
    assert answers == [200]
    assert gateway.proc.wait(30) == 0
    events = [e["event"] for e in gateway.events()]
    assert events.index("draining") < events.index("request") < events.index("stopped")
    assert gateway.events("request")[-1]["cost_usd"] != "0"


def _inflight(gw: Gateway) -> bool:
    time.sleep(0.3)  # the request is under way: the mock sleeps 1.5 s before answering
    return True


def _wait(found: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_workers_share_one_redis_store_and_admit_exactly_the_limit(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    path = tmp_path / "limited.json"
    path.write_bytes(compile_files(tmp_path / "cat", catalog(limit=7)))
    gw = Gateway(path, "--workers", "2", "--redis", f"redis://127.0.0.1:{own_redis.port}/0",
                 "--namespace", "workers-test", env={"GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    try:
        _wait(lambda: len(gw.events("listening")) == 2)
        assert len({e["pid"] for e in gw.events("listening")}) == 2
        statuses: list[int] = []
        lock = threading.Lock()

        def call() -> None:
            status = gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0]
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=call) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(statuses) == [200] * 7 + [429] * 13
        # whichever worker a scrape reaches, /metrics sums both (multiprocess files)
        for _ in range(4):
            status, _, body = gw.request("GET", "/metrics", None, {})
            assert status == 200
            totals = {code: sum(float(v) for v in re.findall(
                rf'catalog_requests_total{{[^}}]*status="{code}"[^}}]*}} (\S+)', body.decode()))
                for code in (200, 429)}  # fmt: skip
            assert totals == {200: 7.0, 429: 13.0}
    finally:
        assert gw.stop() == 0


def test_workers_lease_budgets_and_return_them_at_exit(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    """--redis-lease-budgets: two workers admit a budget of 7 requests out of leased blocks,
    exactly 7 in all, and return what they hold when they stop."""
    from runtime.bundle.periods import window_at
    from runtime.limits.redis_store import RedisStore

    files = catalog()
    files["w.yaml"] = files["w.yaml"].replace(
        "rate_limits: [{limit: 1000, unit: requests, per: minute}]",
        "budgets: [{limit: 7, unit: requests, period: daily}]",
    )
    path = tmp_path / "leased.json"
    path.write_bytes(compile_files(tmp_path / "cat", files))
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    gw = Gateway(path, "--workers", "2", "--redis", url, "--namespace", "leased",
                 "--redis-lease-budgets", "--redis-lease-block", "0.5",
                 env={"GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    try:
        _wait(lambda: len(gw.events("listening")) == 2)
        statuses = [gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0]
                    for _ in range(12)]  # fmt: skip
        assert statuses.count(200) == 7 and len(set(statuses) - {200}) == 1
    finally:
        assert gw.stop() == 0
    day = window_at("daily", time.time_ns(), None)[0]
    reader = RedisStore(url, namespace="leased")
    assert reader.spent("workspace/ops|budget|requests/daily", day) == 7


def test_lease_budgets_need_the_redis_store(bundle: Path) -> None:
    done = run_cli(str(bundle), "--redis-lease-budgets")
    assert done.returncode == 2 and "--redis-lease-budgets needs --redis" in done.stderr


def test_admission_reserves_the_output_cap_each_attempt_sends(tmp_path: Path) -> None:
    """A config's `override_params` or `drop_params` changes the `max_tokens` sent upstream:
    the reservation followed the client's own, so a budget of 0.001 USD admitted a request
    that could cost 0.01 (max_tokens 1 asked, 100 sent)."""
    files = catalog()
    files["i.yaml"] += """\
---
kind: Integration
slug: mock-priced
service: mock
models: {custom: [{name: pricey, max_output_tokens: 100, pricing: {input: 0, output: 100}}]}
---
kind: Provider
slug: priced
integration: mock-priced
budgets: [{limit: "0.001", unit: usd, period: monthly}]
"""
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", files))
    gw = Gateway(path, env={"GW_OPS_FAKE_KEY": CREDENTIAL})
    try:
        for change, refused in (({}, False), ({"override_params": {"max_tokens": 100}}, True),
                                ({"drop_params": ["max_tokens"]}, True)):  # fmt: skip
            config = json.dumps({"provider": "@priced", **change})
            status, _, body = gw.request("POST", "/v1/chat/completions", chat("pricey", max_tokens=1),
                                         {**AUTH, "x-portkey-config": config})  # fmt: skip
            assert status == (412 if refused else 200), (change, body)
    finally:
        gw.stop()


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_what_outlasts_the_drain_timeout_is_answered_settled_and_logged_in_time(
    tmp_path: Path, own_redis: RedisServer, store: str
) -> None:
    """aiohttp waited the drain timeout, cancelled, then waited it again (twice the time a
    supervisor allows); a cancelled request got no answer and no log line, a cancelled
    stream a truncated body; with Redis the books of both were lost as the store closed."""
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", catalog()))
    args = ["--drain-timeout", "2", "--events", str(tmp_path / "events.jsonl")]
    if store == "redis":
        args += ["--redis", f"redis://127.0.0.1:{own_redis.port}/0", "--namespace", "drain"]
    gw = Gateway(path, *args, env={"GW_OPS_FAKE_KEY": CREDENTIAL})
    answers: dict[str, tuple[int, bytes]] = {}

    def call(name: str, body: dict[str, object], headers: dict[str, str]) -> None:
        status, _, data = gw.request("POST", "/v1/chat/completions", body, {**AUTH, **headers},
                                     timeout=20)  # fmt: skip
        answers[name] = (status, data)

    slow = {"x-mock-latency-ms": "15000", "x-portkey-trace-id": "slow"}
    stream = {"x-mock-chunk-ms": "400", "x-portkey-trace-id": "stream"}
    long = "word " * 200
    threads = [threading.Thread(target=call, args=("slow", chat(), slow)),
               threading.Thread(target=call, args=("stream", chat(stream=True, messages=[
                   {"role": "user", "content": long}]), stream))]  # fmt: skip
    for t in threads:
        t.start()
    time.sleep(1.0)
    started = time.monotonic()
    gw.signal(signal.SIGTERM)
    assert gw.proc.wait(10) == 0
    took = time.monotonic() - started
    for t in threads:
        t.join(10)
    assert took < 3.3, took  # the drain timeout (2 s), and the exit (aiohttp alone: 4 s)
    assert answers["slow"][0] == 503 and b"gateway_shutdown" in answers["slow"][1]
    status, data = answers["stream"]
    assert status == 200 and b"gateway is shutting down" in data and b"[DONE]" not in data
    lines = {e["trace_id"]: e for e in gw.events("request")}
    assert lines["slow"]["status"] == 503 and lines["stream"]["status"] == 503
    assert lines["stream"]["stream"] == "gateway_shutdown"
    # the cut whole request is logged with what it was charged (its input), as the stream
    # is, and has its usage event: the books and the budget agree (review, 2026-12-03)
    for name in ("slow", "stream"):
        assert Decimal(lines[name]["cost_usd"]) > 0, lines[name]
        assert lines[name]["attempts"] == 1 and lines[name]["provider"], lines[name]
    assert lines["slow"]["tokens"]["output"] == 0
    usage = {e["trace_id"]: e for e in map(json.loads,
             (tmp_path / "events.jsonl").read_text().splitlines())}  # fmt: skip
    assert set(usage) == {"slow", "stream"}
    assert "internal_error" not in gw.text()
    events = [e["event"] for e in gw.events()]
    assert events.index("draining") < events.index("request") < events.index("stopped")


def test_lost_counters_show_in_readyz_and_an_admin_accepts_them(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    """Redis restarted empty (FLUSHALL here): the fail-closed store refused every request
    while /readyz said ready, and nothing but a restart could end it."""
    import redis

    admin = "gw-ops-admin-FAKE-0009"
    files = catalog(limit=1000)
    files["catalog.yaml"] += (f"admin_keys: [{{name: ops-admin, sha256: "
                              f"{hashlib.sha256(admin.encode()).hexdigest()}}}]\n")  # fmt: skip
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", files))
    gw = Gateway(path, "--redis", own_redis.url, "--namespace", "lost",
                 env={"GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    try:
        assert gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
        redis.Redis.from_url(own_redis.url).flushall()
        status, _, body = gw.request("POST", "/v1/chat/completions", chat(), AUTH)
        assert status == 503 and b"store_unavailable" in body
        status, _, body = gw.request("GET", "/readyz")
        assert status == 503 and json.loads(body)["status"] == "counters_lost"
        for headers in ({}, AUTH):  # an organization admin's key, nobody else's
            assert gw.request("POST", "/v1/catalog/recover", None, headers)[0] == 401
        status, _, body = gw.request("POST", "/v1/catalog/recover", None,
                                     {"authorization": f"Bearer {admin}"})  # fmt: skip
        assert status == 200 and json.loads(body)["generation"]
        assert gw.request("GET", "/readyz")[0] == 200
        assert gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
        assert admin not in gw.text()
    finally:
        gw.stop()


def _budgeted_on_redis(tmp_path: Path, own_redis: RedisServer, namespace: str,
                       *args: str) -> Gateway:  # fmt: skip
    """The gateway on `own_redis` over a catalog whose workspace has a token budget too."""
    files = catalog(limit=1000)
    files["w.yaml"] += "budgets: [{limit: 1000000000, unit: tokens, period: monthly}]\n"
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", files))
    return Gateway(path, "--redis", own_redis.url, "--namespace", namespace, *args,
                   env={"GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip


@pytest.mark.parametrize("workers", [(), ("--workers", "2")])
def test_lost_counters_are_not_shown_as_whole_budgets(tmp_path: Path, own_redis: RedisServer,
                                                     workers: tuple[str, ...]) -> None:  # fmt: skip
    """After a FLUSHALL, /v1/catalog/usage answered 200 with every budget whole and the
    budget gauges showed them so, while every request was refused; /readyz said ready until
    an admission found the loss (a review)."""
    import redis

    gw = _budgeted_on_redis(tmp_path, own_redis, f"shown{len(workers)}", *workers)
    try:
        assert gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
        status, _, body = gw.request("GET", "/v1/catalog/usage", None, AUTH)
        assert status == 200 and any(Decimal(c["spent"]) > 0 for c in json.loads(body)["counters"])
        assert b"catalog_budget_remaining{" in gw.request("GET", "/metrics")[2]
        redis.Redis.from_url(own_redis.url).flushall()
        status, _, body = gw.request("GET", "/readyz")  # before any admission
        assert status == 503 and json.loads(body)["status"] == "counters_lost"
        status, _, body = gw.request("GET", "/v1/catalog/usage", None, AUTH)
        assert status == 503 and json.loads(body)["error"]["code"] == "store_unavailable"
        for _ in range(6):  # each worker's scrape: none serves a gauge kept from before
            assert b"catalog_budget_remaining{" not in gw.request("GET", "/metrics")[2]
    finally:
        gw.stop()


def test_a_counter_evicted_alone_is_not_shown_whole(tmp_path: Path,
                                                   own_redis: RedisServer) -> None:  # fmt: skip
    """One budget key gone (an eviction, a DEL) while the generation marker stays: the usage
    report showed the budget whole until an admission found the loss (the fixes' review)."""
    import redis

    gw = _budgeted_on_redis(tmp_path, own_redis, "evicted")
    try:
        assert gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
        assert gw.request("GET", "/v1/catalog/usage", None, AUTH)[0] == 200
        client = redis.Redis.from_url(own_redis.url)
        keys = list(client.scan_iter("{evicted}:*"))
        (key,) = [k for k in keys if b"|budget|" in k]
        client.delete(key)
        status, _, body = gw.request("GET", "/v1/catalog/usage", None, AUTH)
        assert status == 503 and json.loads(body)["error"]["code"] == "store_unavailable"
        status, _, body = gw.request("GET", "/readyz")
        assert status == 503 and json.loads(body)["status"] == "counters_lost"
    finally:
        gw.stop()


def test_readyz_survives_closed_connections_and_the_log_says_why_the_store_refuses(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    """A review: after Redis closed the gateway's pooled connections (a restart, its idle
    `timeout`, CLIENT KILL) the next /readyz said `store_unreachable` of a healthy store;
    and a Redis out of memory refused every budgeted request with nothing in the log
    saying why (the client hears only "unavailable")."""
    import redis

    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", catalog(limit=1000)))
    gw = Gateway(path, "--redis", own_redis.url, "--namespace", "ready",
                 env={"GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    admin = redis.Redis.from_url(own_redis.url)
    try:
        assert gw.request("GET", "/readyz")[0] == 200
        for _ in range(3):
            admin.client_kill_filter(_type="normal", skipme=True)
            status, _, body = gw.request("GET", "/readyz")
            assert status == 200, body
        admin.config_set("maxmemory", "1")  # noeviction: every write is refused
        for _ in range(3):
            status, _, body = gw.request("POST", "/v1/chat/completions", chat(), AUTH)
            assert status == 503 and b"store_unavailable" in body
        admin.config_set("maxmemory", "0")
        assert gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
    finally:
        gw.stop()
    said = [e for e in gw.events() if e["event"] == "store_unavailable"]
    assert said and "maxmemory" in said[0]["cause"], said


def test_the_redis_url_may_come_from_the_environment_out_of_the_process_list(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    """`--redis redis://:password@…` showed the password in `ps` to every local user."""
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", catalog()))
    gw = Gateway(path, "--redis", "env:GW_TEST_REDIS_URL", "--namespace", "from-env",
                 env={"GW_OPS_FAKE_KEY": CREDENTIAL, "GW_TEST_REDIS_URL": own_redis.url})  # fmt: skip
    try:
        assert gw.events("listening")[0]["store"] == "redis"
        assert gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] == 200
        assert gw.proc is not None
        argv = Path(f"/proc/{gw.proc.pid}/cmdline").read_bytes()
        assert own_redis.url.encode() not in argv and b"env:GW_TEST_REDIS_URL" in argv
    finally:
        gw.stop()
    done = run_cli(str(path), "--port", "0", "--redis", "env:GW_TEST_NO_SUCH_URL")
    assert done.returncode == 2
    assert "cannot read --redis env:GW_TEST_NO_SUCH_URL: not set" in done.stderr


def test_a_worker_that_dies_is_replaced_and_workers_dying_at_start_stop_the_whole(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    """A killed worker was neither logged nor replaced: half the capacity, silently."""
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", catalog()))
    gw = Gateway(path, "--workers", "2", "--redis", own_redis.url, "--namespace", "reaped",
                 env={"GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    try:
        _wait(lambda: len(gw.events("listening")) == 2)
        victim = gw.events("listening")[0]["pid"]
        __import__("os").kill(victim, signal.SIGKILL)
        _wait(lambda: len(gw.events("listening")) == 3)
        (exited,) = gw.events("worker_exited")
        assert exited["pid"] == victim and exited["status"] == -signal.SIGKILL
        assert victim not in {e["pid"] for e in gw.events("listening")[2:]}
        statuses = {gw.request("POST", "/v1/chat/completions", chat(), AUTH)[0] for _ in range(6)}
        assert statuses == {200}
    finally:
        assert gw.stop() == 0
    started = time.monotonic()
    done = run_cli(str(path), "--port", "0", "--workers", "2", "--redis",
                   "redis://127.0.0.1:1/0", env={**__import__("os").environ,
                                                 "GW_OPS_FAKE_KEY": CREDENTIAL})  # fmt: skip
    assert done.returncode == 1 and time.monotonic() - started < 50
    assert '"workers_failing"' in done.stderr + done.stdout


def test_a_whole_answer_the_client_cannot_get_is_logged_499(gateway: Gateway) -> None:
    """A client that closes its side while the upstream works (a half-close counts, as it
    does for nginx) gets nothing; the request was logged 200 (a review). It is charged as
    before (the upstream worked and billed), and logged 499."""
    import socket

    body = json.dumps(chat()).encode()
    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
                 b"Authorization: Bearer " + KEY.encode() + b"\r\nx-mock-latency-ms: 400\r\n"
                 b"x-portkey-trace-id: half-closed\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(5)
    got = b""
    while part := sock.recv(65536):
        got += part
    sock.close()
    assert got == b""
    deadline = time.monotonic() + 5
    while not (lines := [e for e in gateway.events("request") if e["trace_id"] == "half-closed"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert lines[0]["status"] == 499 and Decimal(lines[0]["cost_usd"]) > 0
