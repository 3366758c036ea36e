"""Price variants in the bundle (issue 15): long-context tiers, batch and service tiers are
carried canonically and checked again at load; regions are resolved at compile time; an
override replaces a variant whole and `free` drops them all; the registry's are real and
dated."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from catalog_compiler.compiler import compile_catalog
from catalog_compiler.registry import builtin
from runtime.bundle.check import check
from runtime.bundle.errors import BundleContentError
from runtime.bundle.load import Bundle

ORG = "kind: Organization\nversion: 1\nname: Tiers\n"
BEDROCK = """\
    kind: Integration
    slug: aws
    service: bedrock
    credentials:
      aws_access_key_id: {env: AWS_ACCESS_KEY_ID}
      aws_secret_access_key: {env: AWS_SECRET_ACCESS_KEY}
    settings: {region: REGION}
    models:
      custom:
        - name: house
          pricing:
            input: 3
            output: 15
            tiers: [{above_input_tokens: 200000, input: 6, output: 22.5}]
            service_tiers: {priority: {input: 5}, flex: {output: 7.5}}
            batch: {input: 1.5, tiers: [{above_input_tokens: 100000, input: 2}]}
            regions:
              eu-west-1: {input: 3.3}
              eu-north-1: {input: 3.1, tiers: [{above_input_tokens: 300000, input: 7}]}
    ---
    kind: Provider
    slug: aws
    integration: aws
    """


def compiled(tmp_path: Path, files: dict[str, str]) -> dict[str, Any]:
    for rel, text in {"catalog.yaml": ORG, **files}.items():
        (tmp_path / rel).write_text(textwrap.dedent(text))
    out = compile_catalog(tmp_path)
    assert out.data is not None, [f"{d.code} {d.message}" for d in out.errors]
    Bundle.load(out.data)  # the runtime takes it
    data: dict[str, Any] = json.loads(out.data)
    return data


def house(tmp_path: Path, region: str) -> dict[str, Any]:
    data = compiled(tmp_path, {"p.yaml": BEDROCK.replace("REGION", region)})
    prices: dict[str, Any] = data["providers"]["aws"]["models"]["house"]["prices"]
    return prices


def test_variants_are_carried_canonically(tmp_path: Path) -> None:
    prices = house(tmp_path, "us-east-1")  # no table of its own: the base
    assert prices == {
        "input": "3", "output": "15",
        "tiers": [{"above_input_tokens": 200000, "input": "6", "output": "22.5"}],
        "batch": {"input": "1.5", "tiers": [{"above_input_tokens": 100000, "input": "2"}]},
        "service_tiers": {"flex": {"output": "7.5"}, "priority": {"input": "5"}},
    }  # fmt: skip
    assert list(prices["service_tiers"]) == ["flex", "priority"]  # sorted, whatever the order
    schema = json.loads(Path("schema/bundle.schema.json").read_text())
    jsonschema.validate(json.loads(json.dumps(compiled_body(tmp_path))), schema)


def compiled_body(tmp_path: Path) -> dict[str, Any]:
    out = compile_catalog(tmp_path)
    assert out.data is not None
    body: dict[str, Any] = json.loads(out.data)
    return body


def test_a_region_table_holds_at_every_tier(tmp_path: Path) -> None:
    prices = house(tmp_path, "eu-west-1")
    assert prices["input"] == "3.3" and prices["output"] == "15"
    # the region's input replaces the tier's: the tier keeps only what the region leaves
    assert prices["tiers"] == [{"above_input_tokens": 200000, "output": "22.5"}]
    assert "regions" not in json.dumps(prices)


def test_a_region_with_its_own_tiers(tmp_path: Path) -> None:
    prices = house(tmp_path, "eu-north-1")
    assert prices["input"] == "3.1"
    assert prices["tiers"] == [{"above_input_tokens": 300000, "input": "7"}]


def test_an_override_replaces_a_variant_whole_and_free_drops_them(tmp_path: Path) -> None:
    provider = """\
        ---
        kind: Provider
        slug: cheap
        integration: aws
        pricing:
          - {model: house, input: 2, service_tiers: {flex: {input: 1}}}
        ---
        kind: Provider
        slug: gratis
        integration: aws
        pricing: [{model: house, free: true}]
        """
    text = textwrap.dedent(BEDROCK.replace("REGION", "us-east-1")) + textwrap.dedent(provider)
    data = compiled(tmp_path, {"p.yaml": text})
    cheap = data["providers"]["cheap"]["models"]["house"]
    assert cheap["prices"]["input"] == "2" and cheap["prices"]["output"] == "15"
    assert cheap["prices"]["service_tiers"] == {"flex": {"input": "1"}}  # replaced whole
    assert cheap["prices"]["tiers"][0]["input"] == "6"  # not given: the model's
    assert cheap["price_sources"]["service_tiers"] == "provider"
    assert cheap["price_sources"]["tiers"] == "model"
    gratis = data["providers"]["gratis"]["models"]["house"]["prices"]
    assert set(gratis) == {"input", "output", "cache_read", "cache_write", "cache_write_1h",
                           "per_request"} and set(gratis.values()) == {"0"}  # fmt: skip


def test_the_registry_carries_real_dated_tiers() -> None:
    reg = builtin()
    sonnet = reg.lookup("anthropic", "claude-sonnet-4-5-20250929")
    assert sonnet is not None
    assert sonnet.prices["cache_write_1h"] == 2 * sonnet.prices["input"]
    (tier,) = sonnet.variants["tiers"]
    assert tier["above_input_tokens"] == 200000 and tier["input"] == "6"
    pro = reg.lookup("google", "gemini-2.5-pro")
    assert pro is not None and pro.variants["tiers"][0]["output"] == "15"
    gpt = reg.lookup("openai", "gpt-5")
    assert gpt is not None and set(gpt.variants["service_tiers"]) == {"flex", "priority"}
    raw = json.loads(Path("catalog_compiler/registry/models.json").read_text())
    for models in raw["services"].values():
        for entry in models.values():
            if any(k in entry for k in ("tiers", "batch", "service_tiers", "cache_write_1h")):
                assert entry.get("prices_as_of", "").startswith("20")


def bundle_with(prices: dict[str, Any]) -> dict[str, Any]:
    """The example's bundle with one model's prices replaced (checked, not sealed)."""
    out = compile_catalog(Path("examples/acme"))
    assert out.data is not None
    data: dict[str, Any] = json.loads(out.data)
    data["providers"]["openai-prod"]["models"]["gpt-4o"]["prices"] = prices
    return data


@pytest.mark.parametrize(
    "prices",
    [
        {"input": "1", "tiers": [{"above_input_tokens": 5, "input": "2"},
                                 {"above_input_tokens": 5, "input": "3"}]},
        {"input": "1", "tiers": []},
        {"input": "1", "service_tiers": {"scale": {"input": "1"}}},
        {"input": "1", "batch": {"batch": {"input": "1"}}},
        {"input": "1", "tiers": [{"above_input_tokens": 5, "tiers": []}]},
        {"input": "1", "tiers": [{"above_input_tokens": -1, "input": "2"}]},
        {"input": "1", "batch": {"input": "10001"}},
    ],
)  # fmt: skip
def test_the_runtime_refuses_malformed_variants(prices: dict[str, Any]) -> None:
    with pytest.raises(BundleContentError):
        check(bundle_with(prices))


def test_the_runtime_takes_well_formed_variants() -> None:
    check(bundle_with({"input": "1", "tiers": [{"above_input_tokens": 5, "input": "2"}],
                       "service_tiers": {"flex": {"input": "0.5"}}}))  # fmt: skip
