"""Two gateway processes (`python -m runtime.gateway BUNDLE --redis redis+cluster://…`) on a
real 3-primary cluster share one budget, one rate limit and one concurrency limit exactly:
the same cases as tests/gateway/test_redis_shared.py, on a cluster instead of one server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests.gateway.conftest import _fresh_fakes, fakes  # noqa: F401 - fixtures
from tests.gateway.fakes import Answer, Fakes
from tests.gateway.harness import (
    SECRETS,
    GatewayProcess,
    compile_catalog,
    http,
    secrets_in,
    write_catalog,
)
from tests.gateway.test_redis_shared import (
    BUDGET_KEY,
    LEASE_KEY,
    RATE_KEY,
    M,
    N,
    fire,
    shared_catalog,
)
from tests.redis_ha.topologies import Cluster


@pytest.fixture(scope="module")
def pair(
    fakes: Fakes,  # noqa: F811
    cluster: Cluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[GatewayProcess]]:
    root = tmp_path_factory.mktemp("cluster-shared")
    bundle = compile_catalog(write_catalog(root / "catalog", shared_catalog(fakes)),
                             root / "shared.bundle.json")  # fmt: skip
    ns = cluster.namespace_on(cluster.servers[2], "gw")  # not the seed node's slot
    gateways: list[GatewayProcess] = []
    try:
        for i in range(2):
            gw = GatewayProcess(bundle, root / f"gateway-{i}.log",
                                ["--redis", cluster.url, "--namespace", ns])  # fmt: skip
            gateways.append(gw.start())
        yield gateways
    finally:
        for gw in gateways:
            gw.stop()
    for gw in gateways:
        assert not secrets_in(gw.log_text(), (*SECRETS, BUDGET_KEY, RATE_KEY, LEASE_KEY))


def test_one_budget_across_two_gateways_on_a_cluster(
    pair: list[GatewayProcess],
    fakes: Fakes,  # noqa: F811
) -> None:
    fakes.openai.script(*[Answer(latency=0.2)] * M)
    assert fire(pair, BUDGET_KEY) == Counter({200: N, 412: M - N})
    assert len(fakes.openai.requests) == N


def test_one_rate_limit_across_two_gateways_on_a_cluster(
    pair: list[GatewayProcess],
    fakes: Fakes,  # noqa: F811
) -> None:
    fakes.openai.script(*[Answer(latency=0.2)] * M)
    assert fire(pair, RATE_KEY) == Counter({200: N, 429: M - N})


def test_one_concurrency_limit_across_two_gateways_on_a_cluster(
    pair: list[GatewayProcess],
    fakes: Fakes,  # noqa: F811
) -> None:
    fakes.openai.script(*[Answer(latency=1.0)] * M)
    assert fire(pair, LEASE_KEY) == Counter({200: N, 429: M - N})
    status, _, data = http("GET", pair[0].origin + "/readyz")
    assert status == 200 and b'"redis"' in data
