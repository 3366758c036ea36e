"""Literal secrets anywhere in the catalog: known key formats, and high-entropy strings in
credential-like fields. A found value is never echoed back in full (see `mask`)."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from catalog_compiler.diagnostics import Sink, Span
from catalog_compiler.positions import PosTree, own_pos
from catalog_compiler.yamlparse import Document

# (label, pattern). Patterns are anchored on distinctive prefixes so ordinary text never matches.
_KNOWN = [
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
_ANY_KNOWN = re.compile("|".join(f"(?P<k{i}>{p})" for i, (_, p) in enumerate(_KNOWN)))
_CREDENTIAL_KEY = re.compile(
    r"(?i)(api[_-]?key|secret|token|passw(or)?d|authorization|credential|private[_-]?key|"
    r"access[_-]?key)"
)
_MIN_ENTROPY_LEN = 16
_MIN_ENTROPY_BITS = 3.0


def mask(text: str) -> str:
    """A secret-safe rendering: known secret formats shortened to a prefix and a length."""
    return _ANY_KNOWN.sub(lambda m: _masked(m.group(0)), text)


def mask_same_length(line: str, spans: list[tuple[int, int]]) -> str:
    """Hide secrets in a source line without moving columns: known formats, plus the given
    1-based column spans (end exclusive, 0 = to the end of the line), keep 4 characters."""
    chars = list(_ANY_KNOWN.sub(lambda m: m.group(0)[:4] + "*" * (len(m.group(0)) - 4), line))
    for start, end in spans:
        stop = len(chars) if end <= 0 else min(end - 1, len(chars))
        for i in range(max(start - 1, 0) + 4, stop):
            chars[i] = "*"
    return "".join(chars)


def _masked(value: str) -> str:
    return f"{value[:4]}…({len(value)} chars)"


def entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_random(text: str) -> bool:
    """Long, high-entropy, mixed-class strings, as API keys and tokens are."""
    if len(text) < _MIN_ENTROPY_LEN or " " in text.strip():
        return False
    classes = sum(
        (
            any(c.islower() for c in text),
            any(c.isupper() for c in text),
            any(c.isdigit() for c in text),
        )
    )
    return classes >= 2 and entropy(text) >= _MIN_ENTROPY_BITS


def classify(text: str, key: str | None) -> str | None:
    """What kind of secret `text` is, or None. `key` is the mapping key it sits under."""
    found = _ANY_KNOWN.search(text)
    if found:
        return _KNOWN[int(found.lastgroup[1:])][0]  # type: ignore[index]
    if (
        key is not None
        and _CREDENTIAL_KEY.search(key)
        and looks_random(text.removeprefix("Bearer "))
    ):
        return "a high-entropy value in a credential field"
    return None


def scan_document(doc: Document, sink: Sink) -> None:
    """Report every literal secret in one document, at its position."""
    stack: list[tuple[Any, PosTree, str | None]] = [(doc.data, doc.pos, None)]
    seen: set[int] = set()
    while stack:
        value, tree, key = stack.pop()
        if isinstance(value, str):
            label = classify(value, key)
            if label:
                sink.emit(
                    "E0400",
                    f"literal secret: this looks like {label} (`{_masked(value)}`)",
                    Span.at(doc.file, own_pos(tree)),
                    help="move it to the environment or a file and write `{env: NAME}` "
                    "or `{file: PATH}`; then rotate the leaked secret",
                )
        elif isinstance(value, (dict, list)):
            if id(value) in seen:  # an alias: already scanned where its anchor is
                continue
            seen.add(id(value))
            children = tree[1] if tree is not None and len(tree) == 2 else None
            if isinstance(value, dict):
                for k, v in value.items():
                    child = children.get(k) if isinstance(children, dict) else None
                    stack.append((v, child[1] if child else tree, k))
            else:
                for i, v in enumerate(value):
                    child = (
                        children[i] if isinstance(children, list) and i < len(children) else tree
                    )
                    stack.append((v, child, key))
