"""Shared fixtures: build catalogs on disk, run the CLI, find the shared third-party data."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from catalog_compiler.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "acme"


def find_shared_data() -> Path:
    """The third-party data: $CATALOG_SHARED_DATA, else ../shared/data beside this checkout,
    else beside the repository this one was cloned from (CI clones main into a fresh
    directory, so only the origin's neighbourhood has it)."""
    if os.environ.get("CATALOG_SHARED_DATA"):
        return Path(os.environ["CATALOG_SHARED_DATA"])
    beside = ROOT.parent / "shared" / "data"
    if beside.is_dir():
        return beside
    try:
        url = subprocess.run(
            ["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        url = ""
    url = url.removeprefix("file://")
    if url and ":" not in url.split("/")[0]:  # a local path, not host:path or scheme://
        origin = Path(url) if Path(url).is_absolute() else ROOT / url
        candidate = origin.resolve().parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return beside


SHARED_DATA = find_shared_data()

# CI never flakes: hypothesis runs derandomized there (black's fuzz setting).
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CATALOGC_CI") or os.environ.get("CI") else "dev")

MINIMAL_ORG = """\
kind: Organization
version: 1
name: Test Org
"""


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (relative path -> text, dedented) below `root`."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def make_catalog(tmp_path: Path) -> Callable[..., Path]:
    """make_catalog({"p.yaml": "..."}) -> a catalog dir with a minimal catalog.yaml unless given."""

    def make(files: dict[str, str], org: str | None = MINIMAL_ORG) -> Path:
        root = tmp_path / "catalog"
        root.mkdir(exist_ok=True)
        if org is not None and "catalog.yaml" not in files:
            files = {"catalog.yaml": org, **files}
        return write_tree(root, files)

    return make


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        full_env = {"CATALOGC_NO_CACHE": "1", "NO_COLOR": "", **(env or {})}
        return runner.invoke(cli, list(args), env=full_env, catch_exceptions=False)

    return run


def shared_data(*parts: str) -> Path:
    """A path below the shared data (see find_shared_data); skips the test (outside CI) when
    the data is absent, fails in CI."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CATALOGC_CI"):
            pytest.fail(f"shared data missing in CI: {path}")
        pytest.skip(f"shared data not available: {path}")
    return path


from tests.redis_server import make_redis, own_redis, redis_server  # noqa: E402, F401  (fixtures)
