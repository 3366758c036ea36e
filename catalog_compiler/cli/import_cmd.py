"""`catalogc import …`: start a catalog from LiteLLM's or Portkey's prices, or from a
LiteLLM proxy config. Each writes a catalog directory that validates on its own, prints
what it converted and skipped, and writes the same report to OUT/IMPORT-REPORT.md."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from catalog_compiler.cli import examples as ex
from catalog_compiler.cli.options import EXIT_USAGE
from catalog_compiler.load.fsutil import FileId
from catalog_compiler.tools.importers import InputError, parse_selection
from catalog_compiler.tools.importers.emit import (
    REPORT_FILE,
    OutputError,
    Report,
    finish,
    prepare_output,
)

Build = Callable[[], tuple[dict[str, str], Report]]

_out_option = click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The catalog directory to write (new or empty).",
)
_force_option = click.option(
    "--force", is_flag=True, help="Write into a non-empty OUT, overwriting the generated files."
)
_integration_option = click.option(
    "--integration",
    "integrations",
    multiple=True,
    metavar="SERVICE[=SLUG]",
    help="Import only this service's models (repeatable); `=SLUG` names the integration "
    "they live on (default: the service id, e.g. `--integration openai=openai-main`).",
)


@click.group(name="import", epilog=ex.IMPORT)
def import_() -> None:
    """Start a catalog from another gateway's prices or configuration."""


@import_.command(name="litellm-prices", epilog=ex.IMPORT_LITELLM_PRICES)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_out_option
@_integration_option
@_force_option
def litellm_prices(file: Path, out: Path, integrations: tuple[str, ...], force: bool) -> None:
    """Model documents from LiteLLM's price map (model_prices_and_context_window.json).

    USD per token becomes USD per 1M tokens, exactly. Entries that cannot be converted
    (other providers, images, per-second prices, …) are listed with the reason."""
    from catalog_compiler.tools.importers import litellm_prices as importer

    _run(lambda: importer.run(file, parse_selection(integrations)), out, force, file)


@import_.command(name="portkey-prices", epilog=ex.IMPORT_PORTKEY_PRICES)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@_out_option
@_integration_option
@_force_option
def portkey_prices(directory: Path, out: Path, integrations: tuple[str, ...], force: bool) -> None:
    """Model documents from Portkey's pricing tables (a directory of <provider>.json).

    US cents per token becomes USD per 1M tokens, exactly."""
    from catalog_compiler.tools.importers import portkey_prices as importer

    _run(lambda: importer.run(directory, parse_selection(integrations)), out, force, directory)


@import_.command(name="litellm-config", epilog=ex.IMPORT_LITELLM_CONFIG)
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_out_option
@_force_option
def litellm_config(config: Path, out: Path, force: bool) -> None:
    """A starting catalog from a LiteLLM proxy config (config.yaml).

    Deployments become providers (with their rate limits and budgets) on integrations
    holding secret references only; what has no place in the catalog is reported."""
    from catalog_compiler.tools.importers import litellm_config as importer

    _run(lambda: importer.run(config), out, force, config)


def _run(build: Build, out: Path, force: bool, source: Path) -> None:
    from catalog_compiler.tools.importers.reach import reach_warnings

    try:
        files, report = build()
        prepare_output(out, force)
        protected = input_files(source)  # --force never replaces the input
        finish(out, files, report, protected)
        warnings = reach_warnings(out)
        if warnings:  # the report lists them too
            report.notes.extend(f"**warning**: {w}" for w in warnings)
            finish(out, files, report, protected)
    except (InputError, OutputError) as exc:
        click.echo(f"catalogc import: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    for warning in warnings:
        click.echo(f"catalogc import: warning: {warning}", err=True)
    click.echo("\n".join(report.summary()))
    click.echo(f"wrote {len(files)} catalog files and {REPORT_FILE} to {out}")
    click.echo(f"next: catalogc validate {out}")


def input_files(source: Path) -> frozenset[FileId]:
    """The files an import read: `source`, or the files of a `source` directory."""
    paths = [source, *source.iterdir()] if source.is_dir() else [source]
    found = set()
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return frozenset(found)
