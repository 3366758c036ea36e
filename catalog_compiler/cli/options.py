"""Options shared by several commands, and the exit-code policy."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import click

from catalog_compiler.cache import ParseCache, default_cache_dir
from catalog_compiler.pipeline import Result
from catalog_compiler.progress import NullProgress, Progress, TerminalProgress

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2

F = Callable[..., Any]


def use_color(choice: str, stream: TextIO) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


def color_option(f: F) -> F:
    return click.option(
        "--color",
        type=click.Choice(["auto", "always", "never"]),
        default="auto",
        show_default=True,
        help="Colour text output (auto: only on a terminal and without NO_COLOR).",
    )(f)


def cache_options(f: F) -> F:
    f = click.option("--no-cache", is_flag=True, help="Parse every file afresh.")(f)
    f = click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where parsed files are cached (default: $XDG_CACHE_HOME/catalogc).",
    )(f)
    return f


def make_cache(root: str, no_cache: bool, cache_dir: Path | None) -> ParseCache | None:
    if no_cache or os.environ.get("CATALOGC_NO_CACHE"):
        return None
    path = Path(root)
    if path.name == "catalog.yaml":
        path = path.parent
    return ParseCache(cache_dir or default_cache_dir(), path)


def progress_for(stream: TextIO = sys.stderr) -> Progress:
    return TerminalProgress(stream) if stream.isatty() else NullProgress()


def exit_code(result: Result, strict: bool) -> int:
    if result.io_failed:
        return EXIT_USAGE
    if result.errors or (strict and result.warnings):
        return EXIT_ERRORS
    return EXIT_OK
