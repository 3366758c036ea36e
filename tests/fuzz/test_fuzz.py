"""No input crashes the compiler: random text, random YAML, and mutated real catalogs always
end with located diagnostics and exit status 0 or 1 (derandomized in CI)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_compiler.cli import cli
from catalog_compiler.diagnostics.codes import CODES
from catalog_compiler.model import KINDS
from catalog_compiler.pipeline import Result, validate
from tests.conftest import EXAMPLE

FILE_LEVEL = {"E0001", "E0002", "E0003", "E0104"}  # about a whole file or directory
VOCAB = [
    "kind", "slug", "name", "version", "integration", "provider", "providers", "workspaces",
    "budgets", "rate_limits", "limit", "unit", "period", "per", "burst", "concurrency", "models",
    "allow", "deny", "custom", "service", "credentials", "api_key", "env", "file", "pricing",
    "input", "output", "config", "strategy", "mode", "targets", "override_params", "model",
    "weight", "retry", "attempts", "conditions", "query", "then", "default", "<<", "*",
    "Organization", "Integration", "Provider", "Workspace", "Model", "Config", "openai", "usd",
    "monthly", "@openai-prod", "gpt-4o", "fallback", "loadbalance", "conditional", "$eq",
]  # fmt: skip


def assert_well_formed(result: Result) -> None:
    for d in result.diagnostics:
        assert d.code in CODES
        assert d.message
        assert d.span.file
        if d.code not in FILE_LEVEL:
            assert d.span.line >= 1 and d.span.column >= 1, d
    assert not result.io_failed


def run_on(files: dict[str, str | bytes]) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", newline="")
        result = validate(root)
        assert_well_formed(result)
        return result


ORG = "kind: Organization\nversion: 1\nname: Fuzz\n"

texty = st.lists(
    st.sampled_from(list("abc:-[]{}&*!|>'\"#@%\n\t ,.0123456789?~") + VOCAB), max_size=120
).map("".join)


@settings(max_examples=300)
@given(texty)
def test_random_text_never_crashes(text: str) -> None:
    run_on({"catalog.yaml": ORG, "x.yaml": text})
    run_on({"catalog.yaml": text})


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(raw: bytes) -> None:
    run_on({"catalog.yaml": ORG, "x.yaml": raw})


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.sampled_from(VOCAB),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(VOCAB), inner, max_size=5)
    ),
    max_leaves=30,
)
documents = st.fixed_dictionaries(
    {"kind": st.sampled_from([*KINDS, "Nope"])},
    optional={k: json_values for k in VOCAB[1:40]},
)


@settings(max_examples=300)
@given(st.lists(documents, min_size=1, max_size=4))
def test_random_yaml_documents_never_crash(docs: list[dict[str, object]]) -> None:
    text = "\n---\n".join(json.dumps(d) for d in docs)  # JSON is YAML
    run_on({"catalog.yaml": ORG, "docs.yaml": text})


def example_files() -> dict[str, str]:
    return {
        str(p.relative_to(EXAMPLE)): p.read_text(encoding="utf-8") for p in EXAMPLE.rglob("*.yaml")
    }


EXAMPLE_FILES = example_files()
mutation = st.tuples(
    st.sampled_from(sorted(EXAMPLE_FILES)),
    st.sampled_from(["delete", "insert", "dup-line", "drop-line", "indent", "swap"]),
    st.integers(0, 10_000),
    st.sampled_from(
        [":", "-", " ", "[", "]", "{", "}", "'", '"', "&a", "*a", "x", "0", "\n", "\t"]
    ),
)


def mutate(text: str, how: str, at: int, piece: str) -> str:
    lines = text.split("\n")
    i = at % max(len(lines), 1)
    if how == "delete" and text:
        k = at % len(text)
        return text[:k] + text[k + 1 :]
    if how == "insert":
        k = at % (len(text) + 1)
        return text[:k] + piece + text[k:]
    if how == "dup-line":
        return "\n".join(lines[: i + 1] + lines[i:])
    if how == "drop-line":
        return "\n".join(lines[:i] + lines[i + 1 :])
    if how == "indent":
        lines[i] = "  " + lines[i]
        return "\n".join(lines)
    j = (at // 7) % max(len(lines), 1)
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


@settings(max_examples=300)
@given(st.lists(mutation, min_size=1, max_size=4))
def test_mutated_example_catalog_never_crashes(mutations: list[tuple[str, str, int, str]]) -> None:
    files = dict(EXAMPLE_FILES)
    for rel, how, at, piece in mutations:
        files[rel] = mutate(files[rel], how, at, piece)
    run_on(files)  # type: ignore[arg-type]


@settings(max_examples=25)
@given(st.lists(mutation, min_size=1, max_size=3))
def test_cli_exit_status_is_0_or_1_on_mutations(mutations: list[tuple[str, str, int, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "acme"
        shutil.copytree(EXAMPLE, root)
        for rel, how, at, piece in mutations:
            path = root / rel
            path.write_text(
                mutate(path.read_text(encoding="utf-8"), how, at, piece), encoding="utf-8"
            )
        for fmt in ("text", "json"):
            result = CliRunner().invoke(
                cli, ["validate", str(root), "--no-cache", "--format", fmt], catch_exceptions=True
            )
            assert result.exception is None or isinstance(result.exception, SystemExit)
            assert result.exit_code in (0, 1), result.output
            if fmt == "json":
                json.loads(result.output)
