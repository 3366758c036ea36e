"""The bundle: canonical, content-addressed, deterministic, secret-free, schema-valid."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.gen_catalog import generate
from catalog_compiler.compiler import compile_catalog
from catalog_compiler.diagnostics import Sink
from catalog_compiler.emit.schemas import render
from catalog_compiler.load.yamlparse import parse_text
from runtime.bundle.canonical import CanonicalError, jcs, js_number, seal
from runtime.bundle.load import Bundle
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
    assert data == rfc8785.dumps(bundle)  # the file is its own JCS form
    body = {k: v for k, v in bundle.items() if k != "digest"}
    assert bundle["digest"] == f"sha256:{hashlib.sha256(rfc8785.dumps(body)).hexdigest()}"
    assert bundle["format"] == "catalog-bundle/2"


# -- RFC 8785 --------------------------------------------------------------------------

# RFC 8785 Appendix B: IEEE-754 bits -> the JCS number.
RFC_NUMBERS = [
    ("0000000000000000", "0"), ("8000000000000000", "0"), ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"), ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"), ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"), ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"), ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"), ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"), ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"), ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"), ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"), ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"), ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]  # fmt: skip


@pytest.mark.parametrize(("bits", "text"), RFC_NUMBERS)
def test_numbers_are_written_as_rfc_8785_appendix_b(bits: str, text: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert js_number(value) == text
    assert jcs([value]) == f"[{text}]".encode()


def test_members_are_sorted_by_utf16_code_units_as_rfc_8785_3_2_3() -> None:
    value = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
             "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
             "\u00f6": "Latin Small Letter O With Diaeresis"}  # fmt: skip
    order = [
        json.loads(f"{{{m}}}").popitem()[1]
        for m in re.findall(r'"[^"]*":"[^"]*"', jcs(value).decode())
    ]
    assert order == ["Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis",
                     "Euro Sign", "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh"]  # fmt: skip


def test_rfc_8785_3_2_4_example_serializes_byte_for_byte() -> None:
    text = r"""{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"""
    expected = r"""{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"""
    assert jcs(json.loads(text)) == expected.encode()


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), -float("inf"), 2**53 + 1, -(2**53 + 1), 10**21, {1: "x"}, {"a": {2}},
     "\ud800", {"\udfff": 1}, Decimal("1.5"), b"bytes"],
    ids=repr,
)  # fmt: skip
def test_values_without_a_canonical_form_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalError):
        jcs([value])
    with pytest.raises(CanonicalError):
        seal({"format": "catalog-bundle/2", "x": value})


def test_a_whole_double_written_in_full_reads_back_and_reseals_the_same() -> None:
    """JCS writes 1e20 as 100000000000000000000, which Python reads as an integer."""
    data = jcs({"big": 1e20, "odd": 1.2345678901234568e20})
    assert data == b'{"big":100000000000000000000,"odd":123456789012345680000}'
    assert jcs(json.loads(data)) == data
    with pytest.raises(CanonicalError):
        jcs(2**53 + 1)  # no double is written so: it would lose precision


def test_nesting_beyond_the_bound_is_refused_not_recursed() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(CanonicalError, match="nested deeper"):
        jcs(deep)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.text() | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**53) + 1, 2**53 - 1),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_our_jcs_is_the_rfc8785_packages(value: Any) -> None:
    try:
        theirs = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:  # lone surrogates
        with pytest.raises(CanonicalError):
            jcs(value)
        return
    assert jcs(value) == theirs
    if not any(isinstance(v, float) for v in _leaves(value)):
        assert json.loads(theirs) == value


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def test_legacy_bundles_keep_their_recipe(tmp_path: Path) -> None:
    """A `/1` body is sealed, and verified, as Python's json.dumps wrote it."""
    body = {k: v for k, v in json.loads(compile_bytes(EXAMPLE)).items() if k != "digest"}
    body["format"] = "catalog-bundle/1"
    body["providers"]["openai-prod"]["default_params"] = {
        "tiny": 1e-7,
        "\U0001f600": 1,
        "\ufb33": 2,
    }
    data = seal(body)
    assert b'"tiny":1e-07' in data  # Python's float form, not JavaScript's
    legacy_text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert (
        json.loads(data)["digest"] == "sha256:" + hashlib.sha256(legacy_text.encode()).hexdigest()
    )
    assert Bundle.load(data).digest == json.loads(data)["digest"]
    pretty = json.dumps(json.loads(data), indent=1).encode()
    assert Bundle.load(pretty).digest == json.loads(data)["digest"]  # the slow path agrees


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


def test_the_runtime_gate_uses_the_compilers_bounds() -> None:
    """Whatever the compiler accepts loads: the gate's bounds are the compiler's own."""
    from catalog_compiler.model import common, types
    from catalog_compiler.model.routing import Attempts
    from catalog_compiler.services import SERVICES
    from runtime.bundle import check as gate

    assert gate.MAX_BUDGET_USD == common.MAX_BUDGET_USD
    assert gate.MAX_COUNT == types.MAX_COUNT
    assert gate.MAX_REFILL_YEARS == common.MAX_REFILL_YEARS
    assert gate.PER_SECONDS == common.PER_SECONDS
    assert gate.MAX_PRICE_PER_M == types.MAX_PRICE_PER_M
    assert gate.MAX_PER_REQUEST == types.MAX_PER_REQUEST
    assert gate.PRICE_FIELDS == common.PRICE_FIELDS
    assert {s.api for s in SERVICES.values()} <= set(gate.APIS)
    assert {s.auth for s in SERVICES.values()} <= set(gate.AUTHS)
    (attempts,) = Attempts.__metadata__
    assert attempts.hi == gate.MAX_RETRY_ATTEMPTS
