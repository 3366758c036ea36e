"""Options shared by several commands, and the exit-code policy."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import click

from catalog_compiler.check.cache import ParseCache, default_cache_dir
from catalog_compiler.diagnostics import Diagnostic
from catalog_compiler.diagnostics.progress import NullProgress, Progress, TerminalProgress
from catalog_compiler.diagnostics.report import REPORTER_BY_NAME
from catalog_compiler.diagnostics.report.base import Summary
from catalog_compiler.pipeline import Result

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2

F = Callable[..., Any]


def plain_terminal() -> bool:
    """No escape sequences: NO_COLOR is set (no-color.org), or the terminal says it cannot
    show them (TERM=dumb, as in Emacs shells and some CI logs)."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def use_color(choice: str, stream: TextIO) -> bool:
    if choice == "always":
        return True
    if choice == "never" or plain_terminal():
        return False
    return stream.isatty()


def color_option(f: F) -> F:
    return click.option(
        "--color",
        type=click.Choice(["auto", "always", "never"]),
        default="auto",
        show_default=True,
        help="Colour text output (auto: only on a terminal, without NO_COLOR or TERM=dumb).",
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
    """A progress bar redraws its line with escapes: only on a terminal that shows them."""
    return TerminalProgress(stream) if stream.isatty() and not plain_terminal() else NullProgress()


def format_option(f: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(sorted(REPORTER_BY_NAME)),
        default="text",
        show_default=True,
        help="How to print diagnostics.",
    )(f)


def report(
    diagnostics: list[Diagnostic],
    result: Result,
    fmt: str,
    color: str,
    strict: bool,
    quiet_ok: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Print diagnostics in `fmt` (to stdout unless `stream`); `quiet_ok` drops the text
    summary when there is nothing."""
    stream = stream or sys.stdout
    if quiet_ok and fmt == "text" and not diagnostics:
        return
    reporter = REPORTER_BY_NAME[fmt](stream, color=use_color(color, stream))
    reporter.report(
        diagnostics,
        Summary(
            files=len(result.sources),
            documents=result.document_count,
            strict=strict,
            sources={s.display: s.raw for s in result.sources},
        ),
    )


def store_url(value: str) -> str:
    """`--redis`: a URL, or `env:NAME` / `file:PATH` holding it, which keeps a password out
    of the process list (as `catalogc serve` and the gateway take it)."""
    if not value.startswith(("env:", "file:")):
        return value
    from runtime.gateway.secrets import read_reference

    try:
        return read_reference(value)
    except LookupError as exc:
        raise click.BadParameter(f"cannot read {value}: {exc}", param_hint="--redis") from None
