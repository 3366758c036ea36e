"""The model gallery: a static, offline site of the models each workspace may use, with
prices, limits and ready-to-use code (`catalogc docs`), and the code alone (`catalogc
snippets`)."""

from catalog_compiler.tools.gallery.site import build_site, render_site, write_site
from catalog_compiler.tools.gallery.snippets import Gateway, Request, Snippet, snippets
from catalog_compiler.tools.gallery.views import Site

__all__ = [
    "Gateway",
    "Request",
    "Site",
    "Snippet",
    "build_site",
    "render_site",
    "snippets",
    "write_site",
]
