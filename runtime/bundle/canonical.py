"""The bundle's canonical JSON and its digest (SPEC §4, docs/bundle.md), so any language can
verify it:

    body   = JCS(bundle_without_digest)        RFC 8785, UTF-8 bytes
    digest = "sha256:" + hex(sha256(body))

JCS (RFC 8785): object members sorted by the UTF-16 code units of their names, no
whitespace, strings escaped as JSON requires and nothing more (`"`, `\\`, and U+0000-U+001F,
those without a short form as lowercase `\\u00xx`), numbers as ECMAScript's
`Number.prototype.toString` writes them (`1e-7`, `1e+21`, `0.1`, `-0` as `0`). Integers beyond
±(2^53-1) (unless written as ECMAScript writes a whole double, such as 1e20 in full), NaN,
infinities, non-string keys and lone surrogates have no canonical form and are refused.

Bundles of format `catalog-bundle/1` were sealed with Python's
`json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`; `legacy` keeps
verifying them (and `seal` still writes one for a body that says `/1`, for tests).

Speed: a subtree without floats and whose keys are ASCII serializes identically with the C
JSON encoder, so only the containers on the way to a float (or a non-ASCII key) are written
here in Python.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from typing import Any

FORMAT = "catalog-bundle/2"
FORMAT_PREFIX = "catalog-bundle/"
FORMAT_VERSION = 2
LEGACY_FORMAT = "catalog-bundle/1"
READABLE_VERSIONS = (1, 2)
MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 200  # containers inside containers; deeper values are refused, never recursed

_C = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)
_encode_string = json.encoder.encode_basestring  # the C function: JSON's escapes, no others


class CanonicalError(ValueError):
    """The value has no canonical JSON form (RFC 8785)."""


# -- numbers ------------------------------------------------------------------------------


def js_number(value: float) -> str:
    """ECMAScript Number::toString (ECMA-262 §6.1.6.1.20) of a finite double.

    Python's repr gives the shortest digits that round-trip, the same digits ECMAScript
    picks; only the layout differs (`1e-07` vs `1e-7`, `1e+16` vs `10000000000000000`)."""
    if not math.isfinite(value):
        raise CanonicalError(f"{value!r} has no JSON form (RFC 8785 refuses NaN and infinities)")
    if value == 0:
        return "0"  # also -0
    text = repr(value)
    sign = "-" if text.startswith("-") else ""
    mantissa, _, exp = text.lstrip("-").partition("e")
    whole, _, frac = mantissa.partition(".")
    joined = whole + frac
    digits = joined.lstrip("0")
    n = len(whole) + (int(exp) if exp else 0) - (len(joined) - len(digits))
    digits = digits.rstrip("0")  # value = 0.digits × 10^n
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + digits
    else:
        e = n - 1
        out = (digits if k == 1 else digits[0] + "." + digits[1:]) + ("e+" if e >= 0 else "e-")
        out += str(abs(e))
    return sign + out


def is_double_text(value: int) -> bool:
    """Is this integer how ECMAScript writes a double (1e20 -> 100000000000000000000)? JCS
    writes whole doubles below 1e21 in full, and Python reads them back as integers."""
    return abs(value) < 10**21 and js_number(float(value)) == str(value)


def _int(value: int) -> None:
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER and not is_double_text(value):
        raise CanonicalError(
            f"integer {str(value)[:30]} is beyond ±(2^53-1): JSON numbers are IEEE doubles"
        )


# -- the scan: which containers the C encoder cannot write canonically ---------------------


def _scan(value: Any, depth: int, impure: set[int]) -> bool:
    """Check `value`; True when the C encoder writes it exactly as JCS does. The ids of
    containers that must be written here are added to `impure`."""
    if depth > MAX_DEPTH:
        raise CanonicalError(f"nested deeper than {MAX_DEPTH} levels")
    children: Iterable[Any]
    if isinstance(value, dict):
        try:
            pure = all(map(str.isascii, value))  # code point order = UTF-16 order
        except TypeError:
            raise CanonicalError("object member names must be strings") from None
        children = value.values()
    elif isinstance(value, (list, tuple)):
        pure = True
        children = value
    else:
        return _scalar(value)
    for child in children:
        kind = type(child)
        if kind is str or kind is bool or child is None:
            continue
        if kind is int:
            _int(child)
        elif not _scan(child, depth + 1, impure):
            pure = False
    if not pure:
        impure.add(id(value))
    return pure


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        js_number(value)  # refuses NaN and infinities
        return False
    if isinstance(value, (bool, str)) or value is None:
        return True
    if isinstance(value, int):
        _int(value)
        return True
    raise CanonicalError(f"a {type(value).__name__} has no JSON form")


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _emit(value: Any, impure: set[int], out: list[str]) -> None:
    if isinstance(value, float):
        out.append(js_number(value))
    elif id(value) not in impure:
        out.append(_C.encode(value))
    elif isinstance(value, dict):
        keys = sorted(value) if all(map(str.isascii, value)) else sorted(value, key=_utf16)
        out.append("{")
        for i, key in enumerate(keys):
            out.append(("," if i else "") + _encode_string(key) + ":")
            _emit(value[key], impure, out)
        out.append("}")
    else:
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _emit(item, impure, out)
        out.append("]")


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalError("a string holds a lone surrogate: it has no UTF-8 form") from None


def jcs(value: Any) -> bytes:
    """The RFC 8785 canonical form of a JSON value (dicts, lists, tuples, str, int, float,
    bool, None), as UTF-8 bytes; CanonicalError if it has none."""
    impure: set[int] = set()
    if _scan(value, 0, impure):
        return _utf8(_C.encode(value))
    out: list[str] = []
    _emit(value, impure, out)
    return _utf8("".join(out))


def dumps(value: Any) -> str:
    """The canonical form as text."""
    return jcs(value).decode("utf-8")


def legacy(value: Any) -> bytes:
    """The canonical form of `catalog-bundle/1` (Python's sorted, compact json.dumps)."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise CanonicalError(f"no canonical form: {exc}") from None
    return _utf8(text)


# -- bundles ------------------------------------------------------------------------------


def canonical_for(fmt: Any) -> Any:
    """The canonicalization a bundle of format `fmt` was sealed with."""
    return legacy if fmt == LEGACY_FORMAT else jcs


def body_digest(bundle_without_digest: dict[str, Any]) -> str:
    canonical = canonical_for(bundle_without_digest.get("format"))
    return "sha256:" + hashlib.sha256(canonical(bundle_without_digest)).hexdigest()


def seal(bundle_without_digest: dict[str, Any]) -> bytes:
    """The bundle file: the canonical body with its digest inserted (itself canonical).

    Each top-level member is serialized once; the body and the sealed file are the same
    members joined with and without `digest`. A `digest` already in the body is replaced.
    A body whose `format` is `catalog-bundle/1` is sealed as that format was."""
    if not isinstance(bundle_without_digest, dict) or not all(
        isinstance(k, str) for k in bundle_without_digest
    ):
        raise CanonicalError("a bundle body is a JSON object")
    canonical = canonical_for(bundle_without_digest.get("format"))
    members = {
        k: canonical(k) + b":" + canonical(v)
        for k, v in bundle_without_digest.items()
        if k != "digest"
    }
    order = _utf16 if canonical is jcs else None
    body = b"{" + b",".join(members[k] for k in sorted(members, key=order)) + b"}"
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    members["digest"] = canonical("digest") + b":" + canonical(digest)
    return b"{" + b",".join(members[k] for k in sorted(members, key=order)) + b"}"
