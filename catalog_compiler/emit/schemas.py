"""JSON Schemas for editors and other tools, generated from the typed models.

`schema/*.schema.json` are these, written by `catalogc schema --write schema/`;
a test fails when a committed file is stale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic.json_schema import models_json_schema

from catalog_compiler.model.documents import KINDS
from catalog_compiler.model.routing import Target

BASE_ID = "https://catalog-compiler.dev/schema/v1/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def catalog_schema() -> dict[str, Any]:
    """Any catalog document; `kind` selects the shape (if/then keeps editor errors precise)."""
    _, top = models_json_schema(
        [(m, "validation") for m in KINDS.values()], ref_template="#/$defs/{model}"
    )
    return {
        "$schema": DRAFT,
        "$id": BASE_ID + "catalog.schema.json",
        "title": "catalog-compiler catalog document",
        "description": "One YAML document of a model catalog. Add "
        "`# yaml-language-server: $schema=<path>/catalog.schema.json` at the top of a file.",
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": list(KINDS), "description": "the document kind"}},
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"$ref": f"#/$defs/{model.__name__}"},
            }
            for kind, model in KINDS.items()
        ],
        "$defs": top["$defs"],
    }


def routing_config_schema() -> dict[str, Any]:
    """The Portkey-compatible routing config object (a Config's `config:`)."""
    schema = Target.model_json_schema(ref_template="#/$defs/{model}")
    return {
        "$schema": DRAFT,
        "$id": BASE_ID + "routing-config.schema.json",
        "title": "Routing config (Portkey-compatible)",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def bundle_schema() -> dict[str, Any]:
    """The compiled bundle, for routers in any language."""
    from catalog_compiler.emit.bundle_schema import BundleOut
    from runtime.bundle.canonical import FORMAT

    schema = BundleOut.model_json_schema(ref_template="#/$defs/{model}")
    return {
        "$schema": DRAFT,
        "$id": BASE_ID + "bundle.schema.json",
        "title": FORMAT,
        **{k: v for k, v in schema.items() if k != "title"},
    }


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "bundle.schema.json": bundle_schema,
    "catalog.schema.json": catalog_schema,
    "routing-config.schema.json": routing_config_schema,
}


def render(name: str) -> str:
    return json.dumps(SCHEMAS[name](), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
