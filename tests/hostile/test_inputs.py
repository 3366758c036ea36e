"""Files named on the command line are untrusted too: an import source or a bundle to diff
that is a FIFO, a device, oversized or an alias bomb is refused with exit 2, never a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE
from tests.hostile.conftest import assert_sound, catalogc

BOMB = "\n".join(
    [f"{n}: &{n} [{', '.join(['x'] * 10) if n == 'a' else ', '.join([f'*{p}'] * 10)}]"
     for n, p in zip("abcdefg", "aabcdef", strict=True)] + ["model_list: [*g]", ""]
)  # fmt: skip


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "input.fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", ["litellm-prices", "litellm-config"])
@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/null", "/proc/self/environ"])
def test_import_refuses_special_inputs(
    command: str, special: str, fifo: Path, tmp_path: Path
) -> None:
    source = fifo if special == "fifo" else Path(special)
    run = catalogc("import", command, source, "-o", tmp_path / "out", timeout=30)
    assert_sound(run)
    assert run.returncode == 2, run.output
    assert "PATH=" not in run.output  # /proc/self/environ is never echoed
    if special in ("fifo", "/dev/zero"):
        assert "not a regular file" in run.stderr, run.stderr


def test_portkey_import_refuses_a_fifo_in_its_directory(fifo: Path, tmp_path: Path) -> None:
    (fifo.parent / "openai.json").unlink(missing_ok=True)
    fifo.rename(fifo.parent / "openai.json")
    run = catalogc("import", "portkey-prices", fifo.parent, "-o", tmp_path / "out", timeout=30)
    assert_sound(run)
    assert run.returncode == 2 and "not a regular file" in run.stderr, run.output


def test_import_refuses_an_alias_bomb(tmp_path: Path) -> None:
    source = tmp_path / "config.yaml"
    source.write_text(BOMB)
    run = catalogc("import", "litellm-config", source, "-o", tmp_path / "out", timeout=60)
    assert_sound(run)
    assert run.returncode == 2 and "aliases" in run.stderr, run.output


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_diff_refuses_special_bundles(special: str, fifo: Path, tmp_path: Path) -> None:
    source = str(fifo) if special == "fifo" else special
    run = catalogc("diff", source, source, timeout=30)
    assert_sound(run)
    assert run.returncode == 2, run.output


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_docs_refuses_a_special_usage_file(special: str, fifo: Path, tmp_path: Path) -> None:
    """`docs --usage FIFO` hung in open() (a FIFO blocks until a writer comes)."""
    source = str(fifo) if special == "fifo" else special
    run = catalogc("docs", EXAMPLE, "-o", tmp_path / "site", "--usage", source, timeout=30)
    assert_sound(run)
    assert run.returncode == 1 and "not a regular file" in run.stderr, run.output
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("name", ["m\x00x", "m\x1b]0;owned\x07", "m\u202ex", "m\u2028x",
                                  "m\x7fx", "m\x85x", "m\u00a0x"], ids=repr)  # fmt: skip
def test_a_model_name_is_printable(name: str, tmp_path: Path) -> None:
    """Only whitespace was refused: NUL, ESC, bidi controls and line separators reached the
    snippets, reports and terminals of every tool (a review); now E0205 at the name."""
    catalog = tmp_path / "c"
    catalog.mkdir()
    (catalog / "catalog.yaml").write_text("kind: Organization\nversion: 1\nname: N\n")
    escaped = name.encode("unicode_escape").decode()
    (catalog / "i.yaml").write_text(
        "kind: Integration\nslug: local\nservice: openai-compatible\n"
        "base_url: https://llm.example.com/v1\n"
        f'models:\n  custom:\n    - name: "{escaped}"\n      pricing: {{input: 1, output: 1}}\n'
    )
    done = catalogc("validate", str(catalog))
    assert done.returncode == 1 and "E0205" in done.output, done.output
    assert_sound(done)
