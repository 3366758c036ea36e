"""`catalogc validate [DIR]`: every problem of the catalog, located, in one run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from catalog_compiler.check.parallel import WarmWorker
from catalog_compiler.cli import examples as ex
from catalog_compiler.cli.options import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    cache_options,
    color_option,
    format_option,
    make_cache,
    progress_for,
    report,
)
from catalog_compiler.diagnostics import Diagnostic, Severity
from catalog_compiler.pipeline import Result
from catalog_compiler.pipeline import validate as run_validate
from catalog_compiler.registry import builtin


def check(directory: str, fast: bool, cache_dir: Path | None, no_cache: bool) -> tuple[
    Result, list[Diagnostic]
]:  # fmt: skip
    if fast:
        registry = builtin()
        warm = WarmWorker(registry)  # imports the checkers while the cache loads
        try:
            cache = make_cache(directory, no_cache, cache_dir)
            result = run_validate(
                directory,
                cache=cache,
                registry=registry,
                progress=progress_for(),
                jobs=os.cpu_count() or 1,
                warm=warm,
            )
        finally:
            warm.stop()
        diagnostics = result.diagnostics
    else:
        from catalog_compiler.compiler import compile_catalog  # only without --fast: heavy

        cache = make_cache(directory, no_cache, cache_dir)
        compiled = compile_catalog(directory, cache=cache, progress=progress_for())
        result, diagnostics = compiled.validation, compiled.diagnostics
    if cache is not None:
        cache.save()
    return result, diagnostics


@click.command(epilog=ex.VALIDATE)
@click.argument("directory", default=".", type=click.Path(path_type=str))
@format_option
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@click.option(
    "--fast",
    is_flag=True,
    help="Only the per-file and reference checks, from the content-hash cache: what an "
    "editor or a pre-commit loop needs. Without it, every check runs, as `compile` does.",
)
@color_option
@cache_options
def validate(
    directory: str,
    fmt: str,
    strict: bool,
    fast: bool,
    color: str,
    no_cache: bool,
    cache_dir: Path | None,
) -> None:
    """Check the catalog in DIRECTORY and report every problem.

    Exit status: 0 valid (warnings allowed), 1 catalog errors, 2 usage or I/O errors.
    """
    result, diagnostics = check(directory, fast, cache_dir, no_cache)
    report(diagnostics, result, fmt, color, strict)
    if result.io_failed:
        sys.exit(EXIT_USAGE)
    errors = any(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) > 0 and not errors
    sys.exit(EXIT_ERRORS if errors or (strict and warnings) else EXIT_OK)
