"""What a catalog makes catalogc print cannot drive a terminal or forge output: escape
sequences, newlines and bidi overrides in keys, values and file names reach no report raw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.bundle.canonical import seal
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


# A model name holds no space, and nothing else stopped ESC, BEL or U+202E: explain, diff and
# snippets printed it raw from the catalog (an ESC ]0;…BEL retitled the terminal).
HOSTILE_MODEL = "m\x1b]0;pwned\x07\u202ex"


def test_a_model_name_never_drives_the_terminal_of_the_tools(tmp_path: Path) -> None:
    """The compiler refuses such a name now (E0205, printed printable); a bundle is only
    sealed, so the tools still meet one in a bundle sealed again, and print it printable."""
    old = tmp_path / "old"
    old.mkdir()
    (old / "catalog.yaml").write_text(MINIMAL_ORG)
    (old / "teams.yaml").write_text(
        "kind: Integration\nslug: gpu\nservice: openai-compatible\n"
        "base_url: https://llm.example.com/v1\ncredentials: {api_key: {env: GPU_TOKEN}}\n"
        "---\nkind: Provider\nslug: lab\nintegration: gpu\n---\nkind: Workspace\nslug: team\n"
    )
    new = tmp_path / "new"
    new.mkdir()
    (new / "catalog.yaml").write_text(MINIMAL_ORG)
    custom = (
        "models:\n  custom:\n    - name: PLACEHOLDER\n      pricing: {input: '1', output: '1'}\n"
    )
    text = (old / "teams.yaml").read_text()
    (new / "teams.yaml").write_text(
        text.replace("---\nkind: Provider", custom + "---\nkind: Provider")
    )
    refused = (new / "teams.yaml").read_text().replace("PLACEHOLDER", json.dumps(HOSTILE_MODEL))
    (tmp_path / "refused").mkdir()
    (tmp_path / "refused" / "catalog.yaml").write_text(MINIMAL_ORG)
    (tmp_path / "refused" / "teams.yaml").write_text(refused)
    bundle = tmp_path / "new.bundle.json"
    assert catalogc("compile", new, "-o", bundle).returncode == 0
    body = json.loads(bundle.read_text().replace("PLACEHOLDER", json.dumps(HOSTILE_MODEL)[1:-1]))
    body.pop("digest")
    bundle.write_bytes(seal(body))
    target = f"@lab/{HOSTILE_MODEL}"
    runs = [
        catalogc("validate", tmp_path / "refused"),
        catalogc("explain", bundle, "-w", "team"),
        catalogc("explain", bundle, "-w", "team", "-m", target),
        catalogc("explain", bundle, "-w", "team", "-m", "@lab/m"),  # did you mean …
        catalogc("snippets", target, bundle, "-w", "team", "--lang", "curl"),
        catalogc("snippets", "@lab/m", bundle),
        catalogc("diff", old, bundle),
        catalogc("diff", old, bundle, "--format", "markdown"),
    ]
    assert "E0205" in runs[0].output
    for run in runs:
        assert_sound(run)
        assert "m" in run.output
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in run.output, (run.args, raw)
    assert "@lab/m" in runs[6].output  # the change is still shown
