"""Bundles for runtime tests, compiled from small catalogs written in the test."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from catalog_compiler.compiler import compile_catalog
from runtime import Router
from runtime.limits.memory import MemoryStore
from tests.conftest import EXAMPLE

# One integration and its provider: what most runtime tests hang their limits under.
OPENAI_PROVIDER = """\
kind: Integration
slug: openai-main
service: openai
credentials: {api_key: {env: OPENAI_API_KEY}}
---
kind: Provider
slug: openai-prod
integration: openai-main
"""


class FakeClock:
    """Nanoseconds since 1970, moved by hand."""

    def __init__(self, start_ns: int = 1_764_115_200 * 10**9) -> None:  # 2025-11-26 00:00 UTC
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 10**9)


def compile_files(root: Path, files: dict[str, str]) -> bytes:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    compiled = compile_catalog(root)
    assert compiled.data is not None, [f"{d.code} {d.message}" for d in compiled.errors]
    return compiled.data


@pytest.fixture(scope="session")
def acme_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    compiled = compile_catalog(EXAMPLE)
    assert compiled.data is not None
    return compiled.data


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_router(tmp_path: Path, clock: FakeClock) -> Callable[..., Router]:
    def make(files: dict[str, str]) -> Router:
        data = compile_files(tmp_path / "catalog", files)
        return Router.load(data, MemoryStore(clock=clock))

    return make
