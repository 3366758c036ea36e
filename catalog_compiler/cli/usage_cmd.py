"""`catalogc usage`: every counter's use now — spent, reserved in flight and remaining
against its limit — read from the Redis store the gateways share, or from a running
gateway's `/v1/catalog/usage`."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Any

import click

from catalog_compiler.cli import examples as ex
from catalog_compiler.cli.explain_cmd import load
from catalog_compiler.cli.options import EXIT_ERRORS, EXIT_USAGE, plain_terminal, store_url
from catalog_compiler.cli.report_cmd import csv_cell
from catalog_compiler.diagnostics import clean, printable

KEY_ENV = "CATALOGC_API_KEY"
COLUMNS = ("counter", "kind", "unit", "period", "limit", "spent", "reserved", "remaining",
           "window_start", "window_end")  # fmt: skip
BAR = 20
MAX_ANSWER = 16 * 1024 * 1024  # bytes of a gateway's usage answer read


@click.command(epilog=ex.USAGE)
@click.option("--bundle", "bundle_path", type=click.Path(dir_okay=True, path_type=str),
              help="The bundle (or catalog) the gateways serve; with --redis.")  # fmt: skip
@click.option("--redis", metavar="URL", help="The shared limits store (any URL of docs/redis.md, "
              "or env:NAME / file:PATH holding it).")  # fmt: skip
@click.option("--namespace", default="catalog", show_default=True, help="Its key namespace.")
@click.option("--gateway", metavar="URL", help=f"A running gateway; the key comes from ${KEY_ENV}.")
@click.option("--workspace", "-w", help="Only the counters this workspace is charged to.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text",
              show_default=True)  # fmt: skip
def usage(bundle_path: str | None, redis: str | None, namespace: str, gateway: str | None,
          workspace: str | None, fmt: str) -> None:  # fmt: skip
    """Show each budget, rate limit and concurrency limit: limit, spent, reserved (held by
    requests in flight), remaining, and the current window. Money is exact USD.

    Exit status: 0 shown, 1 the store or gateway refused, 2 usage errors.
    """
    if (redis is None) == (gateway is None):
        raise click.UsageError("give --redis URL (with --bundle) or --gateway URL")
    if redis is not None and bundle_path is None:
        raise click.UsageError("--redis needs --bundle: the counters are the bundle's")
    rows = _from_gateway(gateway, workspace) if gateway else _from_redis(
        bundle_path or "", redis or "", namespace, workspace)  # fmt: skip
    if fmt == "json":
        sys.stdout.write(json.dumps({"workspace": workspace, "counters": rows}, indent=2) + "\n")
    elif fmt == "csv":
        sys.stdout.write(render_csv(rows))
    else:
        bars = sys.stdout.isatty() and not plain_terminal()
        sys.stdout.write(render_text(rows, bars))


def _from_redis(bundle_path: str, url: str, namespace: str,
                workspace: str | None) -> list[dict[str, Any]]:  # fmt: skip
    from runtime import RequestError, Router, StoreUnavailable
    from runtime.limits.redis_store import RedisStore

    bundle = load(bundle_path)
    try:
        store = RedisStore(store_url(url), namespace=namespace)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--redis") from None
    try:
        return [row.to_json() for row in Router(bundle, store).usage(workspace)]
    except RequestError as exc:
        click.echo(f"catalogc: {exc.message}", err=True)
        sys.exit(EXIT_ERRORS)
    except StoreUnavailable as exc:
        click.echo(f"catalogc: {exc}", err=True)
        sys.exit(EXIT_ERRORS)
    finally:
        store.close()


def _from_gateway(origin: str, workspace: str | None) -> list[dict[str, Any]]:
    key = os.environ.get(KEY_ENV)
    if not key:
        raise click.UsageError(f"--gateway reads the API key from ${KEY_ENV} (never argv)")
    if not origin.startswith(("http://", "https://")):
        raise click.BadParameter("expected an http(s) URL", param_hint="--gateway")
    query = "?" + urllib.parse.urlencode({"workspace": workspace}) if workspace else ""
    request = urllib.request.Request(origin.rstrip("/") + "/v1/catalog/usage" + query,
                                     headers={"authorization": f"Bearer {key}"})  # fmt: skip
    try:
        with _no_redirects().open(request, timeout=10) as resp:  # http(s) only, checked above
            status, raw = resp.status, resp.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(MAX_ANSWER)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        click.echo(f"catalogc: cannot reach {origin}: {type(exc).__name__}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if status != 200 or not isinstance(body, dict):
        click.echo(f"catalogc: the gateway answered {status}: {_said(status, body, raw, key)}",
                   err=True)  # fmt: skip
        sys.exit(EXIT_ERRORS)
    counters = body.get("counters")
    if not isinstance(counters, list) or not all(isinstance(c, dict) for c in counters):
        click.echo("catalogc: the gateway's answer has no `counters` list", err=True)
        sys.exit(EXIT_ERRORS)
    for i, counter in enumerate(counters):
        wrong = _malformed(counter)
        if wrong is not None:
            click.echo(f"catalogc: the gateway's counter #{i + 1} is malformed: `{wrong}`",
                       err=True)  # fmt: skip
            sys.exit(EXIT_ERRORS)
    return counters


KINDS = ("budget", "rate_limit", "concurrency")
_TEXT = ("counter", "unit")
_AMOUNTS = ("limit", "spent", "remaining")
_OPTIONAL = ("reserved", "period", "window_start", "window_end")


def _malformed(counter: dict[str, Any]) -> str | None:
    """The first field of a gateway's counter that is not what the gateway sends (its
    words are a server's: one missing `kind` or a word for a `limit` was an internal
    error when shown, a review)."""
    if counter.get("kind") not in KINDS:
        return "kind"
    for name in _TEXT:
        if not isinstance(counter.get(name), str):
            return name
    for name in (*_AMOUNTS, "reserved"):
        value = counter.get(name)
        if value is None and name == "reserved":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not _amount(value):
            return name
    for name in _OPTIONAL[1:]:
        if counter.get(name) is not None and not isinstance(counter[name], str):
            return name
    return None


def _amount(value: int | str) -> bool:
    try:
        return Decimal(str(value)).is_finite() and len(str(value)) <= 64
    except ArithmeticError:
        return False


class _Refuse(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: the key would go wherever the Location says (another
    host, plain http); the 30x surfaces as an HTTPError with its status."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _no_redirects() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_Refuse)


def _said(status: int, body: Any, raw: bytes, key: str) -> str:
    """The gateway's own words, made safe for a terminal: no escape sequence, no secret
    (not even the key sent back), bounded. A redirect's body would echo its Location."""
    if 300 <= status < 400:
        return "a redirect, not followed (it would take the API key elsewhere)"
    error = body.get("error") if isinstance(body, dict) else None
    said = error.get("message") if isinstance(error, dict) else None
    text = said if isinstance(said, str) and said else raw[:200].decode("utf-8", "replace")
    return clean(text.replace(key, "****"))


def render_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:  # a gateway's words: printable, and never a spreadsheet formula
        writer.writerow([_cell(row, c) for c in COLUMNS])
    return out.getvalue()


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if value is None:
        return ""
    text = printable(str(value))
    return text if column in _AMOUNTS or column == "reserved" else csv_cell(text)


def render_text(rows: list[dict[str, Any]], bars: bool) -> str:
    if not rows:
        return "no counters: the catalog sets no budget, rate limit or concurrency limit\n"
    table = [("counter", "limit", "spent", "reserved", "remaining", "window")]
    for row in rows:
        table.append((
            f"{row['counter']} {row['kind'].replace('_', ' ')}",
            f"{row['limit']} {_unit(row)}",
            str(row["spent"]),
            "—" if row.get("reserved") is None else str(row["reserved"]),
            str(row["remaining"]),
            _window(row),
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for n, r in enumerate(table):
        text = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip()
        if bars and n:
            text += "  " + _bar(rows[n - 1])
        lines.append(printable(text))  # a gateway's counters are its words: no escapes
    return "\n".join(lines) + "\n"


def _unit(row: dict[str, Any]) -> str:
    unit = str(row["unit"]).upper() if row["unit"] == "usd" else str(row["unit"])
    per = row.get("period")
    return f"{unit}/{per}" if row["kind"] == "rate_limit" and per else unit


def _window(row: dict[str, Any]) -> str:
    if row["kind"] != "budget":
        return "now"
    start, end = row.get("window_start"), row.get("window_end")
    return f"{row.get('period')} {str(start)[:10]}…{str(end)[:10] if end else '∞'}"


def _bar(row: dict[str, Any]) -> str:
    limit = Decimal(str(row["limit"]))
    used = Decimal(str(row["spent"])) + Decimal(str(row.get("reserved") or 0))
    share = min(used / limit, Decimal(1)) if limit else Decimal(1 if used else 0)
    filled = int(share * BAR)
    return "[" + "#" * filled + "." * (BAR - filled) + f"] {int(share * 100)}%"
