"""Secret-shaped text never leaves the compiler whole: applied to every diagnostic message
and to every source line a reporter prints."""

from __future__ import annotations

import re

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
KEEP = 4  # characters of a secret that stay visible, to recognise which one it was


def masked(value: str) -> str:
    return f"{value[:KEEP]}…({len(value)} chars)"


def mask(text: str) -> str:
    """Known secret formats shortened to a prefix and a length."""
    if not text:
        return text
    return ANY_KNOWN.sub(lambda m: masked(m.group(0)), text)


def mask_same_length(line: str, spans: list[tuple[int, int]]) -> str:
    """Hide secrets in a source line without moving columns.

    Known formats are starred wherever they appear; each given 1-based column span
    (end exclusive, 0 = to the end of the line) holding no known format is starred too:
    that is how a high-entropy value under a credential key is hidden.
    """
    chars = list(ANY_KNOWN.sub(lambda m: m.group(0)[:KEEP] + "*" * (len(m.group(0)) - KEEP), line))
    for start, end in spans:
        stop = len(line) if end <= 0 else min(end - 1, len(line))
        if ANY_KNOWN.search(line, max(start - 1, 0), stop):
            continue
        for i in range(max(start - 1, 0) + KEEP, stop):
            chars[i] = "*"
    return "".join(chars)
