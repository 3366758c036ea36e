"""What every API family needs: JSON in and out with bounds, URLs, credentials in headers,
Retry-After, and token counts checked before they become money.

Token counts an upstream reports are untrusted. A count that is missing or null is 0; one
that is not a plain integer from 0 to runtime.bundle.money.MAX_TOKENS (a bool, a float, a string,
a negative or absurd number), or cached tokens above the prompt's, is an
UpstreamProtocolError (502): we never guess what to charge, and never let an upstream
refund a budget with a negative count.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Mapping, MutableMapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from runtime.bundle.errors import clip
from runtime.bundle.money import MAX_TOKENS, shown
from runtime.upstream.base import Call, Unsupported, UpstreamProtocolError
from runtime.upstream.json_codec import dumps as json_dumps
from runtime.upstream.json_codec import loads_finite

MAX_BODY = 64 * 1024 * 1024  # an upstream answer we agree to parse (the gateway reads less)
MAX_RETRY_AFTER = 86_400.0  # seconds; the gateway caps what it honours far lower
_MIN_SECRET = 8  # shorter credential values are not scrubbed from error bodies (too common)


def load_json(data: bytes | str, what: str) -> Any:
    """Parse an upstream's JSON; anything else (or too big, too deep, or holding NaN or
    Infinity, which no answer to a client may carry) is a protocol error."""
    if len(data) > MAX_BODY:
        raise UpstreamProtocolError(f"upstream {what} is larger than {MAX_BODY:,} bytes")
    try:
        return loads_finite(data)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise UpstreamProtocolError(f"upstream {what} is not valid JSON") from None


def load_object(data: bytes | str, what: str) -> dict[str, Any]:
    value = load_json(data, what)
    if not isinstance(value, dict):
        raise UpstreamProtocolError(f"upstream {what} is not a JSON object")
    return value


def dumps(value: Any) -> bytes:
    """Compact JSON (runtime/upstream/json_codec.py); lone surrogates a client sent are
    escaped, NaN and Infinity refused."""
    try:
        return json_dumps(value)
    except (ValueError, TypeError, RecursionError):
        raise Unsupported("the request body cannot be encoded as JSON") from None


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


def credential(call: Call, name: str) -> str | None:
    """A secret usable in a header: surrounding whitespace (a file's newline) dropped; a
    value with control characters inside (a header injection) is treated as absent."""
    value = call.secrets.get(name)
    if not value:
        return None
    value = value.strip()
    return value if value and value.isprintable() else None


def add_auth(call: Call, headers: MutableMapping[str, str]) -> None:
    """The credential header `call.auth` names. A missing secret is no header: the gateway
    checks secrets at start, and the upstream's 401 says the rest."""
    if call.auth == "none":
        return
    if call.auth not in ("bearer", "api-key", "x-api-key"):
        raise Unsupported(
            f"service `{call.service}` uses `{call.auth}` authentication, which this gateway "
            "does not implement",
            status=501,
        )
    key = credential(call, "api_key")
    if key is None:
        return
    if call.auth == "bearer":
        headers["authorization"] = f"Bearer {key}"
    else:
        headers[call.auth] = key


def count(usage: Mapping[str, Any], name: str, where: str) -> int:
    """One token count of a usage object (missing or null: 0)."""
    value = usage.get(name)
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value <= MAX_TOKENS:
        raise UpstreamProtocolError(
            f"upstream usage `{where}.{name}` must be a whole number of tokens from 0 to "
            f"{MAX_TOKENS:,}, found {shown(value)}"
        )
    return value


def details(usage: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    """A nested details object (`prompt_tokens_details`); missing or null: empty."""
    value = usage.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UpstreamProtocolError(f"upstream usage `{where}.{name}` is not an object")
    return value


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms` or `retry-after` (seconds or an HTTP date),
    clamped to 0..MAX_RETRY_AFTER; None when absent or unreadable."""
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return _clamp(millis / 1000)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return _clamp(seconds)
    if len(raw) > 64:
        return None
    try:
        when = parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _clamp(when - (time.time() if now is None else now))


def _number(raw: str | None) -> float | None:
    if raw is None or len(raw) > 32:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _clamp(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


REDACTED = b"[redacted]"


def redact(body: bytes, call: Call) -> bytes:
    """An upstream's error may echo the credential it was sent: never pass that on."""
    pattern = scrubber(call)
    return pattern.sub(REDACTED, body) if pattern is not None else body


def scrubber(call: Call) -> re.Pattern[bytes] | None:
    """What `redact` takes out, as one pattern (for the many pieces of one answer: a
    stream's events, one C call each); None when the call carries no secret."""
    return _pattern(tuple(call.secrets.values())) if call.secrets else None


@functools.lru_cache(maxsize=1024)
def _pattern(values: tuple[str, ...]) -> re.Pattern[bytes] | None:
    forms = _forms(values)
    return re.compile(b"|".join(re.escape(form) for form in forms)) if forms else None


def _forms(values: tuple[str, ...]) -> tuple[bytes, ...]:
    """Each secret as an upstream may echo it: as sent, JSON-escaped (`/` as `\\/` too, as
    some encoders write it, non-ASCII as `\\u` escapes or not) and URL-encoded; longest
    first, so that a longer form is taken out whole before a shorter one inside it."""
    forms: set[str] = set()
    for value in values:
        secret = value.strip()
        if len(secret.encode("utf-8", "replace")) < _MIN_SECRET:
            continue
        escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
        forms |= {secret, quote(secret, safe=""), *escaped}
        forms |= {form.replace("/", "\\/") for form in escaped}
    return tuple(sorted((f.encode("utf-8", "replace") for f in forms), key=len, reverse=True))


def excerpt(body: bytes, limit: int = 200) -> str:
    """A short printable view of a non-JSON upstream error body, for its error message."""
    text = body[: limit * 4].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    return clip(text, limit)


def forward(call: Call, headers: MutableMapping[str, str], names: tuple[str, ...]) -> None:
    """Copy the client headers the family understands (the gateway chose which to pass),
    then those a config's `forward_headers` names, below what the adapter set."""
    for name in names:
        value = call.headers.get(name)
        if value is not None:
            headers[name] = value
    for name, value in call.passed.items():
        headers.setdefault(name, value)
