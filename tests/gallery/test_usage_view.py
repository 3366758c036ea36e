"""`catalogc docs --usage FILE | --redis URL`: each workspace page shows its spend now
against every budget its requests are charged to (issue 14, point 6)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from catalog_compiler.cli.docs_cmd import docs
from catalog_compiler.compiler import compile_catalog
from runtime import Estimate, Router, Usage
from tests.conftest import EXAMPLE
from tests.gallery.test_cli import run


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiled = compile_catalog(EXAMPLE)
    assert compiled.data is not None
    path = tmp_path_factory.mktemp("usage") / "acme.bundle.json"
    path.write_bytes(compiled.data)
    return path


def spend_rows(router: Router) -> list[dict[str, Any]]:
    attempt = router.resolve("support", "@openai-prod/gpt-4o").attempts[0]
    router.admit(attempt, Estimate(200_000, 1000)).settle(Usage(200_000, 1000))
    return [row.to_json() for row in router.usage()]


def page(out: Path, workspace: str) -> str:
    return (out / "workspaces" / f"{workspace}.html").read_text()


def bars(html: str) -> dict[str, int]:
    """counter -> percent shown in the Spend now table."""
    found = re.findall(r"<tr><td><code>([^<]+)</code></td><td>[^<]*</td><td>[^<]*</td><td>"
                       r'<span class="bar" title="(\d+)%"', html)  # fmt: skip
    return {counter: int(p) for counter, p in found}


def test_a_usage_file_puts_spend_on_each_workspace_page(bundle_path: Path,
                                                        tmp_path: Path) -> None:  # fmt: skip
    router = Router.load(bundle_path)
    rows = spend_rows(router)
    usage = tmp_path / "usage.json"
    usage.write_text(json.dumps({"workspace": None, "counters": rows}))
    out = tmp_path / "site"
    result = run(docs, str(bundle_path), "-o", str(out), "--usage", str(usage))
    assert result.exit_code == 0, result.output
    shown = bars(page(out, "support"))
    org = next(r for r in rows if r["counter"] == "organization" and r["kind"] == "budget")
    expected = int(min((float(org["spent"]) / float(org["limit"])), 1) * 100)
    assert shown["organization"] == expected
    assert "workspace/support" in shown and "Spend now" in page(out, "support")
    assert "workspace/support" not in bars(page(out, "research"))  # only its own chain
    without = tmp_path / "plain"
    assert run(docs, str(bundle_path), "-o", str(without)).exit_code == 0
    assert "Spend now" not in page(without, "support")


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"counters": 3}', '{"counters": [{"counter": "x"}]}',
    '{"counters": [{"counter": "organization", "kind": "budget", "unit": "usd", '
    '"limit": "NaN", "spent": "1"}]}',
    '{"counters": [{"counter": "organization", "kind": "budget", "unit": "usd", '
    '"limit": "1", "spent": true}]}',
])  # fmt: skip
def test_a_bad_usage_file_is_a_clear_error(bundle_path: Path, tmp_path: Path,
                                           content: str) -> None:  # fmt: skip
    usage = tmp_path / "usage.json"
    usage.write_text(content)
    result = run(docs, str(bundle_path), "-o", str(tmp_path / "site"), "--usage", str(usage))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "usage.json" in result.output
    assert not (tmp_path / "site").exists()


def test_spend_read_from_the_redis_store(bundle_path: Path, tmp_path: Path,
                                         own_redis: Any) -> None:  # fmt: skip
    from runtime.limits.redis_store import RedisStore

    store = RedisStore(own_redis.url, namespace="gallery")
    try:
        rows = spend_rows(Router.load(bundle_path, store))
    finally:
        store.close()
    out = tmp_path / "site"
    result = run(docs, str(bundle_path), "-o", str(out), "--redis", own_redis.url,
                 "--namespace", "gallery")  # fmt: skip
    assert result.exit_code == 0, result.output
    org = next(r for r in rows if r["counter"] == "organization" and r["kind"] == "budget")
    assert float(org["spent"]) > 0
    expected = int(min(float(org["spent"]) / float(org["limit"]), 1) * 100)
    assert bars(page(out, "support"))["organization"] == expected
    assert "the store at" in page(out, "support")
