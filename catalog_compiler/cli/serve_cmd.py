"""`catalogc serve [BUNDLE|DIR]`: the gateway (runtime/gateway) on a bundle or a catalog.

The compiler only starts the gateway: a directory is compiled first (every check of
`compile`), its bundle written atomically into a private temporary directory, and the rest
is `runtime.gateway.cli.main(argv)` — the same server as `python -m runtime.gateway`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from catalog_compiler.cli import examples as ex
from catalog_compiler.cli.options import EXIT_ERRORS, EXIT_USAGE, make_cache, report
from catalog_compiler.compiler import Compiled, compile_catalog
from catalog_compiler.load.fsutil import write_atomic
from catalog_compiler.load.sources import CATALOG_FILE
from runtime.gateway import hup

GatewayMain = Callable[[list[str]], int]  # runtime.gateway.cli.main
BUNDLE_NAME = "catalog.bundle.json"
INSTALL_HINT = "install catalog-compiler[gateway]: pip install 'catalog-compiler[gateway]'"


def gateway_argv(
    bundle_path: str | Path,
    host: str,
    port: int,
    workers: int,
    redis: str | None,
    allow_missing_secrets: bool,
    tuning: Sequence[str] = (),
) -> list[str]:
    """The arguments of `python -m runtime.gateway` for these options. The bundle path is
    made absolute: the gateway does not depend on the working directory, and a file named
    `-x.json` cannot be read as an option."""
    argv = [os.path.abspath(bundle_path), "--host", host, "--port", str(port)]
    argv += ["--workers", str(workers)]
    if redis is not None:
        argv += ["--redis", redis]
    if allow_missing_secrets:
        argv.append("--allow-missing-secrets")
    return argv + list(tuning)


def tuning_argv(
    namespace: str | None,
    max_body_bytes: int | None,
    drain_timeout: float | None,
    watch: bool,
    *,
    events: str | None = None,
    events_max_bytes: int | None = None,
    metrics: bool = True,
    alerts_dead_letter: str | None = None,
    lease_block: float | None = None,
    client_timeout: float | None = None,
    max_connections: int | None = None,
    max_body_memory: int | None = None,
) -> list[str]:
    """The gateway's own options, forwarded only when given (its defaults stay its own).
    `lease_block`: lease budgets from Redis in blocks of this fraction (None: exact)."""
    argv: list[str] = []
    if alerts_dead_letter is not None:
        argv += ["--alerts-dead-letter", alerts_dead_letter]
    if lease_block is not None:
        argv += ["--redis-lease-budgets", "--redis-lease-block", repr(lease_block)]
    if events is not None:
        argv += ["--events", events]
    if events_max_bytes is not None:
        argv += ["--events-max-bytes", str(events_max_bytes)]
    if not metrics:
        argv.append("--no-metrics")
    if namespace is not None:
        argv += ["--namespace", namespace]
    if max_body_bytes is not None:
        argv += ["--max-body-bytes", str(max_body_bytes)]
    if drain_timeout is not None:
        argv += ["--drain-timeout", repr(drain_timeout)]
    if client_timeout is not None:
        argv += ["--client-timeout", repr(client_timeout)]
    if max_connections is not None:
        argv += ["--max-connections", str(max_connections)]
    if max_body_memory is not None:
        argv += ["--max-body-memory", str(max_body_memory)]
    if not watch:
        argv.append("--no-watch")
    return argv


def is_catalog(source: Path) -> bool:
    """A catalog directory (or its catalog.yaml) is compiled; any other file is a bundle.
    A path that does not exist goes to the compiler, which reports it (E0001, exit 2)."""
    return not source.is_file() or source.name == CATALOG_FILE


def load_gateway() -> GatewayMain:
    """`runtime.gateway.cli.main`, or exit 2 when the gateway extra is not installed.
    Imported only here: no other command pays for aiohttp."""
    from runtime.gateway import missing_extra

    absent = missing_extra()
    if absent is not None:
        click.echo(f"catalogc: the gateway needs `{absent}`: {INSTALL_HINT}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        from runtime.gateway.cli import main
    except ImportError as exc:
        click.echo(f"catalogc: this installation has no gateway ({exc})", err=True)
        sys.exit(EXIT_USAGE)
    return main


def compile_or_exit(directory: str) -> Compiled:
    """Every check of `compile`; on errors print them and exit (1, or 2 for I/O)."""
    compiled = compile_catalog(directory, cache=make_cache(directory, False, None))
    result = compiled.validation
    report(compiled.diagnostics, result, "text", "auto", False, quiet_ok=True, stream=sys.stderr)
    if not compiled.ok:
        click.echo("nothing served: fix the errors above", err=True)
        sys.exit(EXIT_USAGE if result.io_failed else EXIT_ERRORS)
    return compiled


def write_bundle(compiled: Compiled, source: str, out_dir: Path) -> Path:
    assert compiled.data is not None and compiled.index is not None
    path = out_dir / BUNDLE_NAME
    try:
        write_atomic(path, compiled.data)
    except OSError as exc:
        click.echo(f"catalogc: cannot write the bundle to {path}: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    # one JSON line, like every line the gateway logs after it (runtime/gateway/log.py)
    line = {"ts": round(time.time(), 3), "event": "compiled", "source": source,
            "documents": compiled.validation.document_count, "bundle": str(path),
            "digest": compiled.index.digest}  # fmt: skip
    click.echo(json.dumps(line), err=True)
    return path


@click.command(epilog=ex.SERVE)
@click.argument("source", default=".", type=click.Path(path_type=str))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="Port to listen on; 0 picks a free one (the `listening` log line names it).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server processes. More than one needs --redis: the memory store counts per process.",
)
@click.option(
    "--redis",
    metavar="URL",
    default=None,
    help="Keep budgets and rate limits in Redis (redis://host:6379/0), shared by all "
    "workers and replicas; default: in memory, this process only. env:NAME or file:PATH "
    "reads the URL from there (a password stays out of the process list).",
)
@click.option(
    "--allow-missing-secrets",
    is_flag=True,
    help="Start even when a credential reference does not resolve: only the providers that "
    "need it answer 503 (default: refuse to start, naming the reference).",
)
@click.option("--namespace", default=None, help="The Redis key namespace (default: catalog).")
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1024),
    default=None,
    help="Largest request body accepted (default: 16 MiB); larger ones get 413.",
)
@click.option(
    "--max-body-memory",
    type=click.IntRange(min=1024),
    default=None,
    help="Bytes of request bodies one process holds at once, half of it per workspace; a "
    "body past either gets 503 (default: 256 MiB; bodies up to 64 KiB always pass).",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds in-flight requests get to finish on SIGTERM (default: 30).",
)
@click.option(
    "--client-timeout",
    type=click.FloatRange(min=0.1, max=3600),
    default=None,
    help="Seconds a client may take to send a request's headers or body, or to read its "
    "answer, and a connection may stay idle (default: 30).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=0, max=1_000_000),
    default=None,
    help="Open client connections per process; at the cap a new one replaces the oldest "
    "idle one, or is answered 503 when none is idle (default: half the descriptor limit, at "
    "most 10,000).",
)
@click.option(
    "--watch/--no-watch",
    default=True,
    show_default=True,
    help="Reload when the bundle file changes (SIGHUP always reloads).",
)
@click.option(
    "--events",
    metavar="PATH",
    default=None,
    help="Write one usage event per settled request to PATH (JSON Lines, rotated by size; "
    "`-` for stdout); `catalogc report PATH…` sums them.",
)
@click.option(
    "--events-max-bytes",
    type=click.IntRange(min=4096),
    default=None,
    help="Rotate the events file past this size, keeping 5 (default: 64 MiB).",
)
@click.option(
    "--metrics/--no-metrics",
    default=True,
    show_default=True,
    help="Serve Prometheus metrics at /metrics.",
)
@click.option(
    "--alerts-dead-letter",
    metavar="PATH",
    default=None,
    help="Append budget alerts the webhook would not take to PATH (JSON Lines).",
)
@click.option(
    "--redis-lease-budgets",
    "lease_budgets",
    is_flag=True,
    help="Admit budgets locally within blocks leased from Redis (docs/scaling.md).",
)
@click.option(
    "--redis-lease-block",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.001,
    show_default=True,
    help="The leased block, a fraction of each budget's limit.",
)
def serve(
    source: str,
    host: str,
    port: int,
    workers: int,
    redis: str | None,
    allow_missing_secrets: bool,
    namespace: str | None,
    max_body_bytes: int | None,
    max_body_memory: int | None,
    drain_timeout: float | None,
    client_timeout: float | None,
    max_connections: int | None,
    watch: bool,
    events: str | None,
    events_max_bytes: int | None,
    metrics: bool,
    alerts_dead_letter: str | None,
    lease_budgets: bool,
    redis_lease_block: float,
) -> None:
    """Serve the OpenAI-compatible gateway on a bundle, or on a catalog DIR (default `.`),
    compiled first.

    Exit status: 1 catalog errors (nothing served), 2 usage errors or the gateway extra not
    installed; otherwise the gateway's own.
    """
    hup.catch()  # a SIGHUP while compiling or starting is a reload once serving, not a kill
    if workers > 1 and redis is None:  # before a compile that may take a while
        raise click.UsageError(
            f"--workers {workers} needs --redis URL: the memory store counts per process, "
            "so each worker would admit the whole limit"
        )
    if lease_budgets and redis is None:
        raise click.UsageError("--redis-lease-budgets needs --redis URL")
    tuning = tuning_argv(namespace, max_body_bytes, drain_timeout, watch, events=events,
                         events_max_bytes=events_max_bytes, metrics=metrics,
                         alerts_dead_letter=alerts_dead_letter,
                         lease_block=redis_lease_block if lease_budgets else None,
                         client_timeout=client_timeout,
                         max_connections=max_connections,
                         max_body_memory=max_body_memory)  # fmt: skip
    if not is_catalog(Path(source)):
        main = load_gateway()
        sys.exit(main(gateway_argv(source, host, port, workers, redis, allow_missing_secrets,
                                   tuning)))  # fmt: skip
    compiled = compile_or_exit(source)
    main = load_gateway()
    try:
        out_dir = Path(tempfile.mkdtemp(prefix="catalogc-serve-"))
    except OSError as exc:
        click.echo(f"catalogc: cannot create a directory for the bundle: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        bundle = write_bundle(compiled, source, out_dir)
        code = main(gateway_argv(bundle, host, port, workers, redis, allow_missing_secrets,
                                 tuning))  # fmt: skip
    finally:  # also on Ctrl-C: the compiled bundle does not outlive the server
        shutil.rmtree(out_dir, ignore_errors=True)
    sys.exit(code)
