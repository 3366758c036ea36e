"""Literal secrets anywhere in a catalog document, keys and values, at any depth.

The rules (docs/diagnostics.md, E0400 and E0402):
1. a known key format (`sk-…`, `AKIA…`, private keys, …) in any value or key;
2. credentials in a URL, in any value or key: `scheme://user:password@…` with a password,
   or `scheme://TOKEN@…` whose user part looks like a token (16+ characters, or 8+ with
   letters and digits); likewise a token-like `Bearer …`/`Basic …` value;
3. any literal (text or number) under a credential name: a key or header whose last word
   is password, secret, token, api key, access key, private key, client secret,
   authorization, cookie, credential … in any case and separator style (`apiKey`,
   `X-Api-Key`, `client_secret`), whatever its entropy — unless the field takes a secret
   reference, where the type check reports the literal itself;
4. a long high-entropy value under a key merely containing such a word;
5. a secret reference `{env:}`/`{file:}` under a credential name where nothing resolves it
   (params, metadata, headers): it would be sent as written (E0402).
`max_tokens`, `token_limit`, a URL without userinfo and the word "password" in a
description are none of these. A found value is never echoed (see `redact`).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from catalog_compiler.check.schema import names_unknown_field, type_at
from catalog_compiler.diagnostics import Sink, Span
from catalog_compiler.diagnostics.redact import ANY_KNOWN, AUTH_VALUE, KNOWN, URL_USERINFO, masked
from catalog_compiler.load.positions import Pos, PosTree, own_pos
from catalog_compiler.model.common import SecretRef
from catalog_compiler.model.documents import KINDS

if TYPE_CHECKING:
    from catalog_compiler.load.yamlparse import Document

Loc = tuple[str | int, ...]

_CREDENTIAL_KEY = re.compile(
    r"(?i)(api[_-]?key|secret|token|passw(or)?d|authorization|credential|private[_-]?key|"
    r"access[_-]?key)"
)
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
CREDENTIAL_WORDS = frozenset(
    {
        "password", "passwords", "passwd", "passphrase", "secret", "secrets", "token",
        "apikey", "credential", "credentials", "authorization", "cookie", "bearer",
    }
)  # fmt: skip
KEY_KINDS = frozenset(
    {
        "api", "private", "access", "secret", "auth", "signing", "account", "master",
        "session", "encryption", "subscription", "client", "service",
    }
)  # fmt: skip
_MIN_ENTROPY_LEN = 16
MIN_SECRET_LEN = 15  # the shortest known format (a Slack token); most strings are shorter
_MIN_ENTROPY_BITS = 3.0
REF_HELP = (
    "move it to the environment or a file and write `{env: NAME}` or `{file: PATH}`; "
    "then rotate the leaked secret"
)


def _header(loc: Loc) -> bool:
    """A custom header takes text or a reference: a credential-named one only a reference."""
    return len(loc) >= 2 and loc[-2] == "headers"


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


@functools.lru_cache(maxsize=4096)  # catalogs repeat a few hundred keys
def is_credential_name(key: str) -> bool:
    """`api_key`, `X-Api-Key`, `clientSecret`, `Authorization`: yes. `max_tokens`, `token_limit`,
    `key`: no. The *last* word decides, so a name that merely mentions a token is fine."""
    words = [w.lower() for w in _WORDS.findall(key)]
    if not words:
        return False
    if words[-1] in CREDENTIAL_WORDS:
        return True
    return words[-1] in ("key", "keys") and len(words) > 1 and words[-2] in KEY_KINDS


def _token_like(user: str) -> bool:
    has_letters = any(c.isalpha() for c in user)
    return len(user) >= 16 or (len(user) >= 8 and has_letters and any(c.isdigit() for c in user))


def url_credentials(text: str) -> str | None:
    """The userinfo of the first URL in `text` that carries a password or a token, or None."""
    for m in URL_USERINFO.finditer(text):
        user, colon, password = m.group("userinfo").partition(":")
        if (colon and password) or _token_like(user):
            return m.group("userinfo")
    return None


def auth_credential(text: str) -> str | None:
    """The credential of the first token-like `Bearer …`/`Basic …` value in `text`."""
    for m in AUTH_VALUE.finditer(text):
        if _token_like(m.group("credential")):
            return m.group("credential")
    return None


def classify(text: str, key: str | None) -> tuple[str, str] | None:
    """(what kind of secret, the secret itself) for `text`, or None.

    `key` is the mapping key the text sits under: high-entropy values count only there."""
    if "://" in text:
        userinfo = url_credentials(text)
        if userinfo is not None:
            return "credentials in a URL", userinfo
    if "Bearer" in text or "Basic" in text:
        credential = auth_credential(text)
        if credential is not None:
            return "an Authorization value", credential
    if len(text) < MIN_SECRET_LEN:
        return None
    found = ANY_KNOWN.search(text)
    if found:
        return KNOWN[int(found.lastgroup[1:])][0], found.group(0)  # type: ignore[index]
    value = text.removeprefix("Bearer ")
    if key is not None and _CREDENTIAL_KEY.search(key) and looks_random(value):
        return "a high-entropy value in a credential field", value
    return None


def is_secret_ref(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (kind, name), = value.items()  # fmt: skip
    return kind in ("env", "file") and isinstance(name, str)


class _Scanner:
    def __init__(self, doc: Document, sink: Sink) -> None:
        self.doc = doc
        self.sink = sink
        kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        self.cls = KINDS.get(kind) if isinstance(kind, str) else None

    def takes_ref(self, loc: Loc) -> bool:
        return self.cls is not None and type_at(self.cls, loc) is SecretRef

    def misplaced(self, loc: Loc) -> bool:
        """Under a misspelt field (`credential:`): the typo is the one report (E0202)."""
        return self.cls is not None and names_unknown_field(self.cls, loc)

    def report(self, pos: Pos, message: str, code: str = "E0400", help: str = REF_HELP) -> None:
        self.sink.emit(code, message, Span.at(self.doc.file, pos), help=help)

    def found(self, pos: Pos, found: tuple[str, str]) -> None:
        label, secret = found
        self.report(pos, f"literal secret: this looks like {label} (`{masked(secret)}`)")

    def literal(self, pos: Pos, key: str) -> None:
        self.report(pos, f"literal secret: `{key}` holds a credential written into the catalog")

    def under_credential_name(self, value: Any, key: str, loc: Loc, pos: Pos) -> None:
        """Rules 3 and 5 for a value that is not text: a number, or a reference."""
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            if not self.takes_ref(loc) or _header(loc):
                self.literal(pos, key)
        elif is_secret_ref(value) and not self.takes_ref(loc) and not self.misplaced(loc):
            self.report(
                pos,
                f"`{key}` holds a secret reference, but nothing resolves one here: "
                "it would be sent as written",
                code="E0402",
                help="only an integration's `credentials` and a config target's `api_key`, "
                "AWS keys, `vertex_service_account_json` and `Authorization` take "
                "`{env:}`/`{file:}`: put the credential there",
            )

    def scan(self) -> None:
        """Report every literal secret in the document, values and keys, at its position."""
        doc = self.doc
        stack: list[tuple[Any, PosTree, str | None, Loc]] = [(doc.data, doc.pos, None, ())]
        seen: set[int] = set()
        while stack:
            value, tree, key, loc = stack.pop()
            named = key is not None and is_credential_name(key)
            if isinstance(value, str):
                found = classify(value, key)
                if found:
                    self.found(own_pos(tree), found)
                elif named and value.strip() and (not self.takes_ref(loc) or _header(loc)):
                    self.literal(own_pos(tree), str(key))
                continue
            if named and not isinstance(value, list):
                self.under_credential_name(value, str(key), loc, own_pos(tree))
            if not isinstance(value, (dict, list)) or id(value) in seen:
                continue  # a scalar, or an alias already scanned where its anchor is
            seen.add(id(value))
            children = tree[1] if tree is not None and len(tree) == 2 else None
            if isinstance(value, dict):
                for k, v in value.items():
                    child = children.get(k) if isinstance(children, dict) else None
                    found = classify(k, None)
                    if found:
                        self.found(child[0] if child else own_pos(tree), found)
                    # a query operator (`$eq`, `$in`) compares the field it sits under
                    inherited = key if k.startswith("$") and key is not None else k
                    stack.append((v, child[1] if child else tree, inherited, (*loc, k)))
            else:
                for i, v in enumerate(value):
                    ok = isinstance(children, list) and i < len(children)
                    item_tree = children[i] if ok else tree  # type: ignore[index]
                    stack.append((v, item_tree, key, (*loc, i)))


def scan_document(doc: Document, sink: Sink) -> None:
    _Scanner(doc, sink).scan()
