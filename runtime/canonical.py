"""The bundle's canonical JSON and its digest (SPEC §4), so any language can verify it:

body   = json.dumps(bundle_without_digest, sort_keys=True, separators=(",", ":"),
                    ensure_ascii=False).encode("utf-8")
digest = "sha256:" + hex(sha256(body))
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

FORMAT = "catalog-bundle/1"
FORMAT_PREFIX = "catalog-bundle/"
FORMAT_VERSION = 1


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def body_digest(bundle_without_digest: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(dumps(bundle_without_digest).encode("utf-8")).hexdigest()


def seal(bundle_without_digest: dict[str, Any]) -> bytes:
    """The bundle file: the canonical body with its digest inserted (itself canonical).

    Each top-level member is serialized once; the body and the sealed file are the same
    members joined with and without `digest`, which is exactly what `dumps` would give."""
    members = {dumps(k): dumps(v) for k, v in bundle_without_digest.items()}
    body = "{" + ",".join(f"{k}:{members[k]}" for k in sorted(members)) + "}"
    digest = "sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest()
    members[dumps("digest")] = dumps(digest)
    return ("{" + ",".join(f"{k}:{members[k]}" for k in sorted(members)) + "}").encode("utf-8")
