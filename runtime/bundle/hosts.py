"""Where credentials may go: URL origins and `allowed_hosts` patterns (SPEC §6).

A routing config's `custom_host` changes where a catalog provider's request, and so the
organisation's credential, is sent. It is allowed only to the provider's own base URL
origin (scheme, host and port) or to a host its catalog lists in `allowed_hosts`:

    api.example.com          that host, on the scheme's default port (443 / 80)
    api.example.com:8443     that host and port
    *.example.com            any host below example.com (not example.com itself)
    *.example.com:8443       ... on that port

Parsing is strict, so what is compared is what an HTTP client would connect to: ASCII
only (no IDN look-alikes; write punycode), lower-case, no user-info, no percent-encoding,
no IPv4 shorthand (`127.1`, `0x7f.1`, `2130706433`), http(s) only. Anything ambiguous is
refused rather than guessed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

MAX_URL = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_NETLOC = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]{1,5}))?\Z")
_PATTERN = re.compile(r"(\*\.)?(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]{1,5}))?\Z")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\%@]")


# Request headers that carry a credential (the gateway's own key among them): a config
# that forwards one would hand it to the upstream.
CREDENTIAL_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
    "x-goog-api-key", "x-amz-security-token", "x-csrf-token", "x-xsrf-token",
})  # fmt: skip
_CREDENTIAL_WORDS = ("auth", "token", "secret", "cookie", "passw", "credential", "session",
                     "api-key", "apikey", "api_key", "access-key", "signature")  # fmt: skip
_CREDENTIAL_PREFIXES = ("x-portkey-", "x-amz-", "x-goog-", "x-ms-")


def credential_header(name: str) -> bool:
    """Might a request header of this name carry a credential?"""
    low = name.lower()
    return (
        low in CREDENTIAL_HEADERS
        or any(word in low for word in _CREDENTIAL_WORDS)
        or low.startswith(_CREDENTIAL_PREFIXES)
    )


class HostError(ValueError):
    """A URL or host pattern that cannot be parsed unambiguously."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str  # http | https
    host: str  # lower-case name, dotted IPv4, or bracketed IPv6
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class HostPattern:
    host: str  # for a wildcard: the suffix below which hosts match
    port: int | None  # None: the scheme's default port
    wildcard: bool = False

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{'*.' if self.wildcard else ''}{self.host}{port}"

    def matches(self, origin: Origin) -> bool:
        port = self.port if self.port is not None else DEFAULT_PORTS[origin.scheme]
        if origin.port != port:
            return False
        if self.wildcard:
            return origin.host.endswith("." + self.host)
        return origin.host == self.host

    def covers(self, other: HostPattern) -> bool:
        """Does every host `other` matches also match this pattern (narrowing)?"""
        if self.port != other.port:
            return False
        if not self.wildcard:
            return not other.wildcard and other.host == self.host
        return other.host.endswith("." + self.host) or (other.wildcard and other.host == self.host)


def _host(text: str) -> str:
    """A validated host: a DNS name of LDH labels, a dotted IPv4, or a bracketed IPv6."""
    if text.startswith("["):
        try:
            address = ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise HostError(f"`{text}` is not an IPv6 address") from None
        return f"[{address.compressed}]"
    labels = text.split(".")
    if len(text) > 253 or not all(_LABEL.match(label) for label in labels):
        raise HostError(f"`{text}` is not a host name (letters, digits, `-` and `.`)")
    last = labels[-1]
    if last.isdigit() or last.startswith("0x"):
        try:
            return str(ipaddress.IPv4Address(text))  # only the canonical dotted quad
        except ValueError:
            raise HostError(f"`{text}` is an ambiguous numeric host: write a dotted IPv4") from None
    return text


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    port = int(text)
    if not 1 <= port <= 65535 or text != str(port):
        raise HostError(f"`{text}` is not a port (1-65535, no leading zeros)")
    return port


def _clean(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise HostError(f"{what} is a string")
    if len(text) > MAX_URL:
        raise HostError(f"{what} is longer than {MAX_URL} characters")
    if not text.isascii():
        raise HostError(f"{what} must be ASCII: write an international name in punycode (xn--)")
    if _FORBIDDEN.search(text):
        raise HostError(f"{what} contains a space, a control character, `\\`, `%` or `@`")
    return text


def parse_origin(url: object) -> Origin:
    """The (scheme, host, port) an http(s) URL connects to; HostError if unclear."""
    return _origin(_clean(url, "a URL"))


@lru_cache(maxsize=4096)
def _origin(url: str) -> Origin:
    text = url.lower()
    # Messages never repeat the whole URL: a careless one may carry a token in its path.
    try:
        parts = urlsplit(text)
    except ValueError:
        raise HostError("not a URL") from None
    if parts.scheme not in DEFAULT_PORTS or not text.startswith(parts.scheme + "://"):
        raise HostError("not an absolute http:// or https:// URL")
    if "?" in text or "#" in text:
        raise HostError("a base URL has no `?query` or `#fragment`")
    found = _NETLOC.match(parts.netloc)
    if found is None:
        raise HostError("the URL has no plain `host` or `host:port` after `://`")
    port = _port(found.group(2))
    return Origin(parts.scheme, _host(found.group(1)), port or DEFAULT_PORTS[parts.scheme])


def parse_host_pattern(text: object) -> HostPattern:
    """`host`, `host:port`, `*.suffix` or `*.suffix:port`; lower-case; HostError if not."""
    return _host_pattern(_clean(text, "a host pattern"))


@lru_cache(maxsize=4096)
def _host_pattern(cleaned: str) -> HostPattern:
    if cleaned != cleaned.lower():
        raise HostError(f"`{cleaned}`: write host names in lower case")
    found = _PATTERN.match(cleaned)
    if found is None:
        raise HostError(
            f"`{cleaned[:80]}` is not `host`, `host:port` or `*.suffix` (no scheme or path)"
        )
    wildcard = found.group(1) is not None
    host = _host(found.group(2))
    if wildcard and (host.startswith("[") or host[-1].isdigit() or "." not in host):
        raise HostError(f"`{cleaned}` is too broad: a wildcard needs a domain of 2+ labels")
    return HostPattern(host, _port(found.group(3)), wildcard)


def host_allowed(origin: Origin, base_url: str | None, patterns: tuple[str, ...]) -> bool:
    """Is `origin` the provider's own base URL origin, or matched by an allowed pattern?"""
    if base_url is not None:
        try:
            if parse_origin(base_url) == origin:
                return True
        except HostError:
            pass  # a base URL we cannot read grants nothing
    for text in patterns:
        try:
            if parse_host_pattern(text).matches(origin):
                return True
        except HostError:
            continue  # a malformed entry grants nothing
    return False
