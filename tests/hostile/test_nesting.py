"""Fast rejection (issue 9, item 12): pathological nesting and document counts are refused with
a located diagnostic, in a real process bounded by a generous timeout (no timed asserts: the
speed itself is measured by benchmarks/bench_hostile_yaml.py).

libyaml's scanner costs O(flow depth) per token, so 160 KB of `[` used to take ~40 s; the
parser now stops at the first collection deeper than 64 levels. Probes: 9 nesting shapes,
2 document floods, 1 refusal that must not hide the next file's errors, 1 diagnostic flood
(13); the in-process law over any mix of openers is in tests/compiler/test_yamlparse.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.conftest import assert_sound, catalogc

ORG = "kind: Organization\nversion: 1\nname: Probe Org\n"
KB160 = 160 * 1024
TIMEOUT = 10  # seconds: a generous bound for a refusal that takes milliseconds in-process


def _block_mappings(depth: int) -> str:
    return "".join(" " * i + f"k{i}:\n" for i in range(depth)) + " " * depth + "v\n"


# name -> (text, where E0108 is reported: line:column of the 65th collection)
NESTING: dict[str, tuple[str, str]] = {
    "[": ("[" * KB160, "1:65"),
    "{": ("{" * KB160, "1:65"),
    "[{ mixed": ("[{" * (KB160 // 2), "1:65"),
    "[ one per line": ("[\n" * (KB160 // 2), "65:1"),
    "k: { chains": ("k: {" * (KB160 // 4), "1:256"),
    "- block sequence on one line": ("- " * (KB160 // 2) + "x\n", "1:129"),
    "block mappings, 560 deep": (_block_mappings(560), "65:65"),
    "? [ explicit keys": ("? [" * (KB160 // 3), "1:97"),
    "[a, [ with items": ("[a, " * (KB160 // 4), "1:257"),
}


def probe_catalog(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "catalog"
    root.mkdir()
    (root / "catalog.yaml").write_text(ORG)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("name", list(NESTING))
def test_pathological_nesting_is_refused_at_once(tmp_path: Path, name: str) -> None:
    text, where = NESTING[name]
    root = probe_catalog(tmp_path, {"deep.yaml": text})
    run = catalogc("validate", root, timeout=TIMEOUT)
    assert_sound(run)
    assert run.returncode == 1
    assert f"deep.yaml:{where}: error[E0108]" in run.stdout, run.stdout[:2000]
    assert len(run.output) < 50_000  # a refusal, not an echo of the input


FLOODS = {
    "2M empty documents (8 MB of ---)": lambda: "---\n" * (2 * 1024 * 1024 - 1),
    "100k tiny documents": lambda: "".join(
        f"---\nkind: Workspace\nslug: w{i}\n" for i in range(100_000)
    ),
}


@pytest.mark.parametrize("name", list(FLOODS))
def test_a_flood_of_documents_is_refused_at_the_limit(tmp_path: Path, name: str) -> None:
    root = probe_catalog(tmp_path, {"flood.yaml": FLOODS[name]()})
    run = catalogc("validate", root, timeout=TIMEOUT)
    assert_sound(run)
    assert run.returncode == 1
    assert "error[E0109]" in run.stdout and "flood.yaml:" in run.stdout
    assert run.stdout.count("error[") == 1


def test_a_refused_file_does_not_hide_the_next_files_errors(tmp_path: Path) -> None:
    root = probe_catalog(
        tmp_path,
        {"a-deep.yaml": "[" * KB160, "b-typo.yaml": "kind: Workspace\nslug: b\nconcurency: 1\n"},
    )
    run = catalogc("validate", root, "--format", "json", timeout=TIMEOUT)
    assert_sound(run)
    assert run.returncode == 1
    assert '"E0108"' in run.stdout and '"E0202"' in run.stdout


def test_a_flood_of_one_diagnostic_is_summarised(tmp_path: Path) -> None:
    """20,000 duplicate keys print the first 100 and one line counting the rest."""
    text = "kind: Workspace\nslug: s\nname: n\n" + "d: 1\n" * 20_001
    root = probe_catalog(tmp_path, {"flood.yaml": text})
    run = catalogc("validate", root, timeout=60)
    assert_sound(run)
    assert run.returncode == 1
    assert run.stdout.count("error[E0101]") == 101
    assert "19,900 more E0101 in this file" in run.stdout
    assert len(run.output) < 100_000
