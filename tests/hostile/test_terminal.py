"""What a catalog makes catalogc print cannot drive a terminal or forge output: escape
sequences, newlines and bidi overrides in keys, values and file names reach no report raw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import MINIMAL_ORG
from tests.hostile.conftest import assert_sound, catalogc

HOSTILE_KEY = "x\x1b[2J\x1b]0;pwned\x07\u202e\nerror[E9999]: forged"


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_control_characters_never_reach_a_report(fmt: str, tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    root.mkdir()
    (root / "catalog.yaml").write_text(MINIMAL_ORG)
    key = json.dumps(HOSTILE_KEY)  # a quoted YAML key holding the raw characters
    (root / "workspace.yaml").write_text(f"kind: Workspace\nslug: team\n{key}: 1\n")
    (root / "odd\x1b[31mname.yaml").write_text(f"kind: Workspace\nslug: other\n{key}: 2\n")
    run = catalogc("validate", root, "--format", fmt)
    assert_sound(run)
    assert run.returncode == 1, run.output
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in run.output, (fmt, raw)
    forged = [ln for ln in run.output.splitlines() if ln.lstrip().startswith("error[E9999]")]
    assert not forged, forged  # the key's newline did not start a line of its own
    assert "E0202" in run.output
