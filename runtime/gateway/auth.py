"""Who is calling: a workspace API key, sent as `Authorization: Bearer <key>`,
`x-portkey-api-key` or `x-api-key`, whose sha256 the catalog lists (a `disabled` key is
refused like an unknown one). The presented key is hashed first, so the table lookup and the final
constant-time comparison only ever see digests. An organization admin key (the
Organization's `admin_keys`) is a separate table: it reads usage, it never routes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.bundle.load import Bundle

MAX_KEY = 512  # longer "keys" are refused before hashing


@dataclass(frozen=True, slots=True)
class Caller:
    workspace: str  # "" for an organization admin
    key_name: str
    admin: bool = False


Table = dict[bytes, tuple[bytes, Caller]]


class KeyIndex:
    def __init__(self, bundle: Bundle) -> None:
        self._by_digest: Table = {}
        self._admins: Table = {}
        for slug, ws in sorted(bundle.workspaces.items()):
            _index(self._by_digest, ws.api_keys, slug, admin=False)
        _index(self._admins, bundle.organization.get("admin_keys") or (), "", admin=True)

    def __len__(self) -> int:
        return len(self._by_digest)

    def caller(self, headers: Mapping[str, str]) -> Caller | None:
        """The workspace whose key the request presents (None: no such enabled key)."""
        return _find(self._by_digest, headers)

    def admin(self, headers: Mapping[str, str]) -> Caller | None:
        """The organization admin whose key the request presents."""
        return _find(self._admins, headers) if self._admins else None


def _index(table: Table, keys: Iterable[Mapping[str, Any]], workspace: str, admin: bool) -> None:
    for key in keys:
        if key.get("disabled"):
            continue
        digest = bytes.fromhex(str(key["sha256"]))
        table[digest] = (digest, Caller(workspace, str(key.get("name", "")), admin))


def _find(table: Table, headers: Mapping[str, str]) -> Caller | None:
    key = presented_key(headers)
    if key is None:
        return None
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
    stored, caller = table.get(digest, (b"", None))
    # the lookup is by digest; compare again in constant time before trusting it
    if caller is None or not hmac.compare_digest(stored, digest):
        return None
    return caller


def presented_key(headers: Mapping[str, str]) -> str | None:
    """`x-portkey-api-key`, else `Authorization: Bearer`, else `x-api-key` (what the
    anthropic SDK sends its `api_key` as: a workspace key there works unchanged; never
    passed upstream, like any credential header). The header used must come once: two of
    it are no key, not the first of them. Only HTTP's spaces and tabs are trimmed (a key
    and a no-break space was the key)."""
    name = "x-portkey-api-key"
    key = headers.get(name)
    if key is None:
        name = "authorization"
        auth = headers.get(name)
        if auth is None:
            name = "x-api-key"
            key = headers.get(name)
            if key is None:
                return None
        else:
            scheme, _, key = auth.strip(OWS).partition(" ")
            if scheme.lower() != "bearer":
                return None
    key = key.strip(OWS)
    if not key or len(key) > MAX_KEY:
        return None
    getall = getattr(headers, "getall", None)  # a multidict: the request's own headers
    if getall is not None and len(getall(name)) > 1:
        return None
    return key


OWS = " \t"  # RFC 9110 5.6.3
