"""`catalogc diff OLD NEW`: the semantic change between two bundles, catalog directories or
git revisions, as text, JSON or a Markdown pull-request comment."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import click

from catalog_compiler.cli import examples as ex
from catalog_compiler.cli.markdown import cell, code_span
from catalog_compiler.cli.options import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, report
from catalog_compiler.compiler import compile_catalog
from catalog_compiler.diagnostics import printable, printable_lines
from catalog_compiler.tools.diff import Change, Diff, semantic_diff
from runtime.bundle.errors import BundleError
from runtime.bundle.load import MAX_BUNDLE_BYTES, Bundle, read_bounded

KIND_TITLES = [("limit", "Limits"), ("price", "Prices"), ("endpoint", "Endpoints"),
               ("config", "Configs"), ("provider", "Providers"),
               ("workspace", "Workspaces"), ("alias", "Aliases"),
               ("other", "Other changes")]  # fmt: skip


def load_side(target: str, label: str) -> tuple[Bundle, dict[str, Any]]:
    """A bundle file, or a catalog directory compiled in memory."""
    path = Path(target)
    if path.is_file():
        try:
            data = read_bounded(path, MAX_BUNDLE_BYTES)
            return Bundle.load(data), json.loads(data)
        except (OSError, BundleError, ValueError) as exc:
            click.echo(printable(f"catalogc: cannot load the {label} bundle {target}: {exc}"),
                       err=True)  # fmt: skip
            sys.exit(EXIT_USAGE)
    compiled = compile_catalog(target)
    if compiled.data is None or compiled.index is None:
        click.echo(f"catalogc: the {label} catalog does not compile:", err=True)
        report(compiled.diagnostics, compiled.validation, "text", "auto", False)
        sys.exit(EXIT_USAGE if compiled.validation.io_failed else EXIT_ERRORS)
    return compiled.index, json.loads(compiled.data)


def checkout(repo: Path, rev: str, prefix: str, into: Path) -> Path:
    """The catalog directory as it is at `rev` (git archive, no work tree touched)."""
    try:
        tar = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", rev, "--", prefix or "."],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        click.echo(
            f"catalogc: cannot read revision `{rev}`: {stderr.decode().strip() or exc}", err=True
        )
        sys.exit(EXIT_USAGE)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        extract(archive, into)
    return into / prefix


def extract(archive: tarfile.TarFile, into: Path) -> None:
    """Everything the `data` filter allows; a symbolic link it refuses (absolute, or leading
    out) is made afterwards as the link itself, never written through, so discovery reports
    it (E0004) exactly as it would in a work tree."""
    refused: list[tarfile.TarInfo] = []

    def keep_links(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        try:
            return tarfile.data_filter(member, path)
        except (tarfile.AbsoluteLinkError, tarfile.LinkOutsideDestinationError):
            refused.append(member)
            return None

    archive.extractall(into, filter=keep_links)
    root = os.path.realpath(into)
    for member in refused:
        link = into / member.name
        parent = os.path.realpath(link.parent)
        if not member.issym() or not (parent == root or parent.startswith(root + os.sep)):
            continue
        with contextlib.suppress(OSError):
            os.symlink(member.linkname, link)


def git_sides(spec: str, directory: str) -> tuple[str, str, tempfile.TemporaryDirectory[str]]:
    base, sep, head = spec.partition("..")
    if not sep or not base:
        raise click.BadParameter("write `BASE..HEAD` (HEAD may be empty: the work tree)",
                                 param_hint="--git")  # fmt: skip
    if base.startswith("-") or head.startswith("-"):  # git would take it as an option
        raise click.BadParameter("a revision does not start with `-`", param_hint="--git")
    here = Path(directory).resolve()
    command = ["git", "-C", str(here), "rev-parse", "--show-toplevel"]
    try:
        found = subprocess.run(command, capture_output=True, check=True, text=True)
        top = Path(found.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        click.echo(f"catalogc: `{directory}` is not inside a git repository", err=True)
        sys.exit(EXIT_USAGE)
    prefix = here.relative_to(top).as_posix()
    prefix = "" if prefix == "." else prefix
    tmp = tempfile.TemporaryDirectory(prefix="catalogc-diff-")
    old = checkout(top, base, prefix, Path(tmp.name) / "old")
    new = str(here) if not head else str(checkout(top, head, prefix, Path(tmp.name) / "new"))
    return str(old), new, tmp


def render_text(diff: Diff) -> str:
    if diff.empty:
        return f"no semantic change ({diff.old_digest[:19]}… -> {diff.new_digest[:19]}…)\n"
    out = [f"catalog diff {diff.old_digest[:19]}… -> {diff.new_digest[:19]}…"]
    if diff.breaking:
        out.append(f"BREAKING ({len(diff.breaking)}):")
        out += [f"  ! {c.kind} {c.subject}: {c.note}" for c in diff.breaking]
    if diff.notable:
        out.append(f"NOTABLE ({len(diff.notable)}):")
        out += [f"  * {c.kind} {_change_line(c)}" for c in diff.notable]
    if diff.gained or diff.lost:
        out.append("access:")
        for ws in sorted(set(diff.gained) | set(diff.lost)):
            plus, minus = diff.gained.get(ws, []), diff.lost.get(ws, [])
            out.append(f"  workspace `{ws}`: +{len(plus)} / -{len(minus)} models")
            out += [f"    + {m}" for m in plus[:SHOWN]] + _more(plus)
            out += [f"    - {m}" for m in minus[:SHOWN]] + _more(minus)
    for kind, title in KIND_TITLES:
        items = [c for c in diff.changes if c.kind == kind and not (c.breaking or c.notable)]
        if items:
            out.append(f"{title.lower()}:")
            out += [f"  {_change_line(c)}" for c in items]
    return "\n".join(out) + "\n"


def _change_line(c: Change) -> str:
    if c.old is not None and c.new is not None and c.old != c.new:
        return f"{c.subject}: {c.old} -> {c.new}" + (f" ({c.note})" if c.note else "")
    return f"{c.subject}: {c.note or ('added' if c.old is None else 'removed')}"


SHOWN = 12  # models listed per workspace before "and N more"


def _more(items: list[str]) -> list[str]:
    return [f"      … and {len(items) - SHOWN} more"] if len(items) > SHOWN else []


def _cell(items: list[str]) -> str:
    shown = "<br>".join(code_span(m) for m in items[:SHOWN])
    if len(items) > SHOWN:
        shown += f"<br>… and {len(items) - SHOWN} more"
    return shown or "—"


def render_markdown(diff: Diff) -> str:
    if diff.empty:
        return "### Catalog: no semantic change\n"
    out = ["### Catalog changes", "",
           f"`{diff.old_digest[:19]}…` → `{diff.new_digest[:19]}…`", ""]  # fmt: skip
    if diff.breaking:
        out += [f"#### Breaking changes ({len(diff.breaking)})", ""]
        out += [f"- **{c.kind} {code_span(c.subject)}**: {cell(c.note)}"
                for c in diff.breaking] + [""]  # fmt: skip
    if diff.notable:
        out += [f"#### Notable ({len(diff.notable)})", "", "| what | before | after | why |",
                "|---|---|---|---|"]  # fmt: skip
        out += [f"| {c.kind} {cell(c.subject)} | {cell(c.old or '—')} | {cell(c.new or '—')} | "
                f"{cell(c.note)} |" for c in diff.notable] + [""]  # fmt: skip
    if diff.gained or diff.lost:
        out += ["#### Access", "", "| workspace | gained | lost |", "|---|---|---|"]
        for ws in sorted(set(diff.gained) | set(diff.lost)):
            plus = _cell(diff.gained.get(ws, []))
            minus = _cell(diff.lost.get(ws, []))
            out.append(f"| {code_span(ws)} | {plus} | {minus} |")
        out.append("")
    for kind, title in KIND_TITLES:
        items = [c for c in diff.changes if c.kind == kind and not (c.breaking or c.notable)]
        if items:
            out += [f"#### {title}", "", "| what | before | after |", "|---|---|---|"]
            out += [f"| {cell(c.subject)} | {cell(c.old or '—')} | "
                    f"{cell(c.new or '—')} {cell(c.note)}".rstrip() + " |"
                    for c in items]  # fmt: skip
            out.append("")
    return "\n".join(out)


@click.command(epilog=ex.DIFF)
@click.argument("old", required=False)
@click.argument("new", required=False)
@click.option(
    "--git",
    "git_range",
    metavar="BASE..HEAD",
    help="Compare git revisions of the catalog in DIR (OLD is then the directory).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True)  # fmt: skip
@click.option("--fail-on-breaking", is_flag=True, help="Exit 1 when a change breaks clients.")
def diff(old: str | None, new: str | None, git_range: str | None, fmt: str,
         fail_on_breaking: bool) -> None:  # fmt: skip
    """Show the semantic change from OLD to NEW (bundles or catalog directories).

    With --git BASE..HEAD, OLD names the catalog directory (default: the current one).
    """
    keep = None
    if git_range:
        old, new, keep = git_sides(git_range, old or ".")
    elif old is None or new is None:
        raise click.UsageError("give OLD and NEW, or --git BASE..HEAD")
    try:
        before, before_raw = load_side(old, "old")
        after, after_raw = load_side(new, "new")
    finally:
        if keep is not None:
            keep.cleanup()
    result = semantic_diff(before, after, before_raw, after_raw)
    if fmt == "json":
        sys.stdout.write(json.dumps(result.json(), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(printable_lines(render_markdown(result)))
    else:  # a catalog's names never drive the terminal
        sys.stdout.write(printable_lines(render_text(result)))
    sys.exit(EXIT_ERRORS if fail_on_breaking and result.breaking else EXIT_OK)
