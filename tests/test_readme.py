"""The README's commands and runtime example work as written."""

from __future__ import annotations

import re
import signal
import subprocess
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


def quick_start() -> list[str]:
    section = README.split("## The gateway in one minute (offline)", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block is not None
    return [ln for ln in block.group(1).splitlines() if ln and not ln.startswith("#")]


def test_readme_gateway_quick_start_works_verbatim() -> None:
    """The quick start, line by line as a shell would run it (the install is CI's own)."""
    install, serve, demo, stop = quick_start()
    assert install == "python3 -m pip install -e '.[gateway]' openai"
    assert serve.endswith(" &") and stop == "kill %1"
    server = subprocess.Popen(["bash", "-c", f"exec {serve.removesuffix(' &')}"], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        listening = ""
        assert server.stderr is not None
        for line in server.stderr:
            if '"listening"' in line:
                listening = line
                break
        assert listening, "the gateway did not start"
        done = subprocess.run(["bash", "-c", demo], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        forms = ["model: @provider/model", "x-portkey-provider", "x-portkey-config: slug",
                 "x-portkey-config: inline", "workspace default_config"]  # fmt: skip
        for form, line in zip(forms, lines, strict=False):
            assert line.startswith(form) and "'echo: hello from the quick start'" in line
            assert re.search(r"via @mock-fast, cost \$0\.\d+$", line), line
        assert re.search(r"429 rate limited by workspace `demo`.*\(Retry-After: \d+ s\)",
                         lines[-1])  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
