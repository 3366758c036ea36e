"""`catalogc docs`: the static model gallery; `catalogc snippets`: the code for one model."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from catalog_compiler.cli import examples as ex
from catalog_compiler.cli.explain_cmd import load, load_source
from catalog_compiler.cli.options import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, F, store_url
from catalog_compiler.diagnostics import printable, printable_lines
from catalog_compiler.load.fsutil import check_output_dir, error_text
from catalog_compiler.tools.explain import split_target
from catalog_compiler.tools.gallery.routes import config_views, pick_config
from catalog_compiler.tools.gallery.site import build_site, requests_for, write_site
from catalog_compiler.tools.gallery.snippets import (
    DEFAULT_API_KEY_ENV,
    DEFAULT_GATEWAY_URL,
    FORM_TITLES,
    FORMS,
    LANGS,
    PORTKEY_HEADERS,
    SDKS,
    Gateway,
    snippets,
)
from catalog_compiler.tools.gallery.usage import UsageBar, UsageFileError, bars_of, read_usage_file
from runtime.bundle.errors import RequestError, UnknownModel
from runtime.bundle.load import Bundle
from runtime.bundle.suggest import closest

_HEADER_HELP = {
    "provider_header": "Header naming the provider (`@slug`).",
    "config_header": "Header naming the routing config.",
    "api_key_header": "Header carrying the gateway API key.",
    "metadata_header": "Header carrying request metadata (JSON).",
}


def gateway_options(f: F) -> F:
    """Where the snippets send requests. With header names other than Portkey's, the
    Portkey SDK snippets are left out (those SDKs send their own names)."""
    f = click.option(
        "--api-key-env",
        default=DEFAULT_API_KEY_ENV,
        show_default=True,
        help="Environment variable the snippets read the API key from (never a key itself).",
    )(f)
    for name, default in reversed(PORTKEY_HEADERS.items()):
        f = click.option(
            f"--{name.replace('_', '-')}",
            name,
            default=default,
            show_default=True,
            help=_HEADER_HELP[name],
        )(f)
    return click.option(
        "--gateway-url",
        default=DEFAULT_GATEWAY_URL,
        show_default=True,
        help="Base URL of the gateway the snippets call.",
    )(f)


def make_gateway(
    gateway_url: str,
    provider_header: str,
    config_header: str,
    api_key_header: str,
    metadata_header: str,
    api_key_env: str,
) -> Gateway:
    try:
        return Gateway(gateway_url, provider_header, config_header, api_key_header,
                       metadata_header, api_key_env)  # fmt: skip
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(epilog=ex.DOCS)
@click.argument("source", default=".", type=click.Path(path_type=str))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("site"),
    show_default=True,
    help="Directory to write the site into (created; pages are replaced atomically).",
)
@click.option("--usage", "usage_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Show spend now per workspace, from `catalogc usage --format json` output "
              "(or a gateway's /v1/catalog/usage).")  # fmt: skip
@click.option("--redis", metavar="URL", help="Show spend now, read from the shared store "
              "(a URL, or env:NAME / file:PATH holding it).")  # fmt: skip
@click.option("--namespace", default="catalog", show_default=True,
              help="The store's key namespace (with --redis).")  # fmt: skip
@gateway_options
def docs(
    source: str,
    output: Path,
    usage_file: Path | None,
    redis: str | None,
    namespace: str,
    gateway_url: str,
    provider_header: str,
    config_header: str,
    api_key_header: str,
    metadata_header: str,
    api_key_env: str,
) -> None:
    """Render the model gallery of SOURCE (a catalog directory or a compiled bundle).

    A static, offline site: an index of providers and their models, a page per provider and a
    page per workspace with every model it may use, its prices and limits, and ready-to-use
    code (Python, JavaScript, curl) for each way of naming it.

    Exit status: 0 written, 1 catalog errors, 2 usage or I/O errors.
    """
    gateway = make_gateway(gateway_url, provider_header, config_header, api_key_header,
                           metadata_header, api_key_env)  # fmt: skip
    bundle, root, protected = load_source(source)
    usage, origin = live_usage(bundle, usage_file, redis, namespace)
    site = build_site(bundle, gateway, usage, origin)
    try:
        check_output_dir(output)
        # each page through the shared output guard: never a file of the catalog read
        written = write_site(site, output, protected, root)
    except OSError as exc:
        click.echo(f"catalogc: {error_text(exc)}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(
        f"wrote {len(written)} pages ({len(site.providers)} providers, "
        f"{len(site.workspaces)} workspaces) to {output}; open {output / 'index.html'}"
    )
    sys.exit(EXIT_OK)


def live_usage(bundle: Bundle, usage_file: Path | None, redis: str | None,
               namespace: str) -> tuple[dict[str, list[UsageBar]] | None, str | None]:  # fmt: skip
    """Bars per counter from a usage file or the Redis store (None: no live usage)."""
    if usage_file is not None and redis is not None:
        raise click.UsageError("give --usage FILE or --redis URL, not both")
    if usage_file is not None:
        try:
            return read_usage_file(usage_file), f"`{usage_file.name}`"
        except UsageFileError as exc:
            click.echo(f"catalogc: {exc}", err=True)
            sys.exit(EXIT_ERRORS)
    if redis is None:
        return None, None
    from runtime import Router, StoreUnavailable
    from runtime.limits.redis_store import RedisStore
    from runtime.limits.redis_topology import safe_url

    redis = store_url(redis)
    try:
        store = RedisStore(redis, namespace=namespace)
        rows = [row.to_json() for row in Router(bundle, store).usage()]
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--redis") from None
    except StoreUnavailable as exc:
        click.echo(f"catalogc: {exc}", err=True)
        sys.exit(EXIT_ERRORS)
    store.close()
    return bars_of(rows, "redis"), f"the store at `{safe_url(redis)}`"


@click.command(name="snippets", epilog=ex.SNIPPETS)
@click.argument("target", metavar="@PROVIDER/MODEL")
@click.argument("source", default=".", type=click.Path(path_type=str))
@click.option("--lang", type=click.Choice(LANGS), default="python", show_default=True,
              help="Language of the snippets.")  # fmt: skip
@click.option("--workspace", "-w", help="The workspace calling (adds the config form).")
@click.option("--form", "forms", type=click.Choice(FORMS), multiple=True,
              help="Only this request form (repeatable; default: every form).")  # fmt: skip
@click.option("--sdk", type=click.Choice(SDKS), help="Python and JavaScript: only this SDK.")
@gateway_options
def snippets_cmd(
    target: str,
    source: str,
    lang: str,
    workspace: str | None,
    forms: tuple[str, ...],
    sdk: str | None,
    gateway_url: str,
    provider_header: str,
    config_header: str,
    api_key_header: str,
    metadata_header: str,
    api_key_env: str,
) -> None:
    """Print ready-to-use code calling @PROVIDER/MODEL, from SOURCE (a catalog directory or
    a compiled bundle).

    Every request form: the model string, the provider header plus the bare model, and (with
    --workspace) a routing config the workspace may use that reaches the model.

    Exit status: 0 printed, 1 unknown or refused model (or catalog errors), 2 usage errors.
    """
    gateway = make_gateway(gateway_url, provider_header, config_header, api_key_header,
                           metadata_header, api_key_env)  # fmt: skip
    try:
        provider_slug, model = split_target(target)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="@PROVIDER/MODEL") from None
    if "config" in forms and workspace is None:
        raise click.BadParameter("the config form needs --workspace: configs are offered "
                                 "per workspace", param_hint="--form")  # fmt: skip
    bundle = load(source)
    try:
        mode = _check(bundle, provider_slug, model, workspace)
    except RequestError as exc:
        click.echo(f"catalogc: {printable(exc.message)}", err=True)
        sys.exit(EXIT_ERRORS)
    wanted = forms or FORMS
    config = None
    if workspace is not None and "config" in wanted:
        offered = [
            c for c in config_views(bundle) if c.workspaces is None or workspace in c.workspaces
        ]
        config, _ = pick_config(offered, provider_slug, model,
                                bundle.workspace(workspace).default_config)  # fmt: skip
        if config is None:
            click.echo(printable(f"catalogc: no routing config workspace `{workspace}` may use "
                                 f"reaches `{target}`"), err=True)  # fmt: skip
    elif "config" in wanted:  # every form asked for, and no workspace: say how to get it
        click.echo("catalogc: pass --workspace for the config form", err=True)
    requests = [r for r in requests_for(provider_slug, model, mode, workspace, config)
                if r.form in wanted]  # fmt: skip
    if not requests:
        sys.exit(EXIT_ERRORS)
    comment = "//" if lang == "js" else "#"
    blocks = []
    for req in requests:
        number = FORMS.index(req.form) + 1
        for s in snippets(req, gateway, (lang,), sdk):
            title = f"{comment} ==== {number}. {FORM_TITLES[req.form]} · {s.title} ===="
            blocks.append(f"{title}\n{s.code}")
    sys.stdout.write(printable_lines("\n".join(blocks)))
    sys.exit(EXIT_OK)


def _check(bundle: Bundle, provider_slug: str, model: str, workspace: str | None) -> str:
    """The model's mode, or a RequestError: unknown names, or a model nobody may use."""
    if workspace is not None:
        decision = bundle.decide(workspace, provider_slug, model)
        if not decision.allowed:
            raise decision.error()
    provider = bundle.provider(provider_slug)
    info = provider.models.get(model)
    if info is None:
        if model not in provider.exposed:
            raise UnknownModel(provider.slug, model, closest(model, provider.exposed))
        refusal = bundle.model_refusal(provider, model, None)
        why = f": {refusal.level} {refusal.rule}" if refusal else ""
        raise RequestError(f"`@{provider.slug}/{model}` is not offered{why}")
    return info.mode


__all__ = ["docs", "snippets_cmd"]
