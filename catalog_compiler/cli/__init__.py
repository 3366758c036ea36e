"""The `catalogc` command line; click wiring lives only in this package."""

from __future__ import annotations

import gc
import os
import sys

import click

from catalog_compiler import __version__
from catalog_compiler.cli.compile_cmd import compile_
from catalog_compiler.cli.diff_cmd import diff
from catalog_compiler.cli.docs_cmd import docs, snippets_cmd
from catalog_compiler.cli.explain_cmd import explain
from catalog_compiler.cli.import_cmd import import_
from catalog_compiler.cli.init_cmd import init
from catalog_compiler.cli.schema_cmd import schema
from catalog_compiler.cli.validate_cmd import validate
from catalog_compiler.redact import mask

EXIT_INTERNAL = 3


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="catalogc")
def cli() -> None:
    """Validate a model catalog written as YAML, and compile its routing bundle."""


cli.add_command(init)
cli.add_command(validate)
cli.add_command(compile_)
cli.add_command(explain)
cli.add_command(diff)
cli.add_command(docs)
cli.add_command(snippets_cmd)
cli.add_command(import_)
cli.add_command(schema)


def main() -> None:
    # A short-lived process that allocates many small objects and few cycles: the cyclic
    # collector only costs time here (it triples the cost of loading the cache).
    gc.disable()
    try:
        cli(prog_name="catalogc")
    except Exception as exc:  # a bug: say so plainly; the traceback only on request
        if os.environ.get("CATALOGC_DEBUG"):
            raise
        click.echo(
            f"catalogc: internal error ({type(exc).__name__}): {mask(str(exc))[:300]}\n"
            "This is a bug in catalogc, not in your catalog. Re-run with CATALOGC_DEBUG=1 "
            "for the traceback and report it.",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


__all__ = ["cli", "main"]
