"""A workspace's page lists the aliases it may use, with their targets."""

from __future__ import annotations

from pathlib import Path

from catalog_compiler.compiler import compile_catalog
from catalog_compiler.tools.gallery import build_site, render_site
from tests.cli.test_aliases_cli import catalog


def test_a_workspace_page_lists_its_usable_aliases(tmp_path: Path) -> None:
    compiled = compile_catalog(catalog(tmp_path / "c"))
    assert compiled.index is not None and compiled.ok, compiled.diagnostics
    pages = {p: d.decode("utf-8") for p, d in render_site(build_site(compiled.index)).items()}
    research = pages["workspaces/research.html"]
    assert "<h2>Aliases</h2>" in research
    assert "<code>fast</code> &rarr; <code>@openai-prod/gpt-4.1</code>" in research
    assert "<code>smart</code> &rarr; <code>{config: two-step}</code>" in research
    # support may use neither target (a denied model, a config not offered): none listed
    assert "<h2>Aliases</h2>" not in pages["workspaces/support.html"]
