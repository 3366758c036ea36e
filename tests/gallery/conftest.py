"""Fixtures of the gallery tests: the example catalog compiled once, its site rendered once."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from catalog_compiler.compiler import compile_catalog
from catalog_compiler.tools.gallery import Site, build_site, render_site, write_site
from runtime.bundle.load import Bundle
from tests.conftest import EXAMPLE


@pytest.fixture(scope="session")
def acme() -> Bundle:
    compiled = compile_catalog(EXAMPLE)
    assert compiled.index is not None and compiled.ok, compiled.diagnostics
    return compiled.index


@pytest.fixture(scope="session")
def acme_site(acme: Bundle) -> Site:
    return build_site(acme)


@pytest.fixture(scope="session")
def acme_pages(acme_site: Site) -> dict[str, str]:
    return {path: data.decode("utf-8") for path, data in render_site(acme_site).items()}


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory: pytest.TempPathFactory, acme_site: Site) -> Path:
    out = tmp_path_factory.mktemp("site")
    write_site(acme_site, out)
    return out


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.text = ""

    def has(self, name: str) -> bool:
        return name in self.attrs


class Page(HTMLParser):
    """Every element with its attributes, and the text of <output>, <title>, <code>."""

    TEXT_TAGS = ("output", "title", "code", "h1")

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, dict(attrs))
        self.elements.append(el)
        if tag in self.TEXT_TAGS:
            self._open.append(el)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1].tag == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for el in self._open:
            el.text += data

    def find(self, tag: str | None = None, **attrs: str) -> list[Element]:
        out = []
        for el in self.elements:
            if tag is not None and el.tag != tag:
                continue
            if all(el.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append(el)
        return out

    def with_attr(self, name: str) -> list[Element]:
        return [el for el in self.elements if name in el.attrs]

    def items(self) -> list[Element]:
        """The rows the filter box narrows."""
        return self.with_attr("data-filter-item")
