"""Shared output of the importers: plain YAML text, exact prices, slugs, the import report,
and writing a generated catalog to disk (atomically, deterministically).

The YAML written here is deliberately boring: block mappings, flow style only for short
all-scalar mappings and lists, no tags, no anchors; a string that YAML (1.1 or 1.2) could
read as anything but that string is double-quoted, and prices are always quoted decimals.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from catalog_compiler.diagnostics import UNPRINTABLE
from catalog_compiler.load.fsutil import FileId, error_text, write_atomic
from catalog_compiler.model.types import SLUG_RE

PRICE_PLACES = 10  # a catalog price (USD per 1M tokens) has at most this many decimal places
PER_REQUEST_PLACES = 16  # USD per request
MAX_PRICE = Decimal(10_000)
MAX_PER_REQUEST = Decimal(100)
REPORT_FILE = "IMPORT-REPORT.md"
FLOW_WIDTH = 96  # a short all-scalar mapping or list is written on one line up to this width

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_.@/+-]*\Z")  # no `:`: an indicator in flow context
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}


class Quoted(str):
    """A string always written double-quoted (prices, versions)."""

    __slots__ = ()


# -- numbers ------------------------------------------------------------------------------


def exact(value: Any) -> Decimal | None:
    """A number from JSON/YAML as an exact Decimal (via its shortest text), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:  # pragma: no cover - str() of a number always parses
        return None
    return result if result.is_finite() else None


def plain_decimal(value: Decimal) -> str:
    """`2.5`, `10`, `0.000125`: normalized, never in exponent form."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def price_problem(per_million: Decimal) -> str | None:
    """Why a USD-per-1M price cannot be written in the catalog, or None."""
    if per_million < 0:
        return "negative price"
    if per_million > MAX_PRICE:
        return "price above 10000 USD per 1M tokens"
    if places(per_million) > PRICE_PLACES:
        return f"finer than {PRICE_PLACES} decimal places"
    return None


def per_request_problem(usd: Decimal) -> str | None:
    if usd < 0:
        return "negative price"
    if usd > MAX_PER_REQUEST:
        return "per-request price above 100 USD"
    if places(usd) > PER_REQUEST_PLACES:
        return f"per-request price finer than {PER_REQUEST_PLACES} decimal places"
    return None


def whole(value: Any, most: int) -> int | None:
    """A whole number in 1..`most` (the catalog's bound for that field: a count beyond it
    would make the imported catalog invalid): ints and integral floats; else None."""
    number = exact(value)
    if number is None or number != number.to_integral_value() or not 1 <= number <= most:
        return None
    return int(number)


# -- slugs and names ----------------------------------------------------------------------


def slugify(text: str, fallback: str) -> str:
    """Lowercase `[a-z0-9-]`, at most 63 characters; `fallback` when nothing is left."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].strip("-")
    return slug if slug and SLUG_RE.match(slug) else fallback


def unique_slug(base: str, taken: set[str]) -> str:
    """`base`, or `base-2`, `base-3` … the first not in `taken` (which it joins)."""
    slug, n = base, 1
    while slug in taken:
        n += 1
        suffix = f"-{n}"
        slug = base[: 63 - len(suffix)].rstrip("-") + suffix
    taken.add(slug)
    return slug


def env_name(*parts: str) -> str:
    """`OPENAI_API_KEY` from ("openai", "api_key")."""
    text = "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_") for p in parts if p)
    text = text.upper() or "SECRET"
    return text if not text[0].isdigit() else f"_{text}"


def valid_model_name(name: str) -> bool:
    """A name the catalog can hold: no space, nothing unprintable, UTF-8 text."""
    return (0 < len(name) <= 256 and not any(c.isspace() for c in name)
            and one_line(name) == name)  # fmt: skip


# Every character YAML breaks a line at (\r, \n, NEL, LS, PS), and the control and
# bidi-override characters a catalog file may not hold or that reorder what a reader sees.
_ONE_LINE = {**UNPRINTABLE, 0x2028: "\ufffd", 0x2029: "\ufffd"}


def one_line(text: str) -> str:
    """Source text as one printable line of a comment, the report or a terminal: a name
    from the source holding a line break would otherwise end its YAML comment and write
    keys or whole documents of its own; a lone surrogate (valid JSON, not text) is `?`."""
    return text.translate(_ONE_LINE).encode("utf-8", "replace").decode("utf-8")


# -- YAML ---------------------------------------------------------------------------------


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):  # a number; prices are `Quoted` strings instead
        return plain_decimal(value)
    if isinstance(value, float):
        return plain_decimal(Decimal(str(value)))
    if isinstance(value, str):
        text = value.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate is `?`
        if isinstance(value, Quoted) or not _is_plain(text):
            return json.dumps(text)
        return text
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _is_plain(text: str) -> bool:
    return bool(_PLAIN.match(text)) and text.lower() not in _YAML_WORDS


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | Decimal | bool)


def _flow(value: Any) -> str | None:
    """One-line form of an all-scalar mapping or list, or None."""
    if isinstance(value, Mapping) and not value:
        return "{}"
    if isinstance(value, Mapping) and all(_is_scalar(v) for v in value.values()):
        inner = ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list | tuple) and all(_is_scalar(v) for v in value):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    return None


def _block(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            head = f"{pad}{scalar(key)}:"
            if _is_scalar(item):
                out.append(f"{head} {scalar(item)}")
                continue
            flow = _flow(item)
            if flow is not None and len(head) + 1 + len(flow) <= FLOW_WIDTH:
                out.append(f"{head} {flow}")
            else:
                out.append(head)
                _block(item, indent + 2, out)
        return
    if isinstance(value, list | tuple):
        for item in value:
            if _is_scalar(item):
                out.append(f"{pad}- {scalar(item)}")
                continue
            flow = _flow(item)
            if flow is not None and indent + 2 + len(flow) <= FLOW_WIDTH:
                out.append(f"{pad}- {flow}")
                continue
            sub: list[str] = []
            _block(item, indent + 2, sub)
            first = sub[0]
            out.append(f"{pad}- {first[indent + 2 :]}")
            out.extend(sub[1:])
        return
    raise TypeError(f"not a block value: {type(value).__name__}")


def dump(documents: Sequence[tuple[Sequence[str], Mapping[str, Any]]]) -> str:
    """YAML text for (comment lines, document) pairs, `---` between documents."""
    parts: list[str] = []
    for comments, doc in documents:
        lines = [f"# {one_line(c)}".rstrip() for c in comments]
        _block(doc, 0, lines)
        parts.append("\n".join(lines) + "\n")
    return "---\n".join(parts)


# -- the report ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Skipped:
    """An input entry that did not become catalog text, and why."""

    key: str
    reason: str  # a short category, counted
    detail: str = ""  # specifics for this entry (never a secret)


@dataclass
class Report:
    """What an import did: counts, skipped entries by reason, and free-form notes."""

    title: str
    source: str
    converted: int = 0
    total: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things to do or know after importing
    caveats: Counter[str] = field(default_factory=Counter)  # dropped dimensions, by kind
    files: list[str] = field(default_factory=list)
    list_skipped: bool = False  # print every skipped entry, not only the counts
    converted_keys: list[str] = field(default_factory=list)  # the entries carried over

    def skip(self, key: str, reason: str, detail: str = "") -> None:
        self.skipped.append(Skipped(key, reason, detail))

    def by_reason(self) -> list[tuple[str, int]]:
        counts = Counter(s.reason for s in self.skipped)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def summary(self) -> list[str]:
        """The lines the command prints."""
        lines = [f"{self.title}: {self.source}"]
        if self.total:
            lines.append(
                f"  {self.total} entries: {self.converted} converted, {len(self.skipped)} skipped"
            )
        else:
            lines.append(f"  {self.converted} converted, {len(self.skipped)} skipped")
        for reason, count in self.by_reason():
            lines.append(f"    {count:>5}  {reason}")
            if self.list_skipped:
                lines.extend(
                    f"           - {s.key}" + (f": {s.detail}" if s.detail else "")
                    for s in sorted(self.skipped, key=lambda s: s.key)
                    if s.reason == reason
                )
        if self.caveats:
            lines.append("  converted, but not every price dimension carries over:")
            for what, count in sorted(self.caveats.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"    {count:>5}  {what}")
        if self.notes:
            lines.append("  notes:")
            lines.extend(f"    - {note}" for note in self.notes)
        return [one_line(line) for line in lines]  # a source's names never drive a terminal

    def markdown(self) -> str:
        out = [f"# {self.title}", "", f"Source: `{self.source}`", ""]
        if self.total:
            out.append(
                f"{self.total} entries: **{self.converted} converted**, "
                f"**{len(self.skipped)} skipped**."
            )
        else:
            out.append(f"**{self.converted} converted**, **{len(self.skipped)} skipped**.")
        out.append("")
        if self.files:
            out += ["## Files written", ""]
            out += [f"- `{f}`" for f in self.files]
            out.append("")
        if self.notes:
            out += ["## To do, and what was not carried over", ""]
            out += [f"- {note}" for note in self.notes]
            out.append("")
        if self.caveats:
            out += ["## Converted with caveats", ""]
            out += ["Prices of these kinds exist in the source but have no place in the "
                    "catalog; the base token prices were converted.", ""]  # fmt: skip
            out += ["| entries | dropped |", "|---:|---|"]
            for what, count in sorted(self.caveats.items(), key=lambda kv: (-kv[1], kv[0])):
                out.append(f"| {count} | {what} |")
            out.append("")
        if self.skipped:
            out += ["## Skipped, by reason", ""]
            out += ["| entries | reason |", "|---:|---|"]
            out += [f"| {n} | {reason} |" for reason, n in self.by_reason()]
            out.append("")
            for reason, n in self.by_reason():
                out += [f"### {reason} ({n})", ""]
                for s in sorted(
                    (s for s in self.skipped if s.reason == reason), key=lambda s: s.key
                ):
                    detail = f": {_md(s.detail)}" if s.detail else ""
                    out.append(f"- `{_code(s.key)}`{detail}")
                out.append("")
        return "\n".join(map(one_line, out)).rstrip("\n") + "\n"


def _code(text: str) -> str:
    return text.replace("`", "'")


def _md(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


# -- writing ------------------------------------------------------------------------------


class OutputError(Exception):
    """The output directory cannot be written (exit 2)."""


def prepare_output(out: Path, force: bool) -> None:
    """`out` exists afterwards; refuse a non-empty directory unless `force`."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(
            f"{out} is not empty: choose a new directory, or pass --force to overwrite "
            "the files the import writes"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror or exc}") from None


def write_files(
    out: Path, files: Mapping[str, str], protected: Collection[FileId] = ()
) -> list[str]:
    """Write `files` (relative path -> text) below `out`, sorted; returns the paths.
    A file in `protected` (the import's input) is never replaced."""
    written = []
    for rel in sorted(files):
        path = out / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, files[rel].encode("utf-8"), protected=protected,
                         what="the file being imported")  # fmt: skip
        except OSError as exc:
            raise OutputError(error_text(exc)) from None
        written.append(rel)
    return written


def finish(
    out: Path, files: dict[str, str], report: Report, protected: Collection[FileId] = ()
) -> None:
    """Write the catalog files and the report (which lists them)."""
    report.files = sorted([*files, REPORT_FILE])
    write_files(out, {**files, REPORT_FILE: report.markdown()}, protected)


def join_names(names: Iterable[str], limit: int = 8) -> str:
    items = sorted(set(names))
    shown = ", ".join(f"`{n}`" for n in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
