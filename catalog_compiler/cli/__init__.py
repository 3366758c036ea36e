"""The `catalogc` command line; click wiring lives only in this package."""

from __future__ import annotations

import click

from catalog_compiler import __version__
from catalog_compiler.cli.schema_cmd import schema
from catalog_compiler.cli.validate_cmd import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="catalogc")
def cli() -> None:
    """Validate a model catalog written as YAML, and compile its routing bundle."""


cli.add_command(validate)
cli.add_command(schema)


def main() -> None:
    cli(prog_name="catalogc")


__all__ = ["cli", "main"]
