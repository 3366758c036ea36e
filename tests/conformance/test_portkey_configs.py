"""Every real Portkey config in ../shared/data/portkey-configs compiles inside a catalog built
around it (defining the providers and models it names), and its normalized tree is right."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from catalog_compiler.compiler import compile_catalog
from catalog_compiler.registry import builtin
from tests.conftest import SHARED_DATA, shared_data

CONFIGS = sorted((SHARED_DATA / "portkey-configs").glob("*.json"))


def named_targets(node: Any, inherited: str | None = None) -> list[tuple[str, str | None]]:
    """(provider slug, model or None) for every target, walking like the compiler does."""
    out: list[tuple[str, str | None]] = []
    provider = inherited
    if isinstance(node.get("provider"), str) and node["provider"].startswith("@"):
        provider = node["provider"][1:]
    if isinstance(node.get("virtual_key"), str):
        provider = node["virtual_key"].removeprefix("@")
    model = (node.get("override_params") or {}).get("model")
    if isinstance(model, str) and model.startswith("@"):
        provider, _, model = model[1:].partition("/")
    if not node.get("targets") and provider:
        out.append((provider, model))
    for child in node.get("targets") or ():
        out.extend(named_targets(child, provider))
    return out


def service_for(slug: str) -> str:
    if "anthropic" in slug:
        return "anthropic"
    if "azure" in slug:
        return "azure-openai"
    return "openai"


def catalog_around(config: dict[str, Any], root: Path) -> Path:
    """A catalog defining exactly the providers (and unknown models) the config names."""
    registry = builtin()
    docs = [
        "kind: Organization\nversion: 1\nname: Conformance\nbudgets: [{limit: 1000, unit: usd, period: monthly}]"
    ]
    docs.append("kind: Workspace\nslug: team")
    services = {}
    for provider, model in named_targets(config):
        service = service_for(provider)
        services.setdefault(provider, service)
        if model and registry.lookup(service, model) is None:
            docs.append(
                f'kind: Model\nname: {model}\nprovider: "@{provider}"\n'
                'pricing: {input: "3", output: "15"}'
            )
    for provider, service in sorted(services.items()):
        settings = "\nsettings: {resource_name: acme}" if service == "azure-openai" else ""
        docs.append(
            f"kind: Integration\nslug: {provider}-int\nservice: {service}\n"
            f"credentials: {{api_key: {{env: KEY_{re.sub('[^A-Z0-9]', '_', provider.upper())}}}}}{settings}"
        )
        docs.append(f"kind: Provider\nslug: {provider}\nintegration: {provider}-int")
    docs.append("kind: Config\nslug: pasted\nworkspaces: [team]\nconfig: " + json.dumps(config))
    root.mkdir(parents=True)
    (root / "catalog.yaml").write_text(docs[0] + "\n")
    (root / "rest.yaml").write_text("\n---\n".join(docs[1:]) + "\n")
    return root


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_real_config_compiles(path: Path, tmp_path: Path) -> None:
    shared_data("portkey-configs")
    config = json.loads(path.read_text())
    compiled = compile_catalog(catalog_around(config, tmp_path / "cat"))
    assert compiled.ok, [f"{d.code} {d.message}" for d in compiled.errors]
    assert compiled.index is not None
    tree = compiled.index.configs["pasted"].tree
    leaves = list(iter_leaves(tree))
    assert leaves, "a config always reaches at least one target"
    for leaf in leaves:
        assert leaf["provider"] in compiled.index.providers


def iter_leaves(node: Any) -> Any:
    if node["mode"] == "target":
        yield node
    for child in node.get("targets", ()):
        yield from iter_leaves(child)


def compiled_tree(name: str, tmp_path: Path) -> Any:
    config = json.loads(shared_data("portkey-configs", name).read_text())
    compiled = compile_catalog(catalog_around(config, tmp_path / "cat"))
    assert compiled.ok and compiled.index is not None
    return compiled.index.configs["pasted"].tree


def test_loadbalance_with_nested_fallback(tmp_path: Path) -> None:
    tree = compiled_tree("01.json", tmp_path)
    assert tree["mode"] == "loadbalance"
    first, second = tree["targets"]
    assert first["mode"] == "target" and first["provider"] == "openai-prod"
    assert second["mode"] == "fallback"
    assert list(second["strategy"]["on_status_codes"]) == [429, 500]
    assert [t["provider"] for t in second["targets"]] == ["openai-backup", "anthropic-prod"]


def test_single_target_keeps_cache_and_retry(tmp_path: Path) -> None:
    tree = compiled_tree("02.json", tmp_path)
    assert tree["mode"] == "target" and tree["provider"] == "openai-prod"
    assert dict(tree["cache"]) == {"mode": "semantic", "max_age": 10000}
    assert tree["retry"]["attempts"] == 5 and list(tree["retry"]["on_status_codes"]) == [429]


def test_conditional_inside_fallback_with_model_strings(tmp_path: Path) -> None:
    tree = compiled_tree("05.json", tmp_path)
    first, second = tree["targets"]
    assert (first["provider"], first["model"]) == ("openai", "gpt-4o")
    assert second["mode"] == "conditional" and second["strategy"]["default"] == "us-backup"
    assert [(t["name"], t["provider"]) for t in second["targets"]] == [
        ("eu-backup", "azure-eu"),
        ("us-backup", "azure-us"),
    ]


def test_and_or_regex_conditions(tmp_path: Path) -> None:
    tree = compiled_tree("06.json", tmp_path)
    conditions = tree["strategy"]["conditions"]
    assert [c["then"] for c in conditions] == ["gpt4_v2_target", "app_target"]
    assert conditions[1]["query"]["$or"][1] == {"metadata.app_name": {"$regex": "my_app"}}


def test_params_merge_and_drop(tmp_path: Path) -> None:
    tree = compiled_tree("09.json", tmp_path)
    first, second = tree["targets"]
    assert first["model"] == "gpt-4o"
    assert dict(first["params"]["default"]) == {"temperature": 0.7, "max_tokens": 1024}
    assert list(first["params"]["drop"]) == [
        "logprobs",
        "tools[0].function.strict",
        "tools[*].function.name",
    ]
    assert "model" not in first["params"]["override"]
    assert (second["provider"], second["model"]) == ("anthropic-backup", "claude-sonnet-4-20250514")


def test_per_target_cache(tmp_path: Path) -> None:
    tree = compiled_tree("12.json", tmp_path)
    assert [t["cache"]["mode"] for t in tree["targets"]] == ["simple", "semantic"]


def test_timeout_and_retry_at_the_root(tmp_path: Path) -> None:
    tree = compiled_tree("13.json", tmp_path)
    assert tree["request_timeout"] == 1000 and tree["provider"] == "openai"


def test_legacy_virtual_key_is_a_provider_slug(tmp_path: Path) -> None:
    tree = compiled_tree("14.json", tmp_path)
    assert tree["mode"] == "single"
    assert tree["targets"][0]["provider"] == "openai-prod"
