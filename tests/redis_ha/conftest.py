"""Topologies shared by a module's tests (a cluster) or owned by one test (a Sentinel group,
which a failover changes)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_ha.topologies import Cluster, SentinelGroup
from tests.redis_server import redis_binary


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """3 primaries, each with a replica (strict mode needs one)."""
    with tempfile.TemporaryDirectory() as tmp:
        built = Cluster(redis_binary(), Path(tmp), primaries=3, replicas=1)
        try:
            yield built.start()
        finally:
            built.stop()


@pytest.fixture
def sentinels() -> Iterator[SentinelGroup]:
    with tempfile.TemporaryDirectory() as tmp:
        group = SentinelGroup(redis_binary(), Path(tmp))
        try:
            yield group.start()
        finally:
            group.stop()
