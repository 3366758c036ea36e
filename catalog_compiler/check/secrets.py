"""Literal secrets anywhere in the catalog: known key formats, and high-entropy strings in
credential-like fields. A found value is never echoed back in full (see `mask`)."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from catalog_compiler.diagnostics import Sink, Span
from catalog_compiler.positions import Pos, PosTree, own_pos
from catalog_compiler.redact import ANY_KNOWN, KNOWN, masked

if TYPE_CHECKING:
    from catalog_compiler.yamlparse import Document

_CREDENTIAL_KEY = re.compile(
    r"(?i)(api[_-]?key|secret|token|passw(or)?d|authorization|credential|private[_-]?key|"
    r"access[_-]?key)"
)
_MIN_ENTROPY_LEN = 16
MIN_SECRET_LEN = 15  # the shortest known format (a Slack token); most strings are shorter
_MIN_ENTROPY_BITS = 3.0


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


def classify(text: str, key: str | None) -> tuple[str, str] | None:
    """(what kind of secret, the secret itself) for `text`, or None.

    `key` is the mapping key the text sits under: high-entropy values count only there."""
    if len(text) < MIN_SECRET_LEN:
        return None
    found = ANY_KNOWN.search(text)
    if found:
        return KNOWN[int(found.lastgroup[1:])][0], found.group(0)  # type: ignore[index]
    value = text.removeprefix("Bearer ")
    if key is not None and _CREDENTIAL_KEY.search(key) and looks_random(value):
        return "a high-entropy value in a credential field", value
    return None


def _report(sink: Sink, file: str, pos: Pos, found: tuple[str, str]) -> None:
    label, secret = found
    sink.emit(
        "E0400",
        f"literal secret: this looks like {label} (`{masked(secret)}`)",
        Span.at(file, pos),
        help="move it to the environment or a file and write `{env: NAME}` "
        "or `{file: PATH}`; then rotate the leaked secret",
    )


def scan_document(doc: Document, sink: Sink) -> None:
    """Report every literal secret in one document, values and keys, at its position."""
    stack: list[tuple[Any, PosTree, str | None]] = [(doc.data, doc.pos, None)]
    seen: set[int] = set()
    while stack:
        value, tree, key = stack.pop()
        if isinstance(value, str):
            found = classify(value, key)
            if found:
                _report(sink, doc.file, own_pos(tree), found)
            continue
        if not isinstance(value, (dict, list)) or id(value) in seen:
            continue  # a scalar, or an alias already scanned where its anchor is
        seen.add(id(value))
        children = tree[1] if tree is not None and len(tree) == 2 else None
        if isinstance(value, dict):
            for k, v in value.items():
                child = children.get(k) if isinstance(children, dict) else None
                found = classify(k, None)
                if found:
                    _report(sink, doc.file, child[0] if child else own_pos(tree), found)
                stack.append((v, child[1] if child else tree, k))
        else:
            for i, v in enumerate(value):
                ok = isinstance(children, list) and i < len(children)
                stack.append((v, children[i] if ok else tree, key))  # type: ignore[index]
