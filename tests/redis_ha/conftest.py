"""Topologies shared by tests: a cluster (each test uses its own namespaces), and a Sentinel
group (made healthy again before each test, since its tests fail the primary over)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_ha.topologies import Cluster, SentinelGroup
from tests.redis_server import redis_binary


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """3 primaries, each with a replica (strict mode needs one)."""
    with tempfile.TemporaryDirectory() as tmp:
        built = Cluster(redis_binary(), Path(tmp), primaries=3, replicas=1)
        try:
            yield built.start()
        finally:
            built.stop()


@pytest.fixture(scope="module")
def sentinel_group() -> Iterator[SentinelGroup]:
    with tempfile.TemporaryDirectory() as tmp:
        group = SentinelGroup(redis_binary(), Path(tmp))
        try:
            yield group.start()
        finally:
            group.stop()


@pytest.fixture
def sentinels(sentinel_group: SentinelGroup) -> SentinelGroup:
    """The module's group, healthy again after the previous test's failover."""
    return sentinel_group.healthy()
