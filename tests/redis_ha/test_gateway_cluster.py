"""Two gateway processes (`python -m runtime.gateway BUNDLE --redis redis+cluster://…`) on a
real 3-primary cluster share one budget, one rate limit and one concurrency limit exactly:
the same cases as tests/gateway/test_redis_shared.py, on a cluster instead of one server."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

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
from tests.redis_server import redis_binary


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


def test_readyz_is_not_ready_when_the_namespace_s_node_is_down(
    fakes: Fakes,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The PING of /readyz reached a node that answered, while the node holding the
    namespace's counters was down and every request was a 503 (a review): the readiness
    check reads the namespace's own marker."""
    bundle = compile_catalog(write_catalog(tmp_path / "catalog", shared_catalog(fakes)),
                             tmp_path / "shared.bundle.json")  # fmt: skip
    (tmp_path / "cluster").mkdir()
    own = Cluster(redis_binary(), tmp_path / "cluster", primaries=3).start()
    gw = None
    try:
        holder = own.servers[2]  # not the first node given in the URL
        gw = GatewayProcess(
            bundle,
            tmp_path / "gateway.log",
            ["--redis", own.url, "--namespace", own.namespace_on(holder)],
        ).start()
        assert http("GET", gw.origin + "/readyz")[0] == 200
        holder.kill()
        status, _, body = http("GET", gw.origin + "/readyz")
        assert status == 503 and json.loads(body)["status"] == "store_unreachable", body
    finally:
        if gw is not None:
            gw.stop()
        own.stop()
