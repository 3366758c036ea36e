"""The importers (issue 6, item 5) on the real third-party files in ../shared/data, plus
small synthetic inputs for the edge cases the real files do not reach."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from catalog_compiler.cli.import_cmd import import_
from catalog_compiler.compiler import compile_catalog
from catalog_compiler.pipeline import validate
from catalog_compiler.registry import builtin
from catalog_compiler.tools.importers import (
    Target,
    litellm_config,
    litellm_prices,
    portkey_prices,
    service_for,
)
from catalog_compiler.tools.importers.emit import (
    REPORT_FILE,
    Quoted,
    Report,
    dump,
    finish,
    prepare_output,
    scalar,
)
from tests.conftest import shared_data

LITELLM_PRICES = ("litellm", "model_prices_and_context_window.json")
PORTKEY_PRICING = ("portkey-models", "pricing")
PROXY_CONFIGS = ("litellm", "proxy-configs")


# -- helpers ------------------------------------------------------------------------------


def write(out: Path, files: dict[str, str], report: Report) -> Path:
    prepare_output(out, force=False)
    finish(out, files, report)
    return out


def documents(out: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    yaml = YAML(typ="safe", pure=True)
    for path in sorted(out.rglob("*.yaml")):
        for doc in yaml.load_all(path.read_text(encoding="utf-8")):
            yield str(path.relative_to(out)), doc


def models(out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(integration or provider, model name) -> Model document."""
    found = {}
    for _, doc in documents(out):
        if doc["kind"] == "Model":
            home = doc.get("integration") or doc.get("provider")
            assert (home, doc["name"]) not in found, f"duplicate model {doc['name']} on {home}"
            found[(home, doc["name"])] = doc
    return found


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def assert_valid_catalog(out: Path) -> None:
    result = validate(out)
    assert not result.errors, "\n".join(d.message for d in result.errors[:10])
    compiled = compile_catalog(out)
    assert not compiled.errors, "\n".join(d.message for d in compiled.errors[:10])
    assert compiled.data is not None


def assert_accounted(report: Report, keys: list[str]) -> None:
    """Every input entry is converted or skipped with a reason, exactly once."""
    skipped = [s.key for s in report.skipped]
    assert report.total == len(keys)
    assert report.converted + len(report.skipped) == report.total
    assert sorted(report.converted_keys + skipped) == sorted(keys)
    assert all(s.reason.strip() for s in report.skipped)


def skip_reason(report: Report, key: str) -> str:
    found = [s for s in report.skipped if s.key == key]
    assert len(found) == 1, f"{key} is not skipped exactly once"
    return found[0].reason


def cli(*args: str) -> Any:
    group = click.Group(commands={"import": import_})
    return CliRunner().invoke(group, ["import", *args], catch_exceptions=False)


# -- LiteLLM prices -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def litellm_import(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    source = shared_data(*LITELLM_PRICES)
    files, report = litellm_prices.run(source, None)
    return write(tmp_path_factory.mktemp("litellm") / "out", files, report), report


def test_litellm_prices_convert_exactly(litellm_import: tuple[Path, Report]) -> None:
    out, _ = litellm_import
    found = models(out)
    # gpt-4o: 2.5e-06 USD/token in, 1e-05 out, 1.25e-06 cached -> per 1M, by hand
    gpt4o = found[("openai", "gpt-4o")]
    # batch 1.25e-06 / 5e-06; priority 4.25e-06 / 1.7e-05, cache read 2.125e-06
    assert gpt4o["pricing"] == {
        "input": "2.5", "output": "10", "cache_read": "1.25",
        "batch": {"input": "1.25", "output": "5"},
        "service_tiers": {"priority": {"input": "4.25", "output": "17", "cache_read": "2.125"}},
    }  # fmt: skip
    assert (gpt4o["context_window"], gpt4o["max_output_tokens"]) == (128000, 16384)
    # claude-sonnet-4-5: 3e-06, 1.5e-05, cache read 3e-07, cache write 3.75e-06, 1-hour
    # write 6e-06; batch 1.5e-06, 7.5e-06, 1.5e-07, 1.875e-06
    sonnet = found[("anthropic", "claude-sonnet-4-5")]
    assert sonnet["pricing"] == {
        "input": "3", "output": "15", "cache_read": "0.3", "cache_write": "3.75",
        "cache_write_1h": "6",
        "batch": {"input": "1.5", "output": "7.5", "cache_read": "0.15", "cache_write": "1.875"},
    }  # fmt: skip
    # provider prefixes are cut: `azure/gpt-4o` is `gpt-4o` on Azure OpenAI
    assert found[("azure-openai", "gpt-4o")]["pricing"]["input"] == "2.5"
    # `gemini/…` is Google AI Studio: 3e-07 -> 0.3, 3e-08 -> 0.03
    flash = found[("google", "gemini-2.5-flash")]["pricing"]
    assert (flash["input"], flash["output"], flash["cache_read"]) == ("0.3", "2.5", "0.03")
    # prices are written as quoted decimal strings
    text = (out / "models" / "openai.yaml").read_text(encoding="utf-8")
    assert '  batch: {input: "1.25", output: "5"}' in text  # short tables on one line
    assert "!!" not in text  # no tags
    assert not re.search(r'"[0-9.]+[eE][-+]?[0-9]+"', text)  # no exponent notation


def test_litellm_prices_account_for_every_entry(litellm_import: tuple[Path, Report]) -> None:
    _, report = litellm_import
    data = json.loads(shared_data(*LITELLM_PRICES).read_text(encoding="utf-8"))
    assert_accounted(report, list(data))
    assert report.converted > 1000
    assert skip_reason(report, "sample_spec") == "not a model entry"
    assert skip_reason(report, "whisper-1") == "priced per second"
    assert skip_reason(report, "azure/standard/1024-x-1024/dall-e-3").startswith("image model")
    # a regional price is a table of the model's own entry now, not a skip ...
    assert (
        "bedrock/us-gov-west-1/anthropic.claude-sonnet-4-5-20250929-v1:0" in report.converted_keys
    )
    # ... unless the model has no price of its own to be a table of
    key = "bedrock/us-gov-west-1/anthropic.claude-3-haiku-20240307-v1:0"
    assert skip_reason(report, key) == "regional price of a model with no global price"
    reasons = {s.reason for s in report.skipped}
    assert "region-specific price" not in reasons
    unsupported = next(k for k, v in data.items() if v.get("litellm_provider") == "novita")
    assert skip_reason(report, unsupported) == "unsupported provider"
    alias = next(k for k, v in data.items() if "alias_of" in v)
    assert skip_reason(report, alias) == "alias of another entry"
    # the printed summary carries the same counts
    summary = "\n".join(report.summary())
    assert f"{report.converted} converted, {len(report.skipped)} skipped" in summary


def test_litellm_prices_output_validates(litellm_import: tuple[Path, Report]) -> None:
    out, report = litellm_import
    assert_valid_catalog(out)
    text = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert f"**{report.converted} converted**" in text
    assert "### unsupported provider" in text


def test_litellm_prices_registry_names_are_overrides(litellm_import: tuple[Path, Report]) -> None:
    out, _ = litellm_import
    text = (out / "models" / "openai.yaml").read_text(encoding="utf-8")
    assert "# litellm: gpt-4o (overrides the built-in model)" in text
    assert "# litellm: babbage-002 (custom model)" in text


def test_litellm_prices_are_deterministic(tmp_path: Path) -> None:
    source = shared_data(*LITELLM_PRICES)
    runs = []
    for name in ("a", "b"):
        files, report = litellm_prices.run(source, None)
        runs.append(tree_bytes(write(tmp_path / name, files, report)))
    assert runs[0] == runs[1]


def test_litellm_prices_selected_integrations(tmp_path: Path) -> None:
    source = shared_data(*LITELLM_PRICES)
    result = cli("litellm-prices", str(source), "-o", str(tmp_path / "out"),
                 "--integration", "openai=openai-main", "--integration", "anthropic")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "integrations").iterdir()) == [
        "anthropic.yaml",
        "openai-main.yaml",
    ]
    homes = {home for home, _ in models(out)}
    assert homes == {"openai-main", "anthropic"}
    assert "not selected (--integration)" in result.output
    assert_valid_catalog(out)


def test_litellm_prices_edge_cases(tmp_path: Path) -> None:
    data = {
        "fine-model": {"litellm_provider": "openai", "mode": "chat",
                       "input_cost_per_token": 1.2345678901e-07, "output_cost_per_token": 1e-06},
        "ten-places": {"litellm_provider": "openai", "mode": "chat",
                       "input_cost_per_token": 1.234567891e-07, "output_cost_per_token": 1e-06},
        "huge-model": {"litellm_provider": "openai", "mode": "chat",
                       "input_cost_per_token": 0.02, "output_cost_per_token": 0.02},
        "exact-model": {"litellm_provider": "openai", "mode": "chat",
                        "input_cost_per_token": 3e-07, "output_cost_per_token": 1.2e-06,
                        "input_cost_per_request": 0.005,
                        "max_input_tokens": 1000, "max_output_tokens": 2000},
        "together_ai/org/Some-Model": {"litellm_provider": "together_ai", "mode": "chat",
                                       "input_cost_per_token": 8.8e-07,
                                       "output_cost_per_token": 8.8e-07},
        "deepseek-chat": {"litellm_provider": "deepseek", "mode": "chat",
                          "input_cost_per_token": 2.8e-07, "output_cost_per_token": 4.2e-07},
        "deepseek/deepseek-chat": {"litellm_provider": "deepseek", "mode": "chat",
                                   "input_cost_per_token": 2.8e-07,
                                   "output_cost_per_token": 4.2e-07},
        "odd": "not an object",
    }  # fmt: skip
    source = tmp_path / "prices.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    files, report = litellm_prices.run(source, None)
    out = write(tmp_path / "out", files, report)
    assert_accounted(report, list(data))
    assert skip_reason(report, "fine-model") == "finer than 10 decimal places"
    assert skip_reason(report, "huge-model") == "price above 10000 USD per 1M tokens"
    assert skip_reason(report, "odd") == "not a model entry"
    # the entry under the model's own name wins; its prefixed twin is a duplicate
    assert skip_reason(report, "deepseek/deepseek-chat") == "duplicate of another entry"
    found = models(out)
    exact = found[("openai", "exact-model")]
    assert exact["pricing"] == {"input": "0.3", "output": "1.2", "per_request": "0.005"}
    # max output above the context window is left out (the catalog rejects it)
    assert exact["context_window"] == 1000 and "max_output_tokens" not in exact
    assert found[("together", "org/Some-Model")]["pricing"]["input"] == "0.88"
    assert found[("openai", "ten-places")]["pricing"]["input"] == "0.1234567891"
    assert_valid_catalog(out)


# -- Portkey prices -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def portkey_import(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    source = shared_data(*PORTKEY_PRICING)
    files, report = portkey_prices.run(source, None)
    return write(tmp_path_factory.mktemp("portkey") / "out", files, report), report


def test_portkey_prices_convert_cents_exactly(portkey_import: tuple[Path, Report]) -> None:
    out, _ = portkey_import
    found = models(out)
    # gpt-4o: 0.00025 cents/token = 2.5e-06 USD/token = 2.5 USD/1M; explicit 0 kept;
    # batch 0.000125 / 0.0005; priority 0.000425 / 0.0017, cache read 0.0002125
    assert found[("openai", "gpt-4o")]["pricing"] == {
        "input": "2.5", "output": "10", "cache_read": "1.25", "cache_write": "0",
        "batch": {"input": "1.25", "output": "5"},
        "service_tiers": {"priority": {"input": "4.25", "output": "17", "cache_read": "2.125"}},
    }  # fmt: skip
    # 0.0003 / 0.0015 / 3e-05 / 0.000375 cents per token, 1-hour write 0.0006; batch
    # 0.00015 / 0.00075
    assert found[("anthropic", "claude-sonnet-4-5-20250929")]["pricing"] == {
        "input": "3", "output": "15", "cache_read": "0.3", "cache_write": "3.75",
        "cache_write_1h": "6", "batch": {"input": "1.5", "output": "7.5"},
    }  # fmt: skip
    # a fixed cost of 0.5 cents per request is 0.005 USD per request
    assert found[("perplexity", "pplx-7b-online")]["pricing"] == {
        "input": "0",
        "output": "0.28",
        "per_request": "0.005",
    }
    # Azure AI Foundry gets its own integration (service azure-openai)
    assert any(home == "azure-ai" for home, _ in found)


def test_portkey_prices_account_for_every_entry(portkey_import: tuple[Path, Report]) -> None:
    _, report = portkey_import
    keys = []
    for path in sorted(shared_data(*PORTKEY_PRICING).glob("*.json")):
        keys += [f"{path.stem}: {k}" for k in json.loads(path.read_text(encoding="utf-8"))]
    assert_accounted(report, keys)
    assert skip_reason(report, "openai: default").startswith("file default")
    assert skip_reason(report, "deepinfra: zai-org/GLM-4.6") == "unsupported provider"
    key = "openrouter: google/gemini-2.5-flash"  # cache_write 0.08333… USD per 1M tokens
    assert skip_reason(report, key) == "finer than 10 decimal places"
    assert skip_reason(report, "fireworks-ai: 4b") == "price class, not a model"
    # a long-context entry is a tier of the model's own entry now, not a skip
    assert "google: gemini-2.5-pro-gt-128k" in report.converted_keys


def test_portkey_prices_output_validates(portkey_import: tuple[Path, Report]) -> None:
    out, _ = portkey_import
    assert_valid_catalog(out)


def test_portkey_prices_are_deterministic(tmp_path: Path) -> None:
    source = shared_data(*PORTKEY_PRICING)
    runs = []
    for name in ("a", "b"):
        result = cli("portkey-prices", str(source), "-o", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        runs.append(tree_bytes(tmp_path / name))
    assert runs[0] == runs[1]


def test_portkey_default_extends_entries(tmp_path: Path) -> None:
    pricing = tmp_path / "pricing"
    pricing.mkdir()
    table = {
        "default": {"pricing_config": {"pay_as_you_go": {
            "request_token": {"price": 0.0001}, "response_token": {"price": 0},
            "cache_read_input_token": {"price": 0}}}},
        "inherits": {"pricing_config": {"pay_as_you_go": {"response_token": {"price": 0.0004}}}},
        "own": {"pricing_config": {"pay_as_you_go": {
            "request_token": {"price": 0.00015}, "response_token": {"price": 0}}}},
        "imagery": {"pricing_config": {"pay_as_you_go": {"image": {"default": {"price": 4}}}}},
        "gemini-x-lte-128k": {"pricing_config": {"pay_as_you_go": {
            "request_token": {"price": 0.00002}, "response_token": {"price": 0.00004}}}},
    }  # fmt: skip
    (pricing / "google.json").write_text(json.dumps(table), encoding="utf-8")
    (pricing / "palm.json").write_text(json.dumps({"default": {}, "x": {}}), encoding="utf-8")
    files, report = portkey_prices.run(pricing, None)
    out = write(tmp_path / "out", files, report)
    found = models(out)
    # a non-zero default is inherited; a zero default is Portkey's "no price", not copied
    assert found[("google", "inherits")]["pricing"] == {"input": "1", "output": "4"}
    assert found[("google", "own")]["pricing"] == {"input": "1.5", "output": "0"}
    assert found[("google", "gemini-x")]["pricing"] == {"input": "0.2", "output": "0.4"}
    assert skip_reason(report, "palm: x") == "unsupported provider"
    # the image-only entry inherits the default's input price, so it is converted too
    assert found[("google", "imagery")]["pricing"] == {"input": "1"}
    assert report.caveats["image prices"] == 1
    assert_valid_catalog(out)


# -- price tables: tiers, 1-hour cache writes, batch, service tiers, regions ----------------


def per_million(usd_per_token: float) -> str:
    """The catalog's text for a LiteLLM price, by hand: exact decimal x 1,000,000."""
    return format((Decimal(str(usd_per_token)) * 1_000_000).normalize(), "f")


def test_litellm_price_tables_carry_over(tmp_path: Path) -> None:
    base = {
        "litellm_provider": "bedrock",
        "mode": "chat",
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07,
        "cache_creation_input_token_cost": 3.75e-06,
    }
    data = {
        "model-x": {**base,
                    "cache_creation_input_token_cost_above_1hr": 6e-06,
                    "input_cost_per_token_above_200k_tokens": 6e-06,
                    "output_cost_per_token_above_200k_tokens": 2.25e-05,
                    "cache_creation_input_token_cost_above_1hr_above_200k_tokens": 1.2e-05,
                    "input_cost_per_token_batches": 1.5e-06, "output_cost_per_token_batches": 7.5e-06,
                    "input_cost_per_token_flex": 1.5e-06, "output_cost_per_token_flex": 7.5e-06,
                    "input_cost_per_token_priority": 6e-06,
                    "input_cost_per_token_above_200k_tokens_priority": 1.2e-05,
                    "input_cost_per_token_above_12hr": 9e-06,  # not a price the catalog has
                    "output_cost_per_token_flex_ultrafast": 1e-05,
                    "input_cost_per_token_decisions": 0},
        "bedrock/eu-west-1/model-x": {**base, "input_cost_per_token": 3.3e-06,
                                      "output_cost_per_token": 1.65e-05},
        "bedrock/eu-west-1/model-y": {**base},  # no entry of model-y itself
        "model-z": {"litellm_provider": "bedrock", "mode": "chat",
                    "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                    "cache_read_input_token_cost_flex": 1e-07},  # no base cache_read price
    }  # fmt: skip
    source = tmp_path / "prices.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    files, report = litellm_prices.run(source, None)
    out = write(tmp_path / "out", files, report)
    assert_accounted(report, list(data))
    assert skip_reason(report, "bedrock/eu-west-1/model-y") == (
        "regional price of a model with no global price"
    )
    found = models(out)
    assert found[("bedrock", "model-x")]["pricing"] == {
        "input": "3", "output": "15", "cache_read": "0.3", "cache_write": "3.75",
        "cache_write_1h": "6",
        "tiers": [{"above_input_tokens": 200000, "input": "6", "output": "22.5",
                   "cache_write_1h": "12"}],
        "batch": {"input": "1.5", "output": "7.5"},
        "service_tiers": {"flex": {"input": "1.5", "output": "7.5"},
                          "priority": {"input": "6", "tiers": [
                              {"above_input_tokens": 200000, "input": "12"}]}},
        "regions": {"eu-west-1": {"input": "3.3", "output": "16.5", "cache_read": "0.3",
                                  "cache_write": "3.75"}},
    }  # fmt: skip
    # a variant price of a field the base has no price for is left out, and counted
    assert found[("bedrock", "model-z")]["pricing"] == {"input": "1", "output": "2"}
    assert (
        report.caveats["tier, batch or regional price of a field with no base price (left out)"]
        == 1
    )
    assert report.caveats["long-lived cache write prices (1h/12h)"] == 1  # the 12-hour one
    assert_valid_catalog(out)


def test_litellm_real_tables(litellm_import: tuple[Path, Report]) -> None:
    """Claude Sonnet 4.5 on Bedrock, from the real price map: every table by hand."""
    out, _ = litellm_import
    data = json.loads(shared_data(*LITELLM_PRICES).read_text(encoding="utf-8"))
    name = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    src = data[name]
    pricing = models(out)[("bedrock", name)]["pricing"]
    assert pricing["cache_write_1h"] == per_million(
        src["cache_creation_input_token_cost_above_1hr"]
    )
    tier = pricing["tiers"][0]
    assert tier["above_input_tokens"] == 200_000
    assert tier["input"] == per_million(src["input_cost_per_token_above_200k_tokens"])
    assert tier["output"] == per_million(src["output_cost_per_token_above_200k_tokens"])
    assert pricing["batch"]["input"] == per_million(src["input_cost_per_token_batches"])
    gov = data[f"bedrock/us-gov-west-1/{name}"]
    assert pricing["regions"]["us-gov-west-1"]["input"] == per_million(gov["input_cost_per_token"])


def test_portkey_price_tables_carry_over(tmp_path: Path) -> None:
    pricing = tmp_path / "pricing"
    pricing.mkdir()

    def pay(i: float, o: float, **more: Any) -> dict[str, Any]:
        prices = {"request_token": {"price": i}, "response_token": {"price": o}}
        return {"pricing_config": {"pay_as_you_go": {**prices, **more}}}

    hour = {"additional_units": {"cache_write_1h": {"price": 0.0006}}}
    table = {
        "default": {},
        "m-lte-200k": {**pay(0.0003, 0.0015, cache_write_input_token={"price": 0.000375}, **hour),
                       "custom_pricing": {"regions": {
                           "default": {"execution_modes": {
                               "batch": pay(0.00015, 0.00075), "flex": pay(0.0001, 0.0005),
                               "fast": pay(0.003, 0.015)}},
                           "eu-west-1,eu-west-2": {"execution_modes": {
                               "standard": pay(0.00033, 0.00165),
                               "batch": pay(0.000165, 0.000825)}}}}},
        "m-gt-200k": pay(0.0006, 0.00225),
        "orphan-gt-128k": pay(0.0006, 0.00225),
        "tiered": {**pay(0.0005, 0.003), "custom_pricing": {
            "context_tier_map": {"0": "lte-272k", "272000": "gt-272k"},
            "regions": {"default": {"execution_modes": {"standard": {"context_tiers": {
                "lte-272k": pay(0.0005, 0.003), "gt-272k": pay(0.001, 0.0045)}}}}}}},
    }  # fmt: skip
    (pricing / "anthropic.json").write_text(json.dumps(table), encoding="utf-8")
    files, report = portkey_prices.run(pricing, None)
    out = write(tmp_path / "out", files, report)
    keys = [f"anthropic: {k}" for k in table]
    assert_accounted(report, keys)
    assert skip_reason(report, "anthropic: orphan-gt-128k") == (
        "long-context tier of a model with no base price"
    )
    found = models(out)
    # cents per token x 10,000 = USD per 1M tokens, by hand
    assert found[("anthropic", "m")]["pricing"] == {
        "input": "3", "output": "15", "cache_write": "3.75", "cache_write_1h": "6",
        "tiers": [{"above_input_tokens": 200000, "input": "6", "output": "22.5"}],
        "batch": {"input": "1.5", "output": "7.5"},
        "service_tiers": {"flex": {"input": "1", "output": "5"}},
        "regions": {"eu-west-1": {"input": "3.3", "output": "16.5"},
                    "eu-west-2": {"input": "3.3", "output": "16.5"}},
    }  # fmt: skip
    assert found[("anthropic", "tiered")]["pricing"] == {
        "input": "5", "output": "30",
        "tiers": [{"above_input_tokens": 272000, "input": "10", "output": "45"}],
    }  # fmt: skip
    assert report.caveats["execution-mode prices (`fast`)"] == 1
    assert report.caveats["regional batch or service-tier prices"] == 1
    assert_valid_catalog(out)


# -- LiteLLM proxy configs ----------------------------------------------------------------

CREDENTIAL_WORDS = ("key", "secret", "password", "token", "credential")


def literal_secrets(value: Any, key: str = "") -> Iterator[str]:
    """Literal values under credential-like keys (never `os.environ/…` references)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from literal_secrets(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from literal_secrets(v, key)
    elif (
        isinstance(value, str)
        and value.strip()
        and not value.startswith("os.environ/")
        and any(w in key.lower() for w in CREDENTIAL_WORDS)
    ):
        yield value.strip()


def proxy_configs() -> list[Path]:
    return sorted(shared_data(*PROXY_CONFIGS).glob("*.yaml"))


def test_every_proxy_config_imports_to_a_valid_catalog(tmp_path: Path) -> None:
    configs = proxy_configs()
    assert len(configs) >= 5
    for config in configs:
        out = tmp_path / config.stem
        result = cli("litellm-config", str(config), "-o", str(out))
        assert result.exit_code == 0, result.output
        assert "entries:" in result.output
        assert_valid_catalog(out)
        data = litellm_config.load(config)
        _, report = litellm_config.run(config)
        model_list = data.get("model_list") or []
        keys = []
        for i, entry in enumerate(model_list):
            name = entry.get("model_name") if isinstance(entry, dict) else None
            keys.append(f"model_list[{i}] {name}" if name else f"model_list[{i}]")
        assert_accounted(report, keys)
        assert (out / REPORT_FILE).read_text(encoding="utf-8").startswith("# Import of")


def test_no_literal_secret_reaches_the_output(tmp_path: Path) -> None:
    checked = 0
    for config in proxy_configs():
        secrets = set(literal_secrets(litellm_config.load(config)))
        files, report = litellm_config.run(config)
        out = write(tmp_path / config.stem, files, report)
        printed = "\n".join(report.summary())
        for path in (p for p in out.rglob("*") if p.is_file()):
            text = path.read_text(encoding="utf-8")
            for secret in secrets:
                assert secret not in text, f"{config.name}: a literal secret in {path.name}"
                assert secret not in printed
                checked += 1
    assert checked > 0  # the real configs do hold literal keys (sk-1234, fake-key …)


def test_proxy_config_mapping(tmp_path: Path) -> None:
    config = shared_data(*PROXY_CONFIGS, "azure_config.yaml")
    files, report = litellm_config.run(config)
    out = write(tmp_path / "azure", files, report)
    docs = dict((d["slug"], d) for _, d in documents(out) if d["kind"] == "Integration")
    # two Azure resources -> two integrations; the key is a reference
    assert {d["settings"]["resource_name"] for d in docs.values()} == {
        "openai-gpt-4-test-v-1",
        "openai-gpt-4-test-v-2",
    }
    assert all(d["credentials"] == {"api_key": {"env": "AZURE_API_KEY"}} for d in docs.values())
    providers = dict((d["slug"], d) for _, d in documents(out) if d["kind"] == "Provider")
    team1 = providers["gpt-4-team1"]
    assert team1["models"] == {"allow": ["chatgpt-v-2"]}
    assert team1["rate_limits"] == [{"limit": 20000, "unit": "tokens", "per": "minute"}]
    # retries and timeouts are reported, not dropped silently
    assert any("max_retries" in note for note in report.notes)


def test_proxy_config_load_balancing_and_literal_keys(tmp_path: Path) -> None:
    config = shared_data(*PROXY_CONFIGS, "load_balancer.yaml")
    files, report = litellm_config.run(config)
    out = write(tmp_path / "lb", files, report)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for _, doc in documents(out):
        by_kind.setdefault(doc["kind"], []).append(doc)
    (lb,) = by_kind["Config"]
    assert lb["config"]["strategy"] == {"mode": "loadbalance"}
    assert len(lb["config"]["targets"]) == 3
    # two different literal keys: two integrations, each with its own placeholder reference
    envs = sorted(d["credentials"]["api_key"]["env"] for d in by_kind["Integration"]
                  if d["service"] == "openai")  # fmt: skip
    assert envs == ["OPENAI_2_API_KEY", "OPENAI_API_KEY"]
    rate = next(p for p in by_kind["Provider"] if p["slug"] == "gpt-3-5-turbo")["rate_limits"]
    assert rate == [
        {"limit": 3, "unit": "requests", "per": "minute"},
        {"limit": 20000, "unit": "tokens", "per": "minute"},
    ]
    assert skip_reason(report, "model_list[3] mistral-7b-instruct") == "unsupported provider"
    assert sum("literal secret" in n for n in report.notes) == 2


SYNTHETIC_CONFIG = """\
model_list:
  - model_name: prod-gpt
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789
      rpm: 600
      tpm: 1_000_000
      max_budget: 250.5
      budget_duration: 1d
      temperature: 0.2
      input_cost_per_token: 0.0000022
  - model_name: local-llama
    litellm_params:
      model: hosted_vllm/meta-llama/Llama-3.3-70B-Instruct
      api_base: https://vllm.internal.example/v1
      max_parallel_requests: 16
      input_cost_per_token: 1.5e-7
      output_cost_per_token: 2.5e-7
    model_info:
      max_input_tokens: 131072
      max_output_tokens: 8192
  - model_name: claude
    litellm_params:
      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0
      max_budget: 20
      budget_duration: 10d
      aws_access_key_id: os.environ/AWS_KEY_ID
      aws_secret_access_key: os.environ/AWS_SECRET
      aws_region_name: eu-west-1
  - model_name: mystery
    litellm_params:
      model: openai/ft:gpt-4o-mini:acme::abc123
      api_key: os.environ/OPENAI_API_KEY
litellm_settings:
  max_budget: 1000
  budget_duration: 24h
  success_callback: ["langfuse"]
  fallbacks: [{"prod-gpt": ["claude"]}]
  default_team_settings:
    - team_id: Data Science
      max_budget: 50
      budget_duration: 1mo
      models: ["prod-gpt", "claude"]
      rpm_limit: 100
router_settings:
  routing_strategy: latency-based-routing
  provider_budget_config:
    bedrock: {budget_limit: 80, time_period: 7d}
general_settings:
  master_key: sk-1234567890abcdef
  max_parallel_requests: 200
"""


def test_proxy_config_budgets_limits_and_prices(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(SYNTHETIC_CONFIG, encoding="utf-8")
    files, report = litellm_config.run(config)
    out = write(tmp_path / "out", files, report)
    assert_valid_catalog(out)
    everything = "".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file())
    assert "sk-proj-AbCdEf" not in everything and "sk-1234567890" not in everything
    docs = {(d["kind"], d.get("slug")): d for _, d in documents(out)}
    org = docs[("Organization", None)]
    assert org["budgets"] == [{"limit": 1000, "unit": "usd", "period": "daily"}]
    assert org["concurrency"] == 200
    # a `<N>d` period anywhere needs the organization's epoch
    assert docs[("Provider", "claude")]["budgets"] == [
        {"limit": 20, "unit": "usd", "period": "10d"}
    ]
    assert org["epoch"] == "2026-01-01"
    prod = docs[("Provider", "prod-gpt")]
    assert prod["budgets"] == [{"limit": 250.5, "unit": "usd", "period": "daily"}]
    assert prod["rate_limits"][1] == {"limit": 1000000, "unit": "tokens", "per": "minute"}
    assert prod["default_params"] == {"temperature": 0.2}
    assert docs[("Provider", "local-llama")]["concurrency"] == 16
    # the literal key's placeholder must not clash with a variable the config already uses
    literal = docs[("Integration", "openai")]["credentials"]
    assert literal == {"api_key": {"env": "OPENAI_API_KEY_IMPORTED"}}
    from_env = docs[("Integration", "openai-2")]["credentials"]
    assert from_env == {"api_key": {"env": "OPENAI_API_KEY"}}
    assert docs[("Integration", "vllm")]["base_url"] == "https://vllm.internal.example/v1"
    bedrock = docs[("Integration", "bedrock")]
    assert bedrock["settings"] == {"region": "eu-west-1"}
    assert bedrock["credentials"]["aws_secret_access_key"] == {"env": "AWS_SECRET"}
    assert bedrock["budgets"] == [{"limit": 80, "unit": "usd", "period": "weekly"}]
    team = docs[("Workspace", "data-science")]
    assert team["providers"] == ["@claude", "@prod-gpt"]
    assert team["budgets"] == [{"limit": 50, "unit": "usd", "period": "monthly"}]
    found = models(out)
    # the deployment's own price for a registry model: an override on its provider
    assert found[("prod-gpt", "gpt-4o")]["pricing"] == {"input": "2.2"}
    llama = found[("local-llama", "meta-llama/Llama-3.3-70B-Instruct")]
    assert llama["pricing"] == {"input": "0.15", "output": "0.25"}
    assert (llama["context_window"], llama["max_output_tokens"]) == (131072, 8192)
    # an unknown model under a USD budget gets an explicit 0 price, and a report line
    assert found[("mystery", "ft:gpt-4o-mini:acme::abc123")]["pricing"] == {
        "input": "0",
        "output": "0",
    }
    notes = "\n".join(report.notes)
    for expected in ("fallbacks", "success_callback", "routing_strategy", "master_key",
                     "literal secret", "priced at 0"):  # fmt: skip
        assert expected in notes


# -- the command line ---------------------------------------------------------------------


def test_cli_unreadable_input_exits_2_without_traceback(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nope", encoding="utf-8")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model_list: [\n", encoding="utf-8")
    not_config = tmp_path / "list.yaml"
    not_config.write_text("- a\n- b\n", encoding="utf-8")
    cases = [
        ("litellm-prices", str(tmp_path / "missing.json")),
        ("litellm-prices", str(bad_json)),
        ("portkey-prices", str(tmp_path)),  # bad.json is a table that is not JSON
        ("portkey-prices", str(tmp_path / "nowhere")),
        ("litellm-config", str(bad_yaml)),
        ("litellm-config", str(not_config)),
        ("litellm-config", str(tmp_path / "missing.yaml")),
    ]
    for command, source in cases:
        result = cli(command, source, "-o", str(tmp_path / "out"))
        assert result.exit_code == 2, (command, source, result.output)
        assert "catalogc import:" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_non_empty_output(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = cli("litellm-config", str(config), "-o", str(out))
    assert result.exit_code == 2 and "not empty" in result.output
    result = cli("litellm-config", str(config), "-o", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert (out / "keep.txt").read_text() == "mine"
    assert_valid_catalog(out)


def test_cli_rejects_an_unknown_integration(tmp_path: Path) -> None:
    source = tmp_path / "p.json"
    source.write_text("{}", encoding="utf-8")
    result = cli("litellm-prices", str(source), "-o", str(tmp_path / "o"), "--integration", "nope")
    assert result.exit_code == 2 and "not a service" in result.output


# A name holding a YAML line break ended its comment and wrote a Workspace of its own; one
# holding a control character made the file invalid YAML; a lone surrogate was exit 3.
HOSTILE_NAMES = [
    "a\n---\nkind: Workspace\nslug: evil\n---\n#",
    "a\r---\rkind: Workspace\rslug: evil\r---\r#",
    "a\x85---\x85kind: Workspace\x85slug: evil\x85---\x85#",
    "a\u2028---\u2028kind: Workspace\u2028slug: evil\u2028---\u2028#",
    "a\x1b]0;title\x07\u202eb",
    "a\ud800b",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_source_name_never_writes_catalog_text(tmp_path: Path, name: str) -> None:
    config = tmp_path / "config.yaml"
    entry = {"model_name": name, "litellm_params": {"model": "openai/gpt-4o"}}
    config.write_text(json.dumps({"model_list": [entry]}), encoding="utf-8")  # JSON is YAML
    result = cli("litellm-config", str(config), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert_valid_catalog(tmp_path / "out")
    kinds = sorted(d["kind"] for _, d in documents(tmp_path / "out"))
    assert kinds == ["Integration", "Organization", "Provider"]
    printed = result.output + (tmp_path / "out" / REPORT_FILE).read_text(encoding="utf-8")
    assert not set(printed) & {"\x1b", "\x07", "\x85", "\u2028", "\u202e"}
    prices = tmp_path / "prices.json"
    entry = {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06}
    prices.write_text(json.dumps({f"gpt-{name}": entry}), encoding="utf-8")
    result = cli("litellm-prices", str(prices), "-o", str(tmp_path / "prices"))
    assert result.exit_code == 0, result.output
    assert_valid_catalog(tmp_path / "prices")
    assert "invalid model name" in result.output


# -- YAML output --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["yes", "No", "on", "null", "~", "1.0", "012", "1e5", "0x1F", "12:30", "true",
             "-", "@provider", "a: b", "a:b", "ft:gpt-4o:acme::x1", "v1:0", "#x", "", " lead",
             "x #y", "*", "!tag", "2023-05-15", "a,b", "[x]", "{y}", "é"],
)  # fmt: skip
def test_strings_that_yaml_would_misread_are_quoted(text: str) -> None:
    doc = {"k": text, "flow": [text, "x"], "map": {"a": text}}
    assert YAML(typ="safe", pure=True).load(dump([([], doc)])) == doc
    yaml11 = YAML(typ="safe", pure=True)
    yaml11.version = (1, 1)
    assert yaml11.load(dump([([], doc)])) == doc


def test_plain_names_stay_plain_and_prices_quoted() -> None:
    assert scalar("gpt-4o") == "gpt-4o"
    assert scalar("accounts/fireworks/models/x") == "accounts/fireworks/models/x"
    assert scalar("ft:gpt-4o-mini:acme") == '"ft:gpt-4o-mini:acme"'
    assert scalar(Quoted("2.5")) == '"2.5"'
    text = dump([(["a comment"], {"kind": "Model", "pricing": {"input": Quoted("0.15")}})])
    assert text == textwrap.dedent("""\
        # a comment
        kind: Model
        pricing: {input: "0.15"}
    """)


@pytest.mark.parametrize(
    ("duration", "period"),
    [("1d", "daily"), ("24h", "daily"), ("7d", "weekly"), ("1w", "weekly"),
     ("30d", "monthly"), ("1mo", "monthly"), ("14d", "14d"), ("48h", "2d"), (None, "none"),
     ("30m", None), ("36h", None), ("2mo", None), ("soon", None)],
)  # fmt: skip
def test_budget_durations(duration: str | None, period: str | None) -> None:
    converter = litellm_config.ConfigImport("x.yaml", {}, builtin())
    assert converter.period("here", duration) == period
    assert bool(converter.report.notes) == (period is None)


@pytest.mark.parametrize(
    ("source", "service", "group"),
    [("openai", "openai", "openai"), ("azure", "azure-openai", "azure-openai"),
     ("azure_ai", "azure-openai", "azure-ai"), ("azure-ai", "azure-openai", "azure-ai"),
     ("bedrock_converse", "bedrock", "bedrock"), ("vertex_ai", "vertex-ai", "vertex-ai"),
     ("vertex_ai-anthropic_models", "vertex-ai", "vertex-ai"), ("gemini", "google", "google"),
     ("together_ai", "together", "together"), ("fireworks_ai", "fireworks", "fireworks"),
     ("mistral", "mistral", "mistral"), ("mistral-ai", "mistral", "mistral"),
     ("x-ai", "xai", "xai"), ("perplexity-ai", "perplexity", "perplexity"),
     ("cohere_chat", "cohere", "cohere"), ("text-completion-openai", "openai", "openai"),
     ("hosted_vllm", "vllm", "vllm")],
)  # fmt: skip
def test_provider_names_map_to_services(source: str, service: str, group: str) -> None:
    assert service_for(source) == Target(service, group)


@pytest.mark.parametrize("source", ["sagemaker", "codestral", "novita", "deepinfra", "palm"])
def test_unsupported_providers(source: str) -> None:
    assert service_for(source) is None


def test_numbers_beyond_the_catalog_are_dropped_never_written(tmp_path: Path) -> None:
    """Counts and amounts the catalog bounds (E0206) made an imported catalog that did not
    validate; a 5,000-digit integer, deep nesting or a list as `mode` were internal errors."""
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent("""\
        model_list:
          - model_name: a
            litellm_params: {model: openai/gpt-4o, rpm: 1e300, tpm: 100000000000000000000,
                             max_parallel_requests: 100000000000, max_budget: 1e300}
          - model_name: b
            litellm_params: {model: openai/my-model, max_budget: 1.5e-300}
            model_info: {max_input_tokens: 1e20, max_output_tokens: 5e19}
        litellm_settings: {max_budget: 1e400}
        general_settings: {max_parallel_requests: 1e30}
    """)
    )
    result = cli("litellm-config", str(config), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output  # ruamel's advice on `1e300` is not for our user
    assert "does not validate" not in result.output
    assert_valid_catalog(tmp_path / "out")
    assert result.output.count("dropped") == 5  # rpm, tpm and three budgets
    entry = '{"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06'
    sources = {
        "digits.json": '{"gpt-4o": ' + entry + ', "max_input_tokens": 1' + "0" * 5000 + "}}",
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "mode.json": '{"gpt-4o": {"litellm_provider": "openai", "mode": ["chat"]}}',
        "tokens.json": '{"gpt-4o": ' + entry + ', "max_input_tokens": 1e308}}',
    }
    for name, text in sources.items():
        source = tmp_path / name
        source.write_text(text)
        result = cli("litellm-prices", str(source), "-o", str(tmp_path / name / "out"))
        assert result.exit_code in (0, 2), (name, result.output)
        if result.exit_code == 0:
            assert "does not validate" not in result.output, name
