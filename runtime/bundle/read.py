"""Reading a bundle file before anything is built from it: bytes within a bound from a
regular file only, strict JSON, a format this runtime reads, and a digest that matches.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from runtime.bundle.canonical import (
    FORMAT,
    FORMAT_PREFIX,
    FORMAT_VERSION,
    READABLE_VERSIONS,
    CanonicalError,
    body_digest,
)
from runtime.bundle.errors import (
    BundleFormatError,
    BundleIntegrityError,
    BundleReadError,
    clip,
)

MAX_BUNDLE_BYTES = 64 * 2**20  # 13x the 5,000-document benchmark bundle
_DIGEST_MEMBER = re.compile(rb'"digest":"sha256:[0-9a-f]{64}",?')


def read_bounded(source: str | Path, max_bytes: int) -> bytes:
    """A regular file's bytes, at most `max_bytes`: a FIFO, a device or /dev/zero is refused
    before it can block or fill memory. Messages name the path clipped (a caller that passed
    a bundle's text as its path got all of it back in the error)."""
    name = clip(str(source), 300)
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BundleReadError(f"cannot open the bundle {name}: {exc.strerror}") from None
    except ValueError:  # a NUL in the path: no file has that name
        raise BundleReadError("cannot open the bundle: its path holds a NUL character") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BundleReadError(f"the bundle {name} is not a regular file")
        if info.st_size > max_bytes:
            raise BundleReadError(
                f"the bundle {name} is {info.st_size:,} bytes (at most {max_bytes:,})"
            )
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)  # a file that grew past the bound is refused by the caller
    except OSError as exc:
        raise BundleReadError(f"cannot read the bundle {name}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _no_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for a double")
    return value


def parse(raw: bytes) -> dict[str, Any]:
    """Strict JSON in UTF-8: no NaN/Infinity, no number beyond a double, a bounded depth."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError as exc:
        raise BundleIntegrityError(f"not a bundle: not UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise BundleIntegrityError("not a bundle: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, a constant, a 5,000-digit integer
        raise BundleIntegrityError(
            f"not a bundle: invalid JSON ({str(exc)[:200]}); the file may be truncated"
        ) from None
    if not isinstance(data, dict):
        raise BundleIntegrityError("not a bundle: the top level is not a JSON object")
    return data


def check_format(fmt: Any) -> None:
    if isinstance(fmt, str) and fmt.startswith(FORMAT_PREFIX):
        version = fmt[len(FORMAT_PREFIX) :]
        if version.isdigit() and version == str(int(version)):
            if int(version) in READABLE_VERSIONS:
                return
            if int(version) > FORMAT_VERSION:
                raise BundleFormatError(
                    f"bundle format `{fmt}` is newer than this runtime reads ({FORMAT}): "
                    "upgrade the runtime before deploying this bundle",
                    "format",
                )
    shown = fmt[:80] if isinstance(fmt, str) else fmt
    raise BundleFormatError(f"unknown bundle format `{shown}`: expected `{FORMAT}`", "format")


def verify_digest(raw: bytes, data: dict[str, Any]) -> str:
    claimed = data.get("digest")
    if not isinstance(claimed, str) or not claimed.startswith("sha256:"):
        raise BundleIntegrityError(
            "bundle has no `digest`: it was not written by catalogc", "digest"
        )
    # Fast path: a canonical file minus its digest member *is* the canonical body. Files
    # with `\u` escapes take the slow path, which refuses lone surrogates.
    found = _DIGEST_MEMBER.search(raw) if b"\\u" not in raw else None
    if found is not None:
        whole, end = memoryview(raw), len(raw)
        while end > found.end() and raw[end - 1] == 0x0A:  # a trailing newline is not hashed
            end -= 1
        sha = hashlib.sha256(whole[: found.start()])
        sha.update(whole[found.end() : end])
        if "sha256:" + sha.hexdigest() == claimed:
            return claimed
    body = {k: v for k, v in data.items() if k != "digest"}
    try:
        actual = body_digest(body)
    except CanonicalError as exc:
        raise BundleIntegrityError(f"bundle has no canonical form: {exc}") from None
    if actual != claimed:
        raise BundleIntegrityError(
            "bundle digest does not match its content: it was modified or damaged after "
            "compilation; recompile it with `catalogc compile`",
            "digest",
        )
    return claimed
