"""Fixtures of the gateway tests: the fake upstreams (one set per session, reset before each
test), a small catalog pointing at them (harness.main_catalog) compiled with catalogc, and one
gateway process serving it for the whole session (its log checked for secrets when it stops)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.gateway.fakes import Fakes, running_fakes
from tests.gateway.harness import (
    PROMPT_MARKER,
    UPSTREAM_ENV,
    GatewayProcess,
    compile_catalog,
    main_catalog,
    openai_client,
    secrets_in,
    write_catalog,
)
from tests.gateway.in_process import InProcess


@pytest.fixture(scope="session")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_fakes(fakes: Fakes) -> Iterator[None]:
    """Every test starts with empty scripts and no recorded requests."""
    fakes.reset()
    yield
    fakes.reset()


@pytest.fixture(scope="session")
def bundle(fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gateway-catalog")
    catalog = write_catalog(root / "catalog", main_catalog(fakes))
    return compile_catalog(catalog, root / "catalog.bundle.json")


@pytest.fixture(scope="session")
def gateway(bundle: Path) -> Iterator[GatewayProcess]:
    """One gateway (memory store) for the session. When it stops, its log must hold no
    credential and no prompt text."""
    process = GatewayProcess(bundle, bundle.parent / "gateway.log").start()
    try:
        yield process
    finally:
        process.stop()
    text = process.log_text()
    leaked = secrets_in(text)
    assert not leaked, f"the gateway log holds {leaked}"
    assert PROMPT_MARKER not in text, "the gateway log holds prompt text"


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    """The openai SDK as a `team` member configures it (see harness.openai_client)."""
    with openai_client(gateway) as c:
        yield c


@pytest.fixture
def in_process(fakes: Fakes, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    """The gateway app in this process (tests/gateway/in_process.py), with the credentials
    the catalog's references name in the environment."""
    for name, value in UPSTREAM_ENV.items():
        monkeypatch.setenv(name, value)
    app = InProcess(fakes, bundle)
    fakes.loop.run(app.start())
    try:
        yield app
    finally:
        fakes.loop.run(app.stop())
