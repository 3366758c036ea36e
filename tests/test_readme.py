"""The README's commands and runtime example work as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from catalog_compiler.compiler import compile_catalog
from tests.conftest import EXAMPLE, ROOT

README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    block = re.search(r"```console\n(.*?)```", README, re.S)
    assert block is not None
    commands = [ln for ln in block.group(1).splitlines() if ln and not ln.startswith("#")]
    assert commands[0].startswith("python3 -m pip install -e . && catalogc compile examples/acme")
    assert commands[1] == "python3 -m pip install -e '.[test]' && python3 -m pytest"
    assert "python3 -m pytest" in (ROOT / ".ci" / "run").read_text()


def test_runtime_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    compiled = compile_catalog(EXAMPLE)
    assert compiled.data is not None
    (tmp_path / "acme.bundle.json").write_bytes(compiled.data)
    monkeypatch.chdir(tmp_path)
    example = next(
        b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "Router.load" in b
    )
    exec(compile(example, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "conditional eu @azure-eu/gpt-4o https://acme-weu.openai.azure.com/openai"
    assert out[1].startswith("403 workspace `data-science` may not use `@openai-research/o4-mini`")
