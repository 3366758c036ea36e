"""Secret-shaped text never leaves the compiler whole: applied to every diagnostic message
(`Sink.emit`), again by every reporter, and to every source line a reporter prints."""

from __future__ import annotations

import re
from collections.abc import Callable

# (label, pattern). Patterns are anchored on distinctive prefixes so ordinary text never matches.
KNOWN = [
    ("an Anthropic API key", r"sk-ant-[A-Za-z0-9_\-]{20,}"),
    ("an OpenAI-style API key", r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    ("an AWS access key id", r"(?:AKIA|ASIA)[0-9A-Z]{16}"),
    ("a private key", r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"),
    ("a Google API key", r"AIza[0-9A-Za-z_\-]{35}"),
    ("a GitHub token", r"gh[pousr]_[A-Za-z0-9]{36,}"),
    ("a Groq API key", r"gsk_[A-Za-z0-9]{20,}"),
    ("an xAI API key", r"xai-[A-Za-z0-9]{20,}"),
    ("a Hugging Face token", r"hf_[A-Za-z0-9]{30,}"),
    ("a Slack token", r"xox[abprs]-[A-Za-z0-9\-]{10,}"),
    ("a JSON Web Token", r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*"),
]
ANY_KNOWN = re.compile("|".join(f"(?P<k{i}>{p})" for i, (_, p) in enumerate(KNOWN)))
# `scheme://userinfo@`: the userinfo ends at the last `@` before the host's end.
URL_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://(?P<userinfo>[^\s/?#\"'`<>\\]+)@"
)
# An HTTP Authorization value: the scheme word stays, the credential goes.
AUTH_VALUE = re.compile(r"\b(?:Bearer|Basic)\s+(?P<credential>[A-Za-z0-9\-._~+/]{8,}=*)")
KEEP = 4  # characters of a long secret that stay visible, to recognise which one it was
SHORT = 16  # a shorter secret shows no characters at all


def masked(value: str) -> str:
    shown = value[:KEEP] if len(value) >= SHORT else ""
    return f"{shown}…({len(value)} chars)"


def _swap(m: re.Match[str], group: str, replace: Callable[[str], str]) -> str:
    start, end = m.span(group)
    whole = m.group(0)
    base = m.start(0)
    return whole[: start - base] + replace(m.group(group)) + whole[end - base :]


def mask(text: str) -> str:
    """Known secret formats shortened to a prefix and a length; URL credentials and
    Authorization values replaced by `****`."""
    if not text:
        return text
    text = ANY_KNOWN.sub(lambda m: masked(m.group(0)), text)
    text = URL_USERINFO.sub(lambda m: _swap(m, "userinfo", _hidden), text)
    return AUTH_VALUE.sub(lambda m: _swap(m, "credential", _hidden), text)


def _hidden(_secret: str) -> str:
    return "****"


def _stars(secret: str) -> str:
    keep = KEEP if len(secret) >= SHORT else 0
    return secret[:keep] + "*" * (len(secret) - keep)


def mask_same_length(line: str, spans: list[tuple[int, int]]) -> str:
    """Hide secrets in a source line without moving columns.

    Known formats, URL credentials and Authorization values are starred wherever they
    appear; each given 1-based column span (end exclusive, 0 = to the end of the line)
    holding no known format is starred too: that is how a literal under a credential key
    is hidden.
    """
    chars = list(ANY_KNOWN.sub(lambda m: _stars(m.group(0)), line))
    for pattern, group in ((URL_USERINFO, "userinfo"), (AUTH_VALUE, "credential")):
        for m in pattern.finditer(line):
            for i in range(*m.span(group)):
                chars[i] = "*"
    for start, end in spans:
        stop = len(line) if end <= 0 else min(end - 1, len(line))
        if ANY_KNOWN.search(line, max(start - 1, 0), stop):
            continue
        first = max(start - 1, 0)
        keep = KEEP if stop - first >= SHORT else 0
        for i in range(first + keep, stop):
            chars[i] = "*"
    return "".join(chars)
