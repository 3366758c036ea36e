"""`catalogc explain`: the decision for one workspace and model, or a workspace's whole menu."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from catalog_compiler.cli import examples as ex
from catalog_compiler.cli.options import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, report
from catalog_compiler.compiler import compile_catalog
from catalog_compiler.diagnostics import printable, printable_lines
from catalog_compiler.load.fsutil import FileId
from catalog_compiler.load.sources import protected_files
from catalog_compiler.tools.explain import explain_route, explain_workspace
from catalog_compiler.tools.explain_aliases import render_alias
from runtime.bundle.errors import BundleError, RequestError
from runtime.bundle.load import Bundle


def load(target: str) -> Bundle:
    """A bundle file, or a catalog directory compiled in memory (errors are printed)."""
    return load_source(target)[0]


def load_source(target: str) -> tuple[Bundle, Path | None, frozenset[FileId]]:
    """The bundle, with what an output must never replace: the catalog's root and files (by
    identity, whatever names a link gives them), or the bundle file."""
    path = Path(target)
    if path.is_file() and path.suffix == ".json":
        try:
            bundle = Bundle.load(path)
            st = path.stat()
        except (BundleError, OSError) as exc:
            click.echo(printable(f"catalogc: cannot load bundle {target}: {exc}"), err=True)
            sys.exit(EXIT_USAGE)
        return bundle, None, frozenset({(st.st_dev, st.st_ino)})
    compiled = compile_catalog(target)
    result = compiled.validation
    if compiled.index is None or not compiled.ok or result.root is None:
        report(compiled.diagnostics, result, "text", "auto", False)
        sys.exit(EXIT_USAGE if result.io_failed else EXIT_ERRORS)
    return compiled.index, result.root, protected_files(result.root, result.sources)


def _limits(chain_entry: dict[str, Any]) -> str:
    parts = []
    for b in chain_entry["budgets"]:
        alert = f" (alert {b['alert_threshold']})" if b["alert_threshold"] else ""
        parts.append(f"{b['limit']} {b['unit']}/{b['period']}{alert}")
    for r in chain_entry["rate_limits"]:
        burst = f", burst {r['burst']}" if r["burst"] != r["limit"] else ""
        parts.append(f"{r['limit']} {r['unit']}/{r['per']}{burst}")
    if chain_entry["concurrency"] is not None:
        parts.append(f"{chain_entry['concurrency']} in flight")
    return " · ".join(parts) or "no limits"


def render_route(data: dict[str, Any]) -> str:
    lines = [f"workspace `{data['workspace']}` -> `{data['target']}`: "
             + ("ALLOWED" if data["allowed"] else f"REFUSED ({data.get('status')})")]  # fmt: skip
    if "alias" in data:
        lines.append(render_alias(data["alias"]))
    if not data["allowed"]:
        lines.append(f"  reason: {data['reason']}")
    for step in data.get("rules", []):
        where = f"  ({step['origin']})" if step["origin"] else ""
        lines.append(f"  {step['verdict']:>7}: {step['level']} {step['rule']}{where}")
    if "chain" in data:
        lines.append("  counter chain (charged in this order, all or nothing):")
        for i, entry in enumerate(data["chain"], start=1):
            lines.append(f"    {i}. {entry['counter']:<32} {_limits(entry)}")
        eff = data["effective"]
        tight = [f"{v['limit']} {k} ({v['counter']})" for k, v in eff["budgets"].items()]
        tight += [f"{v['limit']} {k} ({v['counter']})" for k, v in eff["rate_limits"].items()]
        if eff["concurrency"]:
            tight.append(
                f"{eff['concurrency']['limit']} in flight ({eff['concurrency']['counter']})"
            )
        lines.append(f"  effective: {' · '.join(tight) or 'unlimited'}")
    if "model" in data:
        m = data["model"]
        lines.append(f"  model: {m['mode']}, context {m['context_window']}, "
                     f"max output {m['max_output_tokens']}")  # fmt: skip
    if "endpoint" in data:
        e = data["endpoint"]
        lines.append(f"  endpoint: {e['base_url'] or 'the service default'}")
        lines.extend(f"    header {k}: {v}" for k, v in e["headers"].items())
    for name, p in data.get("price", {}).items():
        amount = f"{p['usd_per_1m']} USD/1M" if p["usd_per_1m"] else f"{p['usd']} USD/request"
        source = p["source"]
        if p["registry_as_of"]:
            source += f", as of {p['registry_as_of']}"
        where = f", {p['origin']}" if p["origin"] else ""
        lines.append(f"  price {name:<12} {amount:<18} ({source}{where})")
    variants = data.get("price_variants", {})
    for line in variants.get("lines", ()):  # USD per 1M tokens, like the lines above
        lines.append(f"  price {line}")
    return "\n".join(lines) + "\n"


def render_workspace(data: dict[str, Any]) -> str:
    rows = data["routes"]
    lines = [f"workspace `{data['workspace']}` may use {len(rows)} models:"]
    width = max((len(r["target"]) for r in rows), default=10)
    lines.append(f"  {'model':<{width}}  {'in $/1M':>9} {'out $/1M':>9} {'context':>9}  limits")
    for r in rows:
        limits = ", ".join(f"{v} {k}" for k, v in {**r["budgets"], **r["rate_limits"]}.items())
        lines.append(
            f"  {r['target']:<{width}}  {r['input'] or '-':>9} {r['output'] or '-':>9} "
            f"{r['context_window'] or '-':>9}  {limits}"
        )
    if data.get("aliases"):
        lines.append("aliases:")
        for a in data["aliases"]:
            lines.append(render_alias(a) + ("" if a["usable"] else "  [target refused]"))
    return "\n".join(lines) + "\n"


@click.command(epilog=ex.EXPLAIN)
@click.argument("target", default=".", type=click.Path(path_type=str))
@click.option("--workspace", "-w", required=True, help="The workspace asking.")
@click.option("--model", "-m", help="`@provider/model` or an alias; omit to list all.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
def explain(target: str, workspace: str, model: str | None, fmt: str) -> None:
    """Explain what WORKSPACE may use, from a catalog directory or a compiled bundle.

    With --model: allowed or not and by which rule (file:line), the counter chain with
    effective limits, and the price with where it came from.
    """
    bundle = load(target)
    try:
        data = (
            explain_route(bundle, workspace, model)
            if model
            else explain_workspace(bundle, workspace)
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--model") from None
    except RequestError as exc:
        click.echo(f"catalogc: {printable(exc.message)}", err=True)
        sys.exit(EXIT_ERRORS)
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        # A catalog's (or a bundle's) names are its words: they never drive the terminal.
        sys.stdout.write(printable_lines(render_route(data) if model else render_workspace(data)))
    sys.exit(EXIT_OK if not model or data["allowed"] else EXIT_ERRORS)
