"""A bundle any language can verify: Node runs the verifier of docs/bundle.md, exactly as the
page prints it, on compiled bundles and on one full of awkward numbers and Unicode; our JCS
numbers are compared with JavaScript's own on many doubles."""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from catalog_compiler.compiler import compile_catalog
from runtime.bundle.canonical import MAX_SAFE_INTEGER, js_number, seal
from runtime.bundle.load import Bundle
from tests.conftest import EXAMPLE, ROOT

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# Awkward numbers: exponent forms both ways, the extremes of doubles, the safe integers.
NUMBERS = [1e-7, 1e-6, 1e21, 1e20, 1e22, -0.0, 0.1, 0.30000000000000004, 5e-324,
           1.7976931348623157e308, 2.2250738585072014e-308, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER,
           1e-300, 1.5e300, 123456789012345680000.0, 4.35, 0.000001234, 1e16, 100.0, -1.5e-9,
           333333333.3333333, 9.999999999999997e22, 0, -1]  # fmt: skip
# Names that sort differently by UTF-16 code units and by code points, controls, U+2028.
STRINGS = ["\U0001f600", "\ufb33", "\ue000", "\U00010000", "e\u0301", "\u00e9", "\u2028",
           "\u2029", "\x00", "\x01", "\x1f", "\x7f", "\t\n\r\b\f", '"\\/', "\u0080",
           "𝄞 clef", "\ufeff", "a\u0000b", "\ud7ff", "\uffff"]  # fmt: skip


def verifier(tmp: Path) -> Path:
    """The ```js block of docs/bundle.md, written out as it is."""
    text = (ROOT / "docs" / "bundle.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- verify\.mjs[^>]*-->\s*```js\n(.*?)```", text, re.S)
    assert block is not None, "docs/bundle.md lost its verify.mjs block"
    path = tmp / "verify.mjs"
    path.write_text(block.group(1), encoding="utf-8")
    return path


def node_verifies(tmp: Path, data: bytes) -> subprocess.CompletedProcess[str]:
    bundle = tmp / "bundle.json"
    bundle.write_bytes(data)
    assert NODE is not None
    return subprocess.run(
        [NODE, str(verifier(tmp)), str(bundle)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def acme() -> bytes:
    compiled = compile_catalog(EXAMPLE)
    assert compiled.data is not None
    return compiled.data


def awkward_body(acme: bytes) -> dict[str, Any]:
    """The acme body with awkward values where free-form JSON lives (a provider's default
    params, a conditional's query values) and awkward member names."""
    body = {k: v for k, v in json.loads(acme).items() if k != "digest"}
    params: dict[str, Any] = {f"n{i}": n for i, n in enumerate(NUMBERS)}
    params.update({s: i for i, s in enumerate(STRINGS)})  # names in both sort orders
    params["strings"] = STRINGS
    params["nested"] = {"\U0001f600": {"\ufb33": [1e-7, {"\u2028": -0.0}]}, "": None}
    body["providers"]["openai-prod"]["default_params"] = params
    cond = body["configs"]["eu-router"]["tree"]["strategy"]["conditions"][0]
    cond["query"]["metadata.region"]["$in"] = [*STRINGS, 1e21, 5e-324]
    return body


def test_node_verifies_the_compiled_example(tmp_path: Path, acme: bytes) -> None:
    run = node_verifies(tmp_path, acme)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"ok {json.loads(acme)['digest']}"


def test_node_and_python_agree_on_awkward_numbers_and_unicode(tmp_path: Path, acme: bytes) -> None:
    data = seal(awkward_body(acme))
    assert b"1e-7" in data and b"1e+21" in data and b"5e-324" in data and b"\xe2\x80\xa8" in data
    run = node_verifies(tmp_path, data)
    assert run.returncode == 0, run.stderr
    digest = json.loads(data)["digest"]
    assert run.stdout.strip() == f"ok {digest}"
    assert Bundle.load(data).digest == digest  # the runtime reads it too


def test_node_refuses_a_tampered_bundle(tmp_path: Path, acme: bytes) -> None:
    data = seal(awkward_body(acme))
    for old, new in ((b"1e-7", b"2e-7"), (b'"20000"', b'"90000"'), ("😀".encode(), "😁".encode())):
        assert old in data
        run = node_verifies(tmp_path, data.replace(old, new, 1))
        assert run.returncode == 1, (old, run.stdout)
        assert "digest mismatch" in run.stderr


def test_node_verifies_content_not_layout(tmp_path: Path, acme: bytes) -> None:
    """Pretty-printed, the file still verifies: the digest is of the canonical form."""
    data = json.dumps(json.loads(seal(awkward_body(acme))), indent=2, ensure_ascii=True)
    run = node_verifies(tmp_path, data.encode())
    assert run.returncode == 0, run.stderr


def random_doubles(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        value = struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))[0]
        if value == value and abs(value) != float("inf"):
            out.append(value)
    # plus numbers near the layout switches (1e-7, 1e21) and short decimals
    out += [rng.uniform(1e-8, 1e-5) for _ in range(count // 10)]
    out += [rng.uniform(1e19, 1e23) for _ in range(count // 10)]
    out += [round(rng.uniform(-1000, 1000), rng.randint(0, 6)) for _ in range(count // 10)]
    return out


def test_our_numbers_are_javascripts(tmp_path: Path) -> None:
    """js_number against Node's String(x) on 20,000 doubles given by their bits."""
    doubles = random_doubles(20_000, seed=8785)
    bits = [struct.pack(">d", d).hex() for d in doubles]
    script = tmp_path / "numbers.mjs"
    script.write_text(
        "import { readFileSync } from 'node:fs';\n"
        "const out = JSON.parse(readFileSync(process.argv[2], 'utf8')).map((h) => "
        "String(Buffer.from(h, 'hex').readDoubleBE(0)));\n"
        "console.log(JSON.stringify(out));\n"
    )
    (tmp_path / "bits.json").write_text(json.dumps(bits))
    assert NODE is not None
    run = subprocess.run(
        [NODE, str(script), str(tmp_path / "bits.json")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    theirs = json.loads(run.stdout)
    mismatches = [
        (d, ours, js)
        for d, ours, js in zip(doubles, map(js_number, doubles), theirs, strict=True)
        if ours != js
    ]
    assert not mismatches, mismatches[:5]
