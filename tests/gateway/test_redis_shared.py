"""Two gateway processes on one real redis-server share every limit: of M concurrent
requests spread across both, exactly N are admitted — for a budget (412 beyond it), a rate
limit (429) and a concurrency limit (429)."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.gateway.fakes import Answer, Fakes
from tests.gateway.harness import (
    ORG,
    SECRETS,
    GatewayProcess,
    compile_catalog,
    http,
    secrets_in,
    sha256,
    user,
    write_catalog,
)
from tests.redis_server import RedisServer, redis_binary

BUDGET_KEY = "sk-test-FAKE-shared-budget-0000"
RATE_KEY = "sk-test-FAKE-shared-rate-0000"
LEASE_KEY = "sk-test-FAKE-shared-lease-0000"
N = 5  # what each limit admits
M = 14  # requests fired at once, across both gateways


def shared_catalog(fakes: Fakes) -> dict[str, str]:
    return {
        "catalog.yaml": ORG,
        "pool.yaml": f"""\
            kind: Integration
            slug: oai
            service: openai
            base_url: {fakes.openai.url}
            credentials:
              api_key: {{env: TEST_FAKE_OPENAI_KEY}}
            models:
              allow: ["gpt-4o-mini"]
            ---
            kind: Provider
            slug: pool
            integration: oai
            ---
            kind: Workspace
            slug: by-budget
            budgets: [{{limit: {N}, unit: requests, period: monthly}}]
            api_keys: [{{name: t, sha256: "{sha256(BUDGET_KEY)}"}}]
            ---
            kind: Workspace
            slug: by-rate
            rate_limits: [{{limit: {N}, unit: requests, per: hour}}]
            api_keys: [{{name: t, sha256: "{sha256(RATE_KEY)}"}}]
            ---
            kind: Workspace
            slug: by-lease
            concurrency: {N}
            api_keys: [{{name: t, sha256: "{sha256(LEASE_KEY)}"}}]
            """,
    }


@pytest.fixture(scope="module")
def pair(fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[GatewayProcess]]:
    """Two gateways on one fresh redis-server."""
    root = tmp_path_factory.mktemp("shared")
    bundle = compile_catalog(write_catalog(root / "catalog", shared_catalog(fakes)),
                             root / "shared.bundle.json")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(redis_binary(), Path(tmp))
        server.start()
        gateways: list[GatewayProcess] = []
        try:
            for i in range(2):
                gw = GatewayProcess(bundle, root / f"gateway-{i}.log", ["--redis", server.url])
                gateways.append(gw.start())
            yield gateways
        finally:
            for gw in gateways:
                gw.stop()
            server.kill()
    for gw in gateways:
        assert not secrets_in(gw.log_text(), (*SECRETS, BUDGET_KEY, RATE_KEY, LEASE_KEY))


def fire(pair: list[GatewayProcess], key: str) -> Counter[int]:
    """M requests at once, alternating between the gateways: the statuses they got."""
    body = {"model": "@pool/gpt-4o-mini", "messages": user(), "max_tokens": 5}

    def one(i: int) -> int:
        url = pair[i % 2].v1 + "/chat/completions"
        return http("POST", url, body, {"authorization": f"Bearer {key}"})[0]

    with ThreadPoolExecutor(M) as pool:
        return Counter(pool.map(one, range(M)))


def test_both_gateways_use_redis(pair: list[GatewayProcess]) -> None:
    for gw in pair:
        status, _, data = http("GET", gw.origin + "/readyz")
        assert status == 200 and b'"redis"' in data


def test_one_budget_across_two_gateways(pair: list[GatewayProcess], fakes: Fakes) -> None:
    fakes.openai.script(*[Answer(latency=0.2)] * M)
    assert fire(pair, BUDGET_KEY) == Counter({200: N, 412: M - N})
    assert len(fakes.openai.requests) == N


def test_one_rate_limit_across_two_gateways(pair: list[GatewayProcess], fakes: Fakes) -> None:
    fakes.openai.script(*[Answer(latency=0.2)] * M)
    assert fire(pair, RATE_KEY) == Counter({200: N, 429: M - N})
    assert len(fakes.openai.requests) == N


def test_one_concurrency_limit_across_two_gateways(pair: list[GatewayProcess],
                                                   fakes: Fakes) -> None:  # fmt: skip
    """The admitted requests hold their lease for 2 s: every other request arrives while
    they do (all M are sent at once) and finds the limit full."""
    fakes.openai.script(*[Answer(latency=2.0)] * M)
    assert fire(pair, LEASE_KEY) == Counter({200: N, 429: M - N})
    # leases are released: the next request is admitted again
    fakes.reset()
    body = {"model": "@pool/gpt-4o-mini", "messages": user(), "max_tokens": 5}
    status, _, _ = http("POST", pair[0].v1 + "/chat/completions", body,
                        {"authorization": f"Bearer {LEASE_KEY}"})  # fmt: skip
    assert status == 200
