"""`catalogc usage --bundle FILE --redis URL`: the counters of the store every gateway shares,
exact, as text (bars on a terminal), JSON or CSV; bad options are usage errors."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
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
