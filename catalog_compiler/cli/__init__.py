"""The `catalogc` command line; click wiring lives only in this package."""

from __future__ import annotations

import gc
import importlib
import os
import sys

import click

from catalog_compiler import __version__
from catalog_compiler.cli import examples as ex
from catalog_compiler.diagnostics.redact import mask

EXIT_INTERNAL = 3


# name -> "module:attribute". Each command is imported only when it runs: `validate` on a warm
# cache must not pay for pydantic, jinja2 or the resolver it never touches.
COMMANDS = {
    "init": "init_cmd:init",
    "validate": "validate_cmd:validate",
    "compile": "compile_cmd:compile_",
    "explain": "explain_cmd:explain",
    "diff": "diff_cmd:diff",
    "docs": "docs_cmd:docs",
    "snippets": "docs_cmd:snippets_cmd",
    "import": "import_cmd:import_",
    "schema": "schema_cmd:schema",
    "serve": "serve_cmd:serve",
    "usage": "usage_cmd:usage",
    "report": "report_cmd:report",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (help lists them all)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    epilog=ex.TOP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: _print_version(ctx) if value else None,
    help="Show the version and the bundle format, and exit.",
)
def cli() -> None:
    """Validate a model catalog written as YAML, and compile its routing bundle."""


def _print_version(ctx: click.Context) -> None:
    from runtime.bundle.canonical import FORMAT, FORMAT_PREFIX, READABLE_VERSIONS

    reads = ", ".join(f"{FORMAT_PREFIX}{v}" for v in READABLE_VERSIONS)
    click.echo(f"catalogc {__version__} (writes {FORMAT}; the runtime reads {reads})")
    ctx.exit()


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
