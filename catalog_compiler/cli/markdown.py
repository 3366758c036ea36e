"""Catalog text in Markdown (a pull-request comment, a report): names shown as code spans they
cannot close, and table cells that neither split their row nor carry HTML, links or images."""

from __future__ import annotations

import re

BACKTICKS = re.compile("`+")


def code_span(name: str) -> str:
    """A code span the name cannot close (CommonMark: a span ends only at a run of exactly
    its fence's length, so the fence outruns every backtick run in the name)."""
    longest = max((len(run) for run in BACKTICKS.findall(name)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space from each end of a span that is not all spaces: padding
    # keeps a name that starts or ends with ` or a space whole.
    edges = longest or name.startswith(" ") or name.endswith(" ")
    pad = " " if edges and name.strip(" ") else ""
    return f"{fence}{pad}{name}{pad}{fence}".replace("|", "\\|")


def cell(text: str) -> str:
    """A table cell of catalog text: no pipe or line break splits the row, and no `<` or `[`
    opens raw HTML, an image or a link."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace(
        "<", "&lt;").replace("[", "\\[")  # fmt: skip
