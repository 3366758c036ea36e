"""Session fixtures of the differential tests: the recording upstream, Portkey's gateway
(npm, pinned), and ours serving a catalog of providers t0..t7 at the upstream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.harness import GatewayProcess, compile_catalog, write_catalog
from tests.parity.compare import Gateways
from tests.parity.corpus import UPSTREAM_ENV, catalog
from tests.parity.portkey import PortkeyProcess, running_portkey
from tests.parity.recorder import Recorder, running_recorder


@pytest.fixture(scope="session")
def recorder() -> Iterator[Recorder]:
    with running_recorder() as running:
        yield running


@pytest.fixture(scope="session")
def portkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortkeyProcess]:
    log = tmp_path_factory.mktemp("portkey") / "portkey.log"
    with running_portkey(log) as running:
        yield running


@pytest.fixture(scope="session")
def ours(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("parity-catalog")
    directory = write_catalog(root / "catalog", catalog(lambda t: recorder.base_url("ours", t)))
    bundle = compile_catalog(directory, root / "catalog.bundle.json")
    process = GatewayProcess(bundle, root / "gateway.log", env=UPSTREAM_ENV).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def gateways(recorder: Recorder, portkey: PortkeyProcess, ours: GatewayProcess) -> Gateways:
    return Gateways(recorder, portkey.origin, ours.origin)
