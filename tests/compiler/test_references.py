"""`base_url` and `headers` as references, compiler side: the bundle keeps the reference
(`{"ref": "env:NAME"}`), never a value; entries without them are written as before; the
runtime's gate refuses a malformed one; explain and diff show `env:NAME`; the gateway's
resolution fills the values in and names what it cannot read."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from catalog_compiler.cli.explain_cmd import render_route
from catalog_compiler.compiler import compile_catalog
from catalog_compiler.tools.diff import semantic_diff
from catalog_compiler.tools.explain import explain_route
from runtime.bundle.canonical import seal
from runtime.bundle.errors import BundleContentError
from runtime.bundle.load import Bundle
from runtime.gateway.endpoints import resolve_endpoints

INTEGRATION = """\
kind: Integration
slug: local
service: vllm
base_url: {base_url}
credentials: {{api_key: {{env: VLLM_KEY}}}}
headers:
  X-Tenant: acme
  X-Api-Key: {{file: /run/secrets/vllm-header}}
models:
  custom:
    - name: llama
      headers: {{X-Route: {{env: ROUTE}}}}
    - name: qwen
      base_url: {{env: QWEN_URL}}
---
kind: Provider
slug: local
integration: local
headers: {{X-Team: blue}}
---
kind: Workspace
slug: team
"""


def compiled(tmp_path: Path, base_url: str = "{env: VLLM_URL}") -> tuple[bytes, dict[str, Any]]:
    root = tmp_path / "catalog"
    root.mkdir(parents=True, exist_ok=True)
    (root / "catalog.yaml").write_text("kind: Organization\nversion: 1\nname: Refs\n")
    (root / "local.yaml").write_text(textwrap.dedent(INTEGRATION.format(base_url=base_url)))
    result = compile_catalog(root)
    assert result.data is not None, [d.message for d in result.errors]
    return result.data, json.loads(result.data)


def test_the_bundle_keeps_references(tmp_path: Path) -> None:
    _, data = compiled(tmp_path)
    integ, provider = data["integrations"]["local"], data["providers"]["local"]
    assert integ["base_url"] == {"ref": "env:VLLM_URL"}
    assert integ["headers"] == {"X-Api-Key": {"ref": "file:/run/secrets/vllm-header"},
                                "X-Tenant": "acme"}  # fmt: skip
    assert provider["base_url"] == {"ref": "env:VLLM_URL"}  # the effective one
    assert provider["headers"] == {"X-Team": "blue"}  # its own; the runtime layers them
    models = provider["models"]
    assert models["llama"]["headers"] == {"X-Route": {"ref": "env:ROUTE"}}
    assert "base_url" not in models["llama"]
    assert models["qwen"]["base_url"] == {"ref": "env:QWEN_URL"} and "headers" not in models["qwen"]


def test_entries_without_them_are_written_as_before(tmp_path: Path) -> None:
    _, data = compiled(tmp_path, base_url="http://vllm.internal:8000/v1")
    assert data["providers"]["local"]["base_url"] == "http://vllm.internal:8000/v1"
    other = tmp_path / "plain"
    other.mkdir()
    (other / "catalog.yaml").write_text("kind: Organization\nversion: 1\nname: P\n")
    (other / "i.yaml").write_text("kind: Integration\nslug: o\nservice: openai\n"
                                  "credentials: {api_key: {env: K}}\n")  # fmt: skip
    plain = json.loads(compile_catalog(other).data or b"{}")
    assert "headers" not in plain["integrations"]["o"]


def test_explain_and_diff_show_the_reference(tmp_path: Path) -> None:
    raw, _ = compiled(tmp_path)
    bundle = Bundle.load(raw)
    route = explain_route(bundle, "team", "@local/llama")
    assert route["endpoint"] == {"base_url": "env:VLLM_URL", "headers": {
        "X-Api-Key": "file:/run/secrets/vllm-header", "X-Route": "env:ROUTE",
        "X-Team": "blue", "X-Tenant": "acme"}}  # fmt: skip
    assert explain_route(bundle, "team", "@local/qwen")["endpoint"]["base_url"] == "env:QWEN_URL"
    assert "endpoint: env:VLLM_URL" in render_route(route)
    old_raw, _ = compiled(tmp_path / "old", base_url="http://vllm.internal:8000/v1")
    old = Bundle.load(old_raw)
    diff = semantic_diff(old, bundle, json.loads(old_raw), json.loads(raw))
    (change,) = [c for c in diff.changes if c.subject == "integration `local` base_url"]
    assert change.new == "env:VLLM_URL" and change.notable and "env:VLLM_URL" in change.note


def test_resolution_fills_values_and_names_what_it_cannot_read(tmp_path: Path) -> None:
    raw, _ = compiled(tmp_path)
    values = {"env:VLLM_URL": "http://10.0.0.7:8000/v1/", "file:/run/secrets/vllm-header": "h1",
              "env:ROUTE": "blue-route"}  # fmt: skip

    def read(ref: str) -> str:
        if ref not in values:
            raise LookupError("not set")
        return values[ref]

    ends = resolve_endpoints(Bundle.load(raw), read)
    p = ends.bundle.providers["local"]
    assert p.base_url == p.integration.base_url == "http://10.0.0.7:8000/v1"
    assert p.integration.headers == {"X-Tenant": "acme", "X-Api-Key": "h1"}
    assert p.models["llama"].headers == {"X-Route": "blue-route"}
    assert ends.failures == {"env:QWEN_URL": "not set"}
    assert ends.unavailable("local", "qwen") == "env:QWEN_URL"
    assert ends.unavailable("local", "llama") is None
    values["env:VLLM_URL"] = "https://user:pw@10.0.0.7/v1"
    bad = resolve_endpoints(Bundle.load(raw), read)
    assert "env:VLLM_URL" in bad.failures and "pw" not in bad.failures["env:VLLM_URL"]
    assert bad.unavailable("local", "llama") == "env:VLLM_URL"


@pytest.mark.parametrize(("where", "value", "words"), [
    ("base_url", {"ref": "literal-value"}, "secret reference"),
    ("base_url", {"ref": "env:X", "extra": 1}, "unknown member"),
    ("headers", {"X-A": "one\ntwo"}, "control characters"),
    ("headers", {"bad name": "x"}, "not a header name"),
    ("headers", {"X-A": {"ref": "file:"}}, "secret reference"),
])  # fmt: skip
def test_the_runtime_gate_refuses_malformed_references(
    tmp_path: Path, where: str, value: Any, words: str
) -> None:
    _, data = compiled(tmp_path)
    body = {k: v for k, v in data.items() if k != "digest"}
    body["integrations"]["local"][where] = value
    with pytest.raises(BundleContentError, match=words):
        Bundle.load(seal(body))
