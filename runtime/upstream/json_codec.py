"""JSON on the request path: msgspec's parser and encoder where they give exactly what the
standard library gives, and the standard library for everything else.

`loads`: msgspec accepts a strict subset of what `json.loads` accepts (RFC 8259 in UTF-8)
and gives the same values for it. Whatever it refuses (NaN, Infinity, numbers beyond the
float range, lone surrogates, UTF-16 or UTF-32, a byte-order mark, deep nesting) goes to
`json.loads`, which accepts or refuses it as it always did: the language the gateway
accepts and its error answers stay the standard library's, only faster in the common case.

`dumps`: compact JSON of plain values (what a JSON parser or `plain_json` gives). msgspec
writes NaN and Infinity as `null` where the standard library refuses them, so an output
holding `null` is encoded again by the standard library; lone surrogates, which UTF-8
cannot carry, make msgspec raise, and the standard library escapes them. msgspec writes
other characters as UTF-8, not `\\u` escapes: the same JSON value, fewer bytes.

The law (same values, same refusals) is tested in tests/upstream/test_json_codec.py.
Without msgspec installed (it comes with the `gateway` extra) everything takes the
standard library's path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_decode: Callable[[bytes | str], Any] | None
_encode: Callable[[Any], bytes] | None
_encode_line: Callable[[Any], bytes] | None
try:
    import msgspec
except ImportError:  # pragma: no cover - the gateway extra installs it
    _decode = _encode = _encode_line = None
else:
    _decode = msgspec.json.Decoder().decode
    _encode = msgspec.json.Encoder().encode
    _encode_line = msgspec.json.Encoder(enc_hook=str).encode

_stdlib_line = json.JSONEncoder(ensure_ascii=False, default=str).encode


def loads(data: bytes | str) -> Any:
    """`json.loads(data)`: the same value, or the same exception (ValueError, RecursionError)."""
    if _decode is not None:
        try:
            return _decode(data)
        except Exception:  # whatever msgspec refuses, the stdlib decides
            pass
    return json.loads(data)


def _not_finite(text: str) -> float:
    raise ValueError(f"{text} is not a finite number")


def _finite(text: str) -> float:
    number = float(text)
    if number - number != 0:  # inf or nan: 1e999 reads as inf
        raise ValueError(f"{text} is not a finite number")
    return number


def loads_finite(data: bytes | str) -> Any:
    """As `loads`, but NaN, Infinity and numbers beyond the float range are refused
    (ValueError): what an upstream sends must be JSON that can be written again."""
    if _decode is not None:
        try:
            return _decode(data)  # msgspec refuses them already
        except Exception:
            pass
    return json.loads(data, parse_constant=_not_finite, parse_float=_finite)


def dumps(value: Any) -> bytes:
    """Compact JSON of a plain value. ValueError (NaN, Infinity), TypeError (not a JSON
    value) or RecursionError as `json.dumps(value, allow_nan=False)` would raise them."""
    if _encode is not None:
        try:
            out = _encode(value)
        except Exception:  # lone surrogates, odd types: the stdlib decides
            pass
        else:
            if b"null" not in out:  # else it may stand for a NaN the stdlib refuses
                return out
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode()


def dumps_line(value: dict[str, Any]) -> str:
    """One log line's JSON: anything that is not a JSON value is written as its str()."""
    if _encode_line is not None:
        try:
            return _encode_line(value).decode()
        except Exception:  # lone surrogates: the stdlib escapes them
            pass
    return _stdlib_line(value)
