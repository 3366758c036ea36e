"""`catalogc compile [DIR] -o FILE`: the frozen, content-addressed routing bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import click

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
from catalog_compiler.cli.outputs import STDOUT, output_problem, unwritable
from catalog_compiler.compiler import Compiled, compile_catalog
from catalog_compiler.diagnostics import Diagnostic
from catalog_compiler.diagnostics.report.text import plural
from catalog_compiler.load.fsutil import write_atomic
from catalog_compiler.load.sources import protected_files
from runtime.bundle.errors import BundleError
from runtime.bundle.load import Bundle


@click.command(name="compile", epilog=ex.COMPILE)
@click.argument("directory", default=".", type=click.Path(path_type=str))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=str, allow_dash=True),
    default="catalog.bundle.json",
    show_default=True,
    help="Where to write the bundle (atomically: a failed compile leaves it untouched; a "
    "missing directory is created); `-` writes it to standard output. Never a device, FIFO, "
    "directory or a file of the catalog.",
)
@format_option
@click.option("--strict", is_flag=True, help="Warnings fail the compile too.")
@color_option
@cache_options
def compile_(
    directory: str,
    output: str,
    fmt: str,
    strict: bool,
    color: str,
    no_cache: bool,
    cache_dir: Path | None,
) -> None:
    """Compile the catalog in DIRECTORY into a routing bundle.

    Exit status: 0 written, 1 catalog errors (nothing written), 2 usage or I/O errors.
    """
    cache = make_cache(directory, no_cache, cache_dir)
    # One process: resolving needs every typed document here, and shipping them back
    # from forked workers costs more than parsing them (measured: 3.7 s vs 2.7 s at 5,000).
    compiled = compile_catalog(directory, cache=cache, progress=progress_for())
    if cache is not None:
        cache.save()
    result = compiled.validation
    diagnostics = list(compiled.diagnostics)
    if output != STDOUT and result.root is not None:
        protected = protected_files(result.root, result.sources)
        diagnostics += output_problem(Path(output), result.root, protected)
    blocked = result.io_failed or len(diagnostics) > len(compiled.diagnostics)
    failed = blocked or not compiled.ok or (strict and bool(compiled.warnings))
    digest = None
    if not failed:
        digest, problem = _write(compiled, output)
        diagnostics += problem
    stream = sys.stderr if output == STDOUT else None  # stdout is exactly the bundle
    report(diagnostics, result, fmt, color, strict, quiet_ok=True, stream=stream)
    if failed:
        click.echo("nothing written: fix the errors above", err=True)
        sys.exit(EXIT_USAGE if blocked else EXIT_ERRORS)
    if digest is None:
        sys.exit(EXIT_USAGE)
    index = compiled.index
    assert index is not None and compiled.data is not None
    counts = ", ".join(
        plural(len(table), word)
        for table, word in ((index.providers, "provider"), (index.workspaces, "workspace"),
                            (index.configs, "config"))
    )  # fmt: skip
    where = "standard output" if output == STDOUT else output
    click.echo(
        f"compiled {plural(result.document_count, 'document')}: {counts} -> {where} "
        f"({len(compiled.data) / 1024:.1f} KiB, {digest})",
        err=fmt != "text" or output == STDOUT,
    )
    sys.exit(EXIT_OK)


def _write(compiled: Compiled, output: str) -> tuple[str | None, list[Diagnostic]]:
    """The digest of the bundle as written and loaded back, or the diagnostic of a failure."""
    data = compiled.data
    assert data is not None
    try:
        if output == STDOUT:
            digest = Bundle.load(data).digest
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return digest, []
        written = write_atomic(Path(output), data)
        # the self-check: what is on disk loads in the router (read by the name written:
        # `-o /proc/self/fd/1` would reopen the file the rename replaced)
        return Bundle.load(written).digest, []
    except OSError as exc:
        return None, [unwritable(Path(output), exc)]
    except BundleError as exc:  # pragma: no cover - would be a compiler bug
        click.echo(f"catalogc: the written bundle does not load: {exc}", err=True)
        sys.exit(EXIT_USAGE)
