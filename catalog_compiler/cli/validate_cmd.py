"""`catalogc validate [DIR]`: every problem of the catalog, located, in one run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from catalog_compiler.cli.options import (
    F,
    cache_options,
    color_option,
    exit_code,
    make_cache,
    progress_for,
    use_color,
)
from catalog_compiler.pipeline import Result
from catalog_compiler.pipeline import validate as run_validate
from catalog_compiler.report import REPORTER_BY_NAME
from catalog_compiler.report.base import Summary


def format_option(f: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(sorted(REPORTER_BY_NAME)),
        default="text",
        show_default=True,
        help="How to print diagnostics.",
    )(f)


def report(result: Result, fmt: str, color: str, strict: bool) -> None:
    stream = sys.stdout
    reporter = REPORTER_BY_NAME[fmt](stream, color=use_color(color, stream))
    reporter.report(
        result.diagnostics,
        Summary(files=len(result.sources), documents=result.document_count, strict=strict),
    )


def run_checked(directory: str, no_cache: bool, cache_dir: Path | None) -> Result:
    cache = make_cache(directory, no_cache, cache_dir)
    result = run_validate(directory, cache=cache, progress=progress_for(), jobs=os.cpu_count() or 1)
    if cache is not None:
        cache.save()
    return result


@click.command()
@click.argument("directory", default=".", type=click.Path(path_type=str))
@format_option
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@color_option
@cache_options
def validate(
    directory: str, fmt: str, strict: bool, color: str, no_cache: bool, cache_dir: Path | None
) -> None:
    """Check the catalog in DIRECTORY and report every problem.

    Exit status: 0 valid (warnings allowed), 1 catalog errors, 2 usage or I/O errors.
    """
    result = run_checked(directory, no_cache, cache_dir)
    report(result, fmt, color, strict)
    sys.exit(exit_code(result, strict))
