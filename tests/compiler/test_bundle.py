"""The bundle: canonical, content-addressed, deterministic, secret-free, schema-valid."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.gen_catalog import generate
from catalog_compiler.compiler import compile_catalog
from catalog_compiler.diagnostics import Sink
from catalog_compiler.schemas import render
from catalog_compiler.yamlparse import parse_text
from runtime.bundle import Bundle
from runtime.canonical import dumps
from tests.conftest import EXAMPLE


def compile_bytes(path: Path) -> bytes:
    compiled = compile_catalog(path)
    assert compiled.ok, compiled.errors[:5]
    assert compiled.data is not None
    return compiled.data


def shuffled_copy(src: Path, dst: Path, seed: int) -> Path:
    """The same files, created in a random order (so directory listings differ)."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    random.Random(seed).shuffle(files)
    for path in files:
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return dst


def without_provenance(data: bytes) -> dict[str, Any]:
    bundle = json.loads(data)
    bundle.pop("provenance")
    bundle.pop("digest")
    return bundle


def test_bundle_is_canonical_and_its_digest_is_verifiable_anywhere() -> None:
    data = compile_bytes(EXAMPLE)
    bundle = json.loads(data)
    assert data == dumps(bundle).encode("utf-8")  # sorted keys, no whitespace
    body = {k: v for k, v in bundle.items() if k != "digest"}
    expected = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert bundle["digest"] == f"sha256:{expected}"
    assert bundle["format"] == "catalog-bundle/1"


def test_shuffled_copies_give_byte_identical_bundles(tmp_path: Path) -> None:
    first = compile_bytes(shuffled_copy(EXAMPLE, tmp_path / "a", 1))
    second = compile_bytes(shuffled_copy(EXAMPLE, tmp_path / "b", 2))
    assert first == second


@pytest.mark.parametrize("seed", ["0", "1", "4242"])
def test_hash_seed_does_not_change_the_bundle(tmp_path: Path, seed: str) -> None:
    out = tmp_path / f"b{seed}.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "catalog_compiler",
            "compile",
            str(EXAMPLE),
            "-o",
            str(out),
            "--no-cache",
        ],
        env={**os.environ, "PYTHONHASHSEED": seed},
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == compile_bytes(EXAMPLE)


def reorder_documents(text: str, rng: random.Random) -> str:
    """Reverse document order and shuffle top-level keys, keeping the data the same."""
    docs = parse_text(text, "x", Sink())
    out = []
    for doc in reversed(docs):
        items = list(doc.data.items())
        rng.shuffle(items)
        out.append(json.dumps(dict(items), default=float))  # Decimal -> the same number
    return "\n---\n".join(out) + "\n"


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000))
def test_reordering_documents_and_keys_changes_only_provenance(
    tmp_path_factory: Any, seed: int
) -> None:
    rng = random.Random(seed)
    root = tmp_path_factory.mktemp("reordered")
    for path in EXAMPLE.rglob("*.yaml"):
        target = root / path.relative_to(EXAMPLE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(reorder_documents(path.read_text(), rng))
    original = compile_bytes(EXAMPLE)
    reordered = compile_bytes(root)
    assert without_provenance(reordered) == without_provenance(original)


def test_bundle_holds_references_never_secret_values(tmp_path: Path) -> None:
    os.environ["ACME_OPENAI_API_KEY"] = "sk-proj-FAKEFAKEFAKEFAKEFAKEFAKE0000"
    try:
        data = compile_bytes(EXAMPLE)
    finally:
        del os.environ["ACME_OPENAI_API_KEY"]
    assert b"FAKEFAKE" not in data
    bundle = json.loads(data)
    creds = bundle["integrations"]["openai-main"]["credentials"]
    assert creds == {"api_key": "env:ACME_OPENAI_API_KEY", "organization": "env:ACME_OPENAI_ORG"}
    assert bundle["integrations"]["anthropic-main"]["credentials"] == {
        "api_key": "file:/run/secrets/anthropic_api_key"
    }


def test_bundle_matches_its_published_schema() -> None:
    schema = json.loads(render("bundle.schema.json"))
    jsonschema.Draft202012Validator(schema).validate(json.loads(compile_bytes(EXAMPLE)))


def test_bundle_loads_and_tampering_is_refused(tmp_path: Path) -> None:
    data = compile_bytes(EXAMPLE)
    assert Bundle.load(data).digest == json.loads(data)["digest"]
    pretty = json.dumps(json.loads(data), indent=2).encode()
    assert Bundle.load(pretty).digest == json.loads(data)["digest"]  # canonical form checked


def test_bundle_size_grows_with_documents_not_workspaces_times_models(tmp_path: Path) -> None:
    sizes = {}
    for n in (200, 400, 800):
        generate(n, tmp_path / f"c{n}")
        sizes[n] = len(compile_bytes(tmp_path / f"c{n}"))
    # per-document size stays flat (a cross product would grow it with n)
    per_doc = [sizes[n] / n for n in sizes]
    assert max(per_doc) / min(per_doc) < 1.25, sizes
