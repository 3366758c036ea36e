"""`catalogc init [DIR]`: a small working catalog to start from."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from catalog_compiler.cli import examples as ex
from catalog_compiler.cli.options import EXIT_OK, EXIT_USAGE
from catalog_compiler.load.fsutil import check_output_dir, error_text
from catalog_compiler.tools.scaffold import ScaffoldError, scaffold


@click.command(epilog=ex.INIT)
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="My Organization", show_default=True, help="Organization name.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(directory: Path, name: str, force: bool) -> None:
    """Create a commented starter catalog in DIRECTORY (validates and compiles clean)."""
    try:
        check_output_dir(directory)
        written = scaffold(directory, name, force)  # each file through the shared guard
    except ScaffoldError as exc:
        click.echo(f"catalogc: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as exc:
        click.echo(f"catalogc: {error_text(exc)}", err=True)
        sys.exit(EXIT_USAGE)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: catalogc validate {directory} && catalogc compile {directory}")
    sys.exit(EXIT_OK)
