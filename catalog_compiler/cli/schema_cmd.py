"""`catalogc schema`: print or write the JSON Schemas editors and other tools use."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from catalog_compiler.cli import examples as ex
from catalog_compiler.cli.options import EXIT_USAGE
from catalog_compiler.load.fsutil import check_output_dir, error_text, write_atomic

# Names only: the generator imports every model, so it loads when the command runs.
SCHEMA_NAMES = ("bundle.schema.json", "catalog.schema.json", "routing-config.schema.json")


@click.command(epilog=ex.SCHEMA)
@click.argument("name", required=False, type=click.Choice(SCHEMA_NAMES))
@click.option(
    "--write",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write every schema into this directory instead of printing.",
)
def schema(name: str | None, out_dir: Path | None) -> None:
    """Print the JSON Schema NAME, or write them all with --write DIR."""
    from catalog_compiler.emit.schemas import SCHEMAS, render

    if out_dir is not None:
        try:
            check_output_dir(out_dir)
            for each in sorted(SCHEMAS):
                write_atomic(out_dir / each, render(each).encode())
                click.echo(f"wrote {out_dir / each}")
        except OSError as exc:
            click.echo(f"catalogc: {error_text(exc)}", err=True)
            sys.exit(EXIT_USAGE)
        return
    if name is None:
        click.echo("\n".join(sorted(SCHEMAS)))
        return
    sys.stdout.write(render(name))
