"""The JSON Schemas in schema/ are generated from the models and must stay fresh and useful."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from catalog_compiler.diagnostics import Sink
from catalog_compiler.emit.schemas import SCHEMAS, render
from catalog_compiler.load.yamlparse import parse_text
from tests.conftest import EXAMPLE, ROOT, shared_data

SCHEMA_DIR = ROOT / "schema"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_is_fresh(name: str) -> None:
    committed = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert committed == render(name), (
        f"schema/{name} is stale: run `catalogc schema --write schema/`"
    )


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_valid_draft_2020_12_with_id(name: str) -> None:
    schema = json.loads(render(name))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(name)


def example_documents() -> list[tuple[str, Any]]:
    out = []
    for path in sorted(EXAMPLE.rglob("*.yaml")):
        for doc in parse_text(path.read_text(encoding="utf-8"), str(path), Sink()):
            out.append((f"{path.relative_to(EXAMPLE)}#{doc.index}", doc.data))
    return out


@pytest.mark.parametrize(("where", "data"), example_documents(), ids=lambda x: str(x)[:40])
def test_example_documents_satisfy_the_editor_schema(where: str, data: Any) -> None:
    schema = json.loads(render("catalog.schema.json"))
    jsonschema.Draft202012Validator(schema).validate(data)


def test_editor_schema_rejects_what_the_compiler_rejects() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(render("catalog.schema.json")))
    bad = [
        {"kind": "Provider", "slug": "ok", "integration": "x", "extra": 1},
        {"kind": "Provider", "slug": "Not_A_Slug", "integration": "x"},
        {
            "kind": "Workspace",
            "slug": "w",
            "budgets": [{"limit": 1, "unit": "eur", "period": "daily"}],
        },
        {"kind": "Nope"},
        {"kind": "Config", "slug": "c", "workspaces": "*", "config": {"strategy": {"mode": "x"}}},
    ]
    for doc in bad:
        assert list(validator.iter_errors(doc)), doc


def test_routing_schema_accepts_shared_portkey_configs() -> None:
    data_dir = shared_data("portkey-configs")
    validator = jsonschema.Draft202012Validator(json.loads(render("routing-config.schema.json")))
    for path in sorted(data_dir.glob("*.json")):
        validator.validate(json.loads(path.read_text()))


def test_schema_files_are_the_only_ones(tmp_path: Path) -> None:
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(SCHEMAS)


def test_cli_schema_names_match_the_generators() -> None:
    from catalog_compiler.cli.schema_cmd import SCHEMA_NAMES

    assert sorted(SCHEMA_NAMES) == sorted(SCHEMAS)
