"""The gallery's pages: complete (every route of every workspace), deterministic, offline,
escaped, and free of secrets and credential references."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from catalog_compiler.compiler import compile_catalog
from catalog_compiler.diagnostics.redact import ANY_KNOWN
from catalog_compiler.tools.gallery import Site, build_site, render_site
from catalog_compiler.tools.gallery.site import page_name, usd
from runtime.bundle.access import qualified
from runtime.bundle.load import Bundle
from tests.conftest import EXAMPLE, ROOT
from tests.gallery.conftest import Page


def test_pages_are_an_index_and_one_per_provider_and_workspace(
    acme: Bundle, acme_pages: dict[str, str]
) -> None:
    expected = {"index.html"}
    expected |= {f"providers/{p}.html" for p in acme.providers}
    expected |= {f"workspaces/{w}.html" for w in acme.workspaces}
    assert set(acme_pages) == expected
    assert list(acme_pages) == sorted(acme_pages)


def test_every_route_of_every_workspace_is_on_its_page(
    acme: Bundle, acme_pages: dict[str, str]
) -> None:
    for ws in acme.workspaces:
        page = Page(acme_pages[f"workspaces/{ws}.html"])
        shown = [el.attrs["data-target"] for el in page.items()]
        routes = [qualified(p, m) for p, m in acme.routes(ws)]
        assert shown == routes  # all of them, once each, in the router's (sorted) order
        assert page.find("output", id="filter-count")[0].text.strip() == f"{len(routes)} models"
        # each with code for the model string and the provider header
        html = acme_pages[f"workspaces/{ws}.html"]
        for target in routes:
            provider = target[1:].partition("/")[0]
            assert f"# {target}: the model string names the provider and the model." in html
            assert f"# {target}: the provider header `@{provider}` plus the bare model." in html


def test_workspace_rows_show_limits_prices_and_chain(acme_pages: dict[str, str]) -> None:
    html = acme_pages["workspaces/research.html"]
    # the research workspace gets the GPU cluster for free (a workspace price override)
    row = html[html.index('data-target="@llama-local/qwen3-coder-30b"') :]
    row = row[: row.index("</tbody>")]
    assert (
        '<td class="num" data-price="input" title="workspace `research` (workspaces/teams.yaml:10:5)">$0.00</td>'
        in row
    )
    assert '<td class="num">262,144</td>' in row and '<td class="num">16,384</td>' in row
    # the chain of @openai-research in research: organization, integration, provider, workspace
    group = html[html.index('id="provider-openai-research"') :]
    chain = group[group.index('<ol class="chain">') : group.index("</ol>")]
    ids = re.findall(r"<li><code>([^<]+)</code>", chain)
    assert ids == ["organization", "integration/openai-main", "provider/openai-research",
                   "workspace/research"]  # fmt: skip
    effective = group[group.index("Effective limits") : group.index("Counter chain")]
    assert (
        "200 USD a day" in effective
        and "set by provider <code>@openai-research</code>" in effective
    )
    assert "3000 USD a month" in effective  # the provider's cap beats the workspace's 5000


def test_config_form_names_the_config_and_what_selects_its_branch(
    acme_pages: dict[str, str],
) -> None:
    html = acme_pages["workspaces/support.html"]
    row = html[html.index('data-target="@azure-eu/gpt-4o"') :]
    row = row[: row.index("</tbody>")]
    assert "x-portkey-config: eu-router" in row
    assert "x-portkey-metadata: {&#34;region&#34;:&#34;eu&#34;}" in row
    assert (
        "config=&#34;eu-router&#34;" in row and "metadata={&#34;region&#34;: &#34;eu&#34;}" in row
    )
    # a model no config of the workspace reaches says so instead
    other = html[html.index('data-target="@openai-prod/gpt-4o-mini"') :]
    other = other[: other.index("</tbody>")]
    assert "No routing config this workspace may use reaches this model." in other


def test_provider_pages_list_their_models_and_who_may_use_them(
    acme: Bundle, acme_pages: dict[str, str]
) -> None:
    for slug, provider in acme.providers.items():
        page = Page(acme_pages[f"providers/{slug}.html"])
        assert [el.attrs["data-target"] for el in page.items()] == [
            qualified(slug, m) for m in sorted(provider.models)
        ]
    html = acme_pages["providers/azure-eu.html"]
    assert 'href="../workspaces/support.html"' in html and "research.html" not in html


def test_index_lists_organization_providers_models_and_workspaces(
    acme: Bundle, acme_pages: dict[str, str]
) -> None:
    html = acme_pages["index.html"]
    page = Page(html)
    assert "Acme Corp" in page.find("h1")[0].text
    total = sum(len(p.models) for p in acme.providers.values())
    assert len(page.items()) == total
    for slug in acme.providers:
        assert f'href="providers/{slug}.html"' in html
    for slug in acme.workspaces:
        assert f'href="workspaces/{slug}.html"' in html
    assert "50000 USD a month (alert at 80%)" in html


def test_rendering_is_deterministic(acme: Bundle, acme_site: Site, tmp_path: Path) -> None:
    first = render_site(acme_site)
    assert render_site(build_site(acme)) == first
    # the same from the bundle file as from the directory
    compiled = compile_catalog(EXAMPLE)
    assert compiled.data is not None
    bundle_file = tmp_path / "acme.bundle.json"
    bundle_file.write_bytes(compiled.data)
    assert render_site(build_site(Bundle.load(bundle_file))) == first
    for page in first.values():
        assert not re.search(rb"\d{4}-\d\d-\d\dT\d\d:\d\d", page)  # no timestamps


def _render_in_subprocess(out: Path, seed: str) -> dict[str, bytes]:
    code = (
        "import sys; from pathlib import Path;"
        "from catalog_compiler.compiler import compile_catalog;"
        "from catalog_compiler.tools.gallery import build_site, write_site;"
        "write_site(build_site(compile_catalog(sys.argv[1]).index), Path(sys.argv[2]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed, "CATALOGC_NO_CACHE": "1"}
    subprocess.run([sys.executable, "-c", code, str(EXAMPLE), str(out)], check=True, env=env,
                   cwd=ROOT, timeout=120)  # fmt: skip
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.html"))}


def test_identical_bytes_whatever_the_hash_seed(tmp_path: Path) -> None:
    one = _render_in_subprocess(tmp_path / "one", "1")
    two = _render_in_subprocess(tmp_path / "two", "2")
    assert one == two and len(one) == 10


def test_no_secrets_or_credential_references_leak(acme: Bundle, acme_pages: dict[str, str]) -> None:
    forbidden = set()
    for integ in acme.integrations.values():
        for ref in integ.credentials.values():
            name = ref.partition(":")[2]
            forbidden |= {ref, name}
    for ws in acme.workspaces.values():
        for key in ws.api_keys:
            forbidden.add(str(key["sha256"]))
    assert "ACME_OPENAI_API_KEY" in forbidden and "/run/secrets/anthropic_api_key" in forbidden
    for path, html in acme_pages.items():
        for secret in forbidden:
            assert secret not in html, (path, secret)
        assert ANY_KNOWN.search(html) is None, path
    # the API key is only ever an obviously fake placeholder
    assert "$CATALOG_API_KEY" in acme_pages["workspaces/support.html"]


def test_pages_are_offline(acme_pages: dict[str, str]) -> None:
    """No CDN, fonts, or scripts from elsewhere: every link is relative or a data: URI."""
    for path, html in acme_pages.items():
        page = Page(html)
        for el in page.elements:
            for attr in ("src", "href", "action", "srcset", "poster", "data"):
                value = el.attrs.get(attr)
                if value is None:
                    continue
                assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:|//)", value) or value == "data:,", (
                    path, el.tag, attr, value
                )  # fmt: skip
        assert len(page.find("script")) == 1 and "src" not in page.find("script")[0].attrs
        assert not page.find("link", rel="stylesheet") and "@import" not in html
        assert "url(" not in html.split("</style>")[0]


def test_relative_links_point_at_pages_that_exist(acme_pages: dict[str, str]) -> None:
    for path, html in acme_pages.items():
        base = Path(path).parent
        for el in Page(html).with_attr("href"):
            href = el.attrs["href"] or ""
            if href.startswith("data:") or href.startswith("#"):
                continue
            target = os.path.normpath(base / href.split("#")[0])
            assert target in acme_pages, (path, href)


EVIL = {
    "catalog.yaml": """\
        kind: Organization
        version: 1
        name: 'Evil <script>alert("org")</script> & Co'
        """,
    "lab.yaml": """\
        kind: Integration
        slug: lab
        service: openai-compatible
        base_url: https://llm.example/v1
        credentials:
          api_key: {env: LAB_SECRET_TOKEN_NAME}
        models:
          custom:
            - name: 'm<img/src=x/onerror=alert(1)>&"q"'
              context_window: 1000
              max_output_tokens: 100
              pricing: {input: "1", output: "2"}
        ---
        kind: Provider
        slug: lab
        integration: lab
        ---
        kind: Workspace
        slug: team
        """,
}


def test_everything_from_the_catalog_is_escaped(make_catalog: Callable[..., Path]) -> None:
    root = make_catalog(EVIL, org=None)
    compiled = compile_catalog(root)
    assert compiled.index is not None and compiled.ok, compiled.diagnostics
    pages = {k: v.decode() for k, v in render_site(build_site(compiled.index)).items()}
    model = 'm<img/src=x/onerror=alert(1)>&"q"'
    for path, html in pages.items():
        page = Page(html)
        assert len(page.find("script")) == 1, path
        assert not page.find("img"), path
        assert "<script>alert" not in html and "<img" not in html
        assert "LAB_SECRET_TOKEN_NAME" not in html
        assert "Evil &lt;script&gt;alert(&#34;org&#34;)&lt;/script&gt; &amp; Co" in html
    team = Page(pages["workspaces/team.html"])
    assert [el.attrs["data-target"] for el in team.items()] == [f"@lab/{model}"]


def test_small_helpers() -> None:
    from decimal import Decimal

    assert [usd(Decimal(x)) for x in ("2.5", "10", "0.075", "0", "1E+1")] == [
        "$2.50", "$10.00", "$0.075", "$0.00", "$10.00"]  # fmt: skip
    assert usd(None) is None
    assert page_name("support") == "support"
    assert page_name("../etc").startswith("x-") and "/" not in page_name("../etc")
