"""`catalogc report EVENTS…`: the gateway's usage events summed exactly, by workspace,
provider, model or day, as a Markdown table, CSV or JSON (the format: docs/usage-events.md)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO

import click

from catalog_compiler.cli import examples as ex
from catalog_compiler.cli.markdown import code_span
from catalog_compiler.cli.options import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, color_option, use_color
from catalog_compiler.diagnostics import printable
from catalog_compiler.tools.chargeback import (
    KEYS,
    MAX_FILES,
    TOKEN_KINDS,
    Problem,
    Tally,
    Totals,
    open_events,
    read_stream,
)

EXAMPLES = ex.examples(
    "catalogc report events.jsonl events.jsonl.1 --by workspace --by model",
    "catalogc report events.jsonl* --since 2026-12-01 --until 2027-01-01 --format csv > dec.csv",
)
MAX_SHOWN = 100  # problems printed; the rest are counted
STDIN = "<stdin>"
METRICS = ["requests", *(f"{kind}_tokens" for kind in TOKEN_KINDS), "catalog_cost_usd",
           "chargeback_usd"]  # fmt: skip
TITLES = ["requests", "input tokens", "output tokens", "cache read tokens",
          "cache write tokens", "catalog cost USD", "chargeback USD"]  # fmt: skip
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "bold": "\033[1m", "reset": "\033[0m"}


def parse_when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """`YYYY-MM-DD` (midnight UTC) or an ISO-8601 timestamp (UTC unless it names an offset)."""
    if value is None:
        return None
    try:
        if DATE_RE.match(value):
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"`{value}` is not a date (YYYY-MM-DD) or a timestamp (2026-12-01T17:00:00Z)"
        ) from None
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:  # an offset carries it past year 1 or 9999 in UTC
        raise click.BadParameter(f"`{value}` is outside the years 0001–9999 in UTC") from None


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class Printer:
    """Problems to stderr, `FILE:LINE:COL: error[R0xx]: message`, the first MAX_SHOWN."""

    def __init__(self, color: str) -> None:
        self.stream = sys.stderr
        self.color = use_color(color, self.stream)
        self.errors = self.warnings = self.io_failed = 0

    def paint(self, text: str, style: str) -> str:
        return f"{COLORS[style]}{text}{COLORS['reset']}" if self.color else text

    def __call__(self, problem: Problem) -> None:
        if problem.severity == "error":
            self.errors += 1
            self.io_failed += problem.code == "R030"
        else:
            self.warnings += 1
        if self.errors + self.warnings > MAX_SHOWN:
            return
        label = f"{problem.severity}[{problem.code}]"
        self.stream.write(
            f"{self.paint(printable(problem.where), 'bold')}: "
            f"{self.paint(label, problem.severity)}: {printable(problem.message)}\n"
        )

    def finish(self) -> None:
        hidden = self.errors + self.warnings - MAX_SHOWN
        if hidden > 0:
            self.stream.write(f"catalogc: … and {plural(hidden, 'more problem')}\n")


def read_all(paths: Sequence[str], tally: Tally, printer: Printer) -> None:
    for path in paths:
        name = STDIN if path == "-" else path
        opened = sys.stdin.buffer if path == "-" else open_events(path)
        if isinstance(opened, Problem):
            printer(opened)
            continue
        stream: IO[bytes] = opened
        try:
            for problem in read_stream(stream, name, tally):
                printer(problem)
        except OSError as exc:
            printer(Problem(name, 0, 0, "R030", f"cannot read: {exc.strerror or exc}"))
        finally:
            if path != "-":
                stream.close()


# -- rendering ----------------------------------------------------------------------------------
def _cells(totals: Totals) -> list[str]:
    data = totals.json()
    return [str(data[metric]) for metric in METRICS]


def _code(name: str | None) -> str:
    return "(none)" if name is None else code_span(name)


def csv_cell(text: str) -> str:
    """A spreadsheet runs a cell starting with = + - @ (or tab, CR) as a formula: such a
    text starts with ' instead (OWASP's CSV-injection rule). A text that already starts
    with ' gets one more, so that no two texts print alike: a reader drops one '."""
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def _stamp(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def render_markdown(tally: Tally, files: int) -> str:
    by = list(tally.by)
    out = [
        "| " + " | ".join([*by, *TITLES]) + " |",
        "|" + "---|" * len(by) + "--:|" * len(TITLES),
    ]
    for key, totals in tally.rows():
        out.append("| " + " | ".join([*(_code(part) for part in key), *_cells(totals)]) + " |")
    blanks = [""] * (len(by) - 1)
    out.append("| " + " | ".join(["**total**", *blanks, *_cells(tally.total)]) + " |")
    notes = [f"{plural(tally.total.requests, 'request')} from {plural(files, 'file')}"]
    if tally.since or tally.until:
        since = _stamp(tally.since) if tally.since else "the first"
        until = _stamp(tally.until) if tally.until else "the last"
        notes.append(f"from {since} (inclusive) to {until} (exclusive), "
                     f"{plural(tally.outside, 'request')} outside left out")  # fmt: skip
    if tally.duplicates:
        notes.append(f"{plural(tally.duplicates, 'duplicate request id')} counted once")
    if tally.skipped:
        notes.append(f"{plural(tally.skipped, 'line')} of other events skipped")
    return "\n".join(out) + "\n\n" + "; ".join(notes) + ".\n"


def render_csv(tally: Tally) -> str:
    """RFC 4180: a header row, one row per group, the total last (its first key `(total)`);
    a null provider or model is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*tally.by, *METRICS])
    for key, totals in tally.rows():
        writer.writerow([*("" if part is None else csv_cell(part) for part in key),
                         *_cells(totals)])  # fmt: skip
    writer.writerow(["(total)", *[""] * (len(tally.by) - 1), *_cells(tally.total)])
    return buffer.getvalue()


def render_json(tally: Tally) -> str:
    return json.dumps(tally.json(), indent=2, ensure_ascii=False) + "\n"


@click.command(epilog=EXAMPLES)
@click.argument("events", nargs=-1, required=True, metavar="EVENTS...")
@click.option(
    "--by",
    "by",
    multiple=True,
    type=click.Choice(KEYS),
    help="Group by this key; repeat for a compound key (default: workspace).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "csv", "json"]),
    default="markdown",
    show_default=True,
)
@click.option("--since", metavar="DATE", callback=parse_when,
              help="Only requests at or after DATE (YYYY-MM-DD or a timestamp, UTC).")  # fmt: skip
@click.option("--until", metavar="DATE", callback=parse_when,
              help="Only requests before DATE (exclusive).")  # fmt: skip
@color_option
def report(
    events: tuple[str, ...],
    by: tuple[str, ...],
    fmt: str,
    since: datetime | None,
    until: datetime | None,
    color: str,
) -> None:
    """Sum the usage events in EVENTS (files the gateway wrote, `-` for stdin) exactly.

    Every request id counts once, however many files repeat it. Exit status: 0 report
    printed, 1 a line is not a valid event (nothing printed), 2 usage or I/O errors.
    """
    if len(events) > MAX_FILES:
        raise click.UsageError(f"at most {MAX_FILES} event files, found {len(events)}")
    if len(set(by)) != len(by):
        raise click.UsageError("each --by key may be given once")
    if since is not None and until is not None and since >= until:
        raise click.BadParameter("must be later than --since", param_hint="--until")
    tally = Tally(by or ("workspace",), since, until)
    printer = Printer(color)
    read_all(events, tally, printer)
    if tally.first_duplicate is not None:
        first = tally.first_duplicate
        printer(first._replace(message=(
            f"{plural(tally.duplicates, 'duplicate request id')}, each counted once (its first "
            f"occurrence): {first.message}"
        )))  # fmt: skip
    printer.finish()
    if printer.errors:
        click.echo(
            f"catalogc: {plural(printer.errors, 'error')} in the events: no report printed",
            err=True,
        )
        sys.exit(EXIT_USAGE if printer.io_failed else EXIT_ERRORS)
    if fmt == "json":
        sys.stdout.write(render_json(tally))
    elif fmt == "csv":
        sys.stdout.write(render_csv(tally))
    else:
        sys.stdout.write(render_markdown(tally, len(events)))
    sys.exit(EXIT_OK)
