"""The gallery in a real browser: headless Chromium (Debian package `chromium`) loads the
pages from a real HTTP server on 127.0.0.1, runs the filter script, and takes a screenshot.

Chromium is driven from its command line: `--dump-dom` prints the DOM after the page's
scripts ran, `--screenshot` writes a PNG. The filter box reads `?q=`, so loading a page with
`?q=...` is the same as typing it. Every host but 127.0.0.1 resolves to nothing, so a page
needing the network would show it. Without chromium the tests skip, and fail in CI
(`CATALOGC_CI` set).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from runtime.bundle.access import qualified
from runtime.bundle.load import Bundle
from tests.gallery.conftest import Page

BROWSERS = ("chromium", "chromium-browser")


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    message = "headless Chromium is not installed (Debian package `chromium`)"
    if os.environ.get("CATALOGC_CI"):
        pytest.fail(f"{message}: CI must install it")
    pytest.skip(message)


class _Quiet(SimpleHTTPRequestHandler):
    requested: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        self.requested.append(self.path)


@pytest.fixture(scope="module")
def served(site_dir: Path) -> Iterator[tuple[str, list[str]]]:
    """The site on a free port of 127.0.0.1, and the log of what was requested (path, status)."""
    requested: list[str] = []
    handler = type("Handler", (_Quiet,), {"requested": requested})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def browse(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions", "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def dump(chromium: str, tmp_path: Path, url: str) -> Page:
    done = browse(chromium, tmp_path / "profile", "--dump-dom", url)
    assert "<body" in done.stdout, done.stdout[:500]
    return Page(done.stdout)


def only_pages_requested(requested: list[str], site_dir: Path) -> None:
    """Everything the browser asked the server for was a page of the site (no favicon
    404s, no assets), and nothing else was reachable."""
    assert requested
    for path in requested:
        assert (site_dir / path.split("?")[0].lstrip("/")).is_file(), path


def visible_targets(page: Page) -> list[str]:
    return [str(el.attrs["data-target"]) for el in page.items() if not el.has("hidden")]


def test_workspace_page_loads_with_every_model_visible(
    chromium: str, served: tuple[str, list[str]], tmp_path: Path, acme: Bundle, site_dir: Path
) -> None:
    base, requested = served
    page = dump(chromium, tmp_path, f"{base}/workspaces/support.html")
    routes = [qualified(p, m) for p, m in acme.routes("support")]
    assert visible_targets(page) == routes
    count = page.find("output", id="filter-count")[0].text
    assert count == f"{len(routes)} of {len(routes)} models"  # the script ran
    assert not [g for g in page.with_attr("data-filter-group") if g.has("hidden")]
    assert "/workspaces/support.html" in requested
    only_pages_requested(requested, site_dir)


def test_filter_narrows_the_models_as_typed(
    chromium: str, served: tuple[str, list[str]], tmp_path: Path, acme: Bundle
) -> None:
    base, _ = served
    page = dump(chromium, tmp_path, f"{base}/workspaces/support.html?q={quote('sonnet anthropic')}")
    routes = [qualified(p, m) for p, m in acme.routes("support")]
    expected = [t for t in routes if "sonnet" in t and "anthropic" in t]
    assert expected and len(expected) < len(routes)
    assert visible_targets(page) == expected
    hidden = [str(el.attrs["data-target"]) for el in page.items() if el.has("hidden")]
    assert sorted(hidden) == sorted(set(routes) - set(expected))
    assert (
        page.find("output", id="filter-count")[0].text == f"{len(expected)} of {len(routes)} models"
    )
    # providers with nothing left are hidden as a whole
    groups = {str(g.attrs["id"]): g.has("hidden") for g in page.with_attr("data-filter-group")}
    assert groups == {"provider-anthropic-prod": False, "provider-azure-eu": True,
                      "provider-openai-prod": True}  # fmt: skip


def test_filter_with_no_match_hides_everything(
    chromium: str, served: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, _ = served
    page = dump(chromium, tmp_path, f"{base}/index.html?q=no-such-model-anywhere")
    assert page.items() and visible_targets(page) == []
    assert page.find("output", id="filter-count")[0].text.startswith("0 of ")


def test_index_and_provider_pages_load(
    chromium: str, served: tuple[str, list[str]], tmp_path: Path, acme: Bundle
) -> None:
    base, _ = served
    index = dump(chromium, tmp_path, f"{base}/index.html?q=embedding")
    shown = visible_targets(index)
    assert shown and all("embedding" in t for t in shown)
    provider = dump(chromium, tmp_path, f"{base}/providers/llama-local.html")
    assert visible_targets(provider) == [qualified("llama-local", m)
                                         for m in sorted(acme.providers["llama-local"].models)]  # fmt: skip


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_screenshot(
    chromium: str, served: tuple[str, list[str]], tmp_path: Path, site_dir: Path
) -> None:
    base, requested = served
    shot = tmp_path / "support.png"
    browse(chromium, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,900",
           f"{base}/workspaces/support.html")  # fmt: skip
    data = shot.read_bytes()
    assert len(data) > 10_000  # a rendered page, not a blank one
    assert png_size(data) == (1280, 900)
    only_pages_requested(requested, site_dir)
