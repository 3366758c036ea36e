"""`catalogc usage --bundle FILE --redis URL`: the counters of the store every gateway shares,
exact, as text (bars on a terminal), JSON or CSV; bad options are usage errors."""

from __future__ import annotations

import csv
import io
import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from catalog_compiler.cli import cli
from catalog_compiler.compiler import compile_catalog
from runtime import Estimate, Router, Usage
from runtime.limits.redis_store import RedisStore
from tests.conftest import EXAMPLE


@pytest.fixture
def spent(tmp_path: Path, own_redis: Any) -> tuple[Path, str, Decimal]:
    compiled = compile_catalog(EXAMPLE)
    assert compiled.data is not None
    bundle = tmp_path / "acme.bundle.json"
    bundle.write_bytes(compiled.data)
    store = RedisStore(own_redis.url, namespace="usage-cli")
    try:
        router = Router.load(compiled.data, store)
        attempt = router.resolve("support", "@openai-prod/gpt-4o").attempts[0]
        cost = router.admit(attempt, Estimate(1000, 100)).settle(Usage(900, 80))
    finally:
        store.close()
    return bundle, own_redis.url, cost


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["usage", *args], env={"NO_COLOR": "1"})


def test_json_csv_and_text_show_the_exact_spend(spent: tuple[Path, str, Decimal]) -> None:
    bundle, url, cost = spent
    base = ["--bundle", str(bundle), "--redis", url, "--namespace", "usage-cli"]
    done = run(*base, "--workspace", "support", "--format", "json")
    assert done.exit_code == 0, done.output
    rows = {(r["counter"], r["kind"], r["unit"]): r for r in json.loads(done.output)["counters"]}
    requests = rows[("workspace/support", "rate_limit", "requests")]
    assert requests["limit"] == 300 and requests["spent"] in (0, 1)  # a bucket refills
    assert 0 < rows[("workspace/support", "rate_limit", "tokens")]["spent"] <= 980  # refilling
    org = rows[("organization", "budget", "usd")]
    assert Decimal(org["spent"]) == cost and Decimal(org["limit"]) > cost
    table = list(csv.DictReader(io.StringIO(run(*base, "--format", "csv").output)))
    assert any(r["counter"] == "organization" and Decimal(r["spent"]) == cost for r in table)
    text = run(*base).output
    assert "organization budget" in text and str(cost.normalize()) in text


@pytest.mark.parametrize("args, message", [
    ((), "give --redis URL"),
    (("--redis", "redis://127.0.0.1:1/0"), "--redis needs --bundle"),
    (("--gateway", "http://127.0.0.1:1"), "CATALOGC_API_KEY"),
])  # fmt: skip
def test_options_are_checked(args: tuple[str, ...], message: str) -> None:
    done = run(*args)
    assert done.exit_code == 2 and message in done.output


def test_an_unreachable_store_is_a_clear_error(tmp_path: Path) -> None:
    compiled = compile_catalog(EXAMPLE)
    assert compiled.data is not None
    bundle = tmp_path / "b.json"
    bundle.write_bytes(compiled.data)
    done = run("--bundle", str(bundle), "--redis", "redis://:secret-FAKE@127.0.0.1:1/0")
    assert done.exit_code == 1 and "Traceback" not in done.output
    assert "secret-FAKE" not in done.output


KEY = "admin-key-never-elsewhere-0001"
TITLE = "\x1b]0;PWNED\x07\x1b[2Jfake: all budgets OK"


class Gateway(BaseHTTPRequestHandler):
    """Answers /v1/catalog/usage as the test says (`answer`); records each Authorization."""

    answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
    seen: list[str | None]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("authorization"))
        status, headers, body = self.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(answer: tuple[int, dict[str, str], bytes]) -> Iterator[tuple[str, list[str | None]]]:
    """A real HTTP server on 127.0.0.1, on a port of 25000–25999 (the range tests may use)."""
    seen: list[str | None] = []
    handler = type("Answer", (Gateway,), {"answer": answer, "seen": seen})
    for port in random.sample(range(25000, 26000), 1000):
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), handler)
            break
        except OSError:
            continue
    else:
        pytest.skip("no free port in 25000–25999")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.shutdown()
        server.server_close()


def gateway_usage(origin: str, *extra: str) -> Any:
    return CliRunner().invoke(cli, ["usage", "--gateway", origin, *extra],
                              env={"NO_COLOR": "1", "CATALOGC_API_KEY": KEY})  # fmt: skip


def test_a_redirect_is_not_followed_with_the_key() -> None:
    elsewhere_answer = (200, {"content-type": "application/json"}, b'{"counters": []}')
    with serving(elsewhere_answer) as (elsewhere, stolen):
        moved = (302, {"location": f"{elsewhere}/steal?token=hunter2"}, b"see /steal?token=hunter2")
        with serving(moved) as (origin, seen):
            done = gateway_usage(origin)
    assert seen == [f"Bearer {KEY}"] and stolen == []
    assert done.exit_code == 1 and "answered 302" in done.output, done.output
    assert "hunter2" not in done.output and KEY not in done.output
    assert "Traceback" not in done.output


def test_the_gateways_words_cannot_drive_the_terminal() -> None:
    said = json.dumps({"error": {"message": f"{TITLE} (your key was {KEY})"}}).encode()
    with serving((500, {"content-type": "application/json"}, said)) as (origin, _):
        done = gateway_usage(origin)
    assert done.exit_code == 1 and "answered 500" in done.output, done.output
    assert "fake: all budgets OK" in done.output
    assert not any(c in done.output for c in "\x1b\x07") and KEY not in done.output


def test_the_gateways_counters_cannot_drive_the_terminal() -> None:
    row = {"counter": f"workspace/{TITLE}", "kind": "budget", "unit": "usd", "period": "month",
           "limit": "10", "spent": "1", "reserved": "0", "remaining": "9",
           "window_start": "2026-12-01T00:00:00Z", "window_end": None}  # fmt: skip
    said = json.dumps({"counters": [row]}).encode()
    with serving((200, {"content-type": "application/json"}, said)) as (origin, _):
        done = gateway_usage(origin)
    assert done.exit_code == 0 and "fake: all budgets OK budget" in done.output, done.output
    assert not any(c in done.output for c in "\x1b\x07")


ROW = {"counter": "workspace/team", "kind": "budget", "unit": "usd", "period": "month",
       "limit": "10", "spent": "1", "reserved": "0", "remaining": "9",
       "window_start": "2026-12-01T00:00:00Z", "window_end": None}  # fmt: skip


def test_the_gateways_counters_cannot_drive_a_terminal_or_a_spreadsheet_as_csv() -> None:
    rows = [{**ROW, "counter": f"workspace/{TITLE}"},
            {**ROW, "counter": '=HYPERLINK("http://evil","x")'}]  # fmt: skip
    said = json.dumps({"counters": rows}).encode()
    with serving((200, {"content-type": "application/json"}, said)) as (origin, _):
        done = gateway_usage(origin, "--format", "csv")
    assert done.exit_code == 0, done.output
    assert not any(c in done.output for c in "\x1b\x07")
    assert "\n\"'=HYPERLINK" in done.output  # quoted by csv, as it holds quotes
    assert "\n=HYPERLINK" not in done.output and '\n"=HYPERLINK' not in done.output


@pytest.mark.parametrize(("field", "value"), [
    ("kind", None), ("kind", 3), ("limit", "ten"), ("limit", True), ("spent", None),
    ("counter", ["x"]), ("reserved", "NaN"), ("period", 5),
])  # fmt: skip
def test_a_malformed_counter_is_a_clear_error(field: str, value: Any) -> None:
    """A gateway's counters are a server's words: one missing `kind` or with a word for a
    `limit` was an internal error (exit 3) when shown (a review)."""
    row = {**ROW, field: value} if value is not None else {k: v for k, v in ROW.items()
                                                            if k != field}  # fmt: skip
    said = json.dumps({"counters": [ROW, row]}).encode()
    for fmt in ("text", "csv"):
        with serving((200, {"content-type": "application/json"}, said)) as (origin, _):
            done = gateway_usage(origin, "--format", fmt)
        assert done.exit_code == 1, done.output
        assert f"counter #2 is malformed: `{field}`" in done.output


def test_the_store_url_may_come_from_the_environment_or_a_file(
    spent: tuple[Path, str, Decimal], tmp_path: Path
) -> None:
    """As the gateway and `catalogc serve` take it: a URL with a password stays out of the
    process list (a review: usage and docs said it must start with redis://)."""
    bundle, url, cost = spent
    (tmp_path / "url").write_text(url + "\n")
    for given, env in (
        ("env:TEST_STORE_URL", {"TEST_STORE_URL": url}),
        (f"file:{tmp_path / 'url'}", {}),
    ):
        done = CliRunner().invoke(cli, ["usage", "--bundle", str(bundle), "--redis", given,
                                        "--namespace", "usage-cli", "--format", "json"],
                                  env={"NO_COLOR": "1", **env})  # fmt: skip
        assert done.exit_code == 0, done.output
        assert any(Decimal(r["spent"]) == cost for r in json.loads(done.output)["counters"])
        site = tmp_path / f"site-{len(env)}"
        docs = CliRunner().invoke(cli, ["docs", str(bundle), "-o", str(site), "--redis", given,
                                        "--namespace", "usage-cli"], env={"NO_COLOR": "1", **env})  # fmt: skip
        assert docs.exit_code == 0, docs.output
    done = run("--bundle", str(bundle), "--redis", "env:TEST_STORE_URL_UNSET")
    assert done.exit_code == 2 and "not set" in done.output
