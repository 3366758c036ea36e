"""Who is calling: a workspace API key, sent as `Authorization: Bearer <key>` or
`x-portkey-api-key`, whose sha256 the catalog lists. The presented key is hashed first, so
the table lookup and the final constant-time comparison only ever see digests."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.bundle import Bundle

MAX_KEY = 512  # longer "keys" are refused before hashing


@dataclass(frozen=True, slots=True)
class Caller:
    workspace: str
    key_name: str


class KeyIndex:
    def __init__(self, bundle: Bundle) -> None:
        self._by_digest: dict[bytes, tuple[bytes, Caller]] = {}
        for slug, ws in sorted(bundle.workspaces.items()):
            for key in ws.api_keys:
                digest = bytes.fromhex(str(key["sha256"]))
                self._by_digest[digest] = (digest, Caller(slug, str(key.get("name", ""))))

    def __len__(self) -> int:
        return len(self._by_digest)

    def caller(self, headers: Mapping[str, str]) -> Caller | None:
        key = presented_key(headers)
        if key is None:
            return None
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        stored, caller = self._by_digest.get(digest, (b"", None))
        # the lookup is by digest; compare again in constant time before trusting it
        if caller is None or not hmac.compare_digest(stored, digest):
            return None
        return caller


def presented_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("x-portkey-api-key")
    if key is None:
        auth = headers.get("authorization")
        if auth is None:
            return None
        scheme, _, key = auth.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
    key = key.strip()
    if not key or len(key) > MAX_KEY:
        return None
    return key
