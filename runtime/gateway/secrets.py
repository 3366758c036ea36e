"""Provider credentials: the bundle holds references (`env:NAME`, `file:PATH`), read once at
start. A value never leaves this module except into the upstream request that needs it."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from runtime.bundle.load import Bundle

MAX_SECRET_BYTES = 64 * 1024  # a service-account JSON is a few KiB
# the credentials adapters send as header values (runtime/upstream: add_auth, the OpenAI
# organization and project): one line of printable text, or the header cannot carry them
IN_HEADERS = frozenset({"api_key", "organization", "project"})


class MissingSecrets(Exception):
    """Some references could not be read; the message names them, never a value."""

    def __init__(self, missing: Mapping[str, str]) -> None:
        listed = ", ".join(f"{ref} ({why})" for ref, why in sorted(missing.items()))
        super().__init__(f"cannot read the credentials of {len(missing)} reference(s): {listed}")
        self.missing = dict(missing)


@dataclass(frozen=True)
class Secrets:
    """Credential values per integration, and the integrations that lack one."""

    values: Mapping[str, Mapping[str, str]]  # integration slug -> name -> value
    missing: Mapping[str, str]  # integration slug -> the first reference it could not read
    alert_secret: str | None = None  # the key that signs budget alerts (Organization.alerts)

    def of(self, integration: str) -> Mapping[str, str]:
        return self.values.get(integration, MappingProxyType({}))

    def __repr__(self) -> str:  # never the values
        return f"Secrets({len(self.values)} integrations, {len(self.missing)} missing)"


def read_reference(ref: str) -> str:
    """The value behind `env:NAME` or `file:PATH`; raises LookupError saying why not."""
    kind, _, name = ref.partition(":")
    if kind == "env":
        value = os.environ.get(name)
        if not value:
            raise LookupError("not set")
        return value
    if kind == "file":
        data = _read_file(name)
        if len(data) > MAX_SECRET_BYTES:
            raise LookupError(f"larger than {MAX_SECRET_BYTES} bytes")
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise LookupError("not UTF-8") from None
        if not text:
            raise LookupError("empty")
        return text
    raise LookupError("not an env: or file: reference")


def _usable(name: str, value: str) -> str:
    """`value`, if a credential sent in a header can be: one with a line break or another
    control character inside was dropped at each request, unsent (the upstream's 401 the
    only clue); now it is as missing as an unreadable one, named at start."""
    if name in IN_HEADERS and not value.strip().isprintable():
        raise LookupError("holds a line break or control character: no header can carry it")
    return value


def _read_file(name: str) -> bytes:
    """A regular file's first bytes. Opened without blocking and checked before any read:
    a FIFO (or a device) would otherwise hold start-up, or a reload, until written to."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise LookupError(exc.strerror or type(exc).__name__) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LookupError("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise LookupError(exc.strerror or type(exc).__name__) from None
    finally:
        os.close(fd)


def load_secrets(bundle: Bundle, allow_missing: bool) -> Secrets:
    """Read every credential the bundle references. Missing ones fail start-up
    (MissingSecrets) unless `allow_missing`: then only their providers answer 503."""
    values: dict[str, Mapping[str, str]] = {}
    missing: dict[str, str] = {}
    failures: dict[str, str] = {}
    for slug, integ in sorted(bundle.integrations.items()):
        found: dict[str, str] = {}
        for name, ref in sorted(integ.credentials.items()):
            try:
                found[name] = _usable(name, read_reference(ref))
            except LookupError as exc:
                failures[ref] = str(exc)
                missing.setdefault(slug, ref)
        values[slug] = MappingProxyType(found)
    alert_secret = None
    alerts = bundle.organization.get("alerts")
    if alerts:
        try:
            alert_secret = read_reference(str(alerts["secret"]))
        except LookupError as exc:  # with --allow-missing-secrets: alerts are logged only
            failures[str(alerts["secret"])] = str(exc)
    if failures and not allow_missing:
        raise MissingSecrets(failures)
    return Secrets(MappingProxyType(values), MappingProxyType(missing), alert_secret)
