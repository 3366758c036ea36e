"""The table of diagnostic codes: stable ids for CI annotations, SARIF rules and docs.

Ranges: E00xx input/output (exit 2), E01xx YAML, E02xx structure and types,
E03xx references, E04xx secrets and money, E05xx semantics; W for warnings.
Every code is documented in docs/diagnostics.md and exercised by tests/cases/.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Code:
    id: str
    name: str
    summary: str
    severity: Severity = Severity.ERROR

    @property
    def is_io(self) -> bool:
        """I/O problems are not catalog errors: the CLI exits 2 for them."""
        return self.id.startswith("E00")


WARN = Severity.WARNING

_ALL = [
    Code("E0001", "unreadable-path", "a file or directory could not be read"),
    Code("E0002", "symlink-loop", "a symbolic link points back into itself"),
    Code("E0003", "not-a-catalog", "the directory has no catalog.yaml"),
    Code("E0004", "link-outside-catalog", "a symbolic link leading outside the catalog"),
    Code("E0005", "not-a-regular-file", "a FIFO, socket, device or /proc file in the catalog"),
    Code("E0006", "output-is-catalog-file", "an output path that is one of the catalog's files"),
    Code("E0007", "output-not-a-file", "an output that is a device, FIFO, socket or directory"),
    Code("E0008", "output-unwritable", "the output could not be written"),
    Code("E0100", "yaml-syntax", "the file is not valid YAML"),
    Code("E0101", "duplicate-key", "a mapping has the same key twice"),
    Code("E0102", "invalid-encoding", "the file is not UTF-8 text"),
    Code("E0103", "alias-bomb", "YAML aliases expand beyond the size limit"),
    Code("E0104", "file-too-large", "a catalog file exceeds the size limit"),
    Code("E0105", "unsupported-tag", "a YAML tag other than the core schema's"),
    Code("E0106", "invalid-key", "a mapping key that is not a plain scalar"),
    Code("E0107", "invalid-merge", "a `<<` merge whose value is not a mapping"),
    Code("E0108", "too-deep", "nesting deeper than the limit"),
    Code("E0109", "too-many-documents", "more YAML documents in one file than the limit"),
    Code("E0110", "invalid-ignore-pattern", "a `.catalogignore` line that is not a pattern"),
    Code("E0200", "missing-kind", "a document without `kind:`"),
    Code("E0201", "unknown-kind", "a `kind:` that is not a catalog kind"),
    Code("E0202", "unknown-field", "a field the kind does not have"),
    Code("E0203", "missing-field", "a required field is absent"),
    Code("E0204", "wrong-type", "a value of the wrong type"),
    Code("E0205", "invalid-value", "a value outside the allowed set or format"),
    Code("E0206", "out-of-range", "a number outside its allowed range"),
    Code("E0207", "invalid-slug", "a slug that is not lowercase [a-z0-9-]"),
    Code("E0208", "unsupported-version", "a language version this compiler does not know"),
    Code("E0209", "missing-organization", "no Organization document in catalog.yaml"),
    Code("E0210", "duplicate-organization", "more than one Organization document"),
    Code("E0211", "misplaced-organization", "an Organization outside catalog.yaml"),
    Code("E0212", "duplicate-limit", "two limits for the same unit and period at one level"),
    Code("E0213", "invalid-document", "a document that is not a mapping"),
    Code("E0214", "not-finite", "NaN or infinity where a number belongs"),
    Code("E0215", "unsafe-json-number", "a number in params or metadata JSON cannot hold exactly"),
    Code("E0216", "object-too-large", "params or metadata nested too deep or too large"),
    Code("E0300", "duplicate-slug", "two documents of one kind share a slug or name"),
    Code("E0301", "unknown-integration", "a reference to an integration that does not exist"),
    Code("E0302", "unknown-provider", "a reference to a provider that does not exist"),
    Code("E0303", "unknown-workspace", "a reference to a workspace that does not exist"),
    Code("E0304", "unknown-model", "a model its integration does not expose"),
    Code("E0305", "unknown-config", "a reference to a routing config that does not exist"),
    Code("E0306", "unknown-service", "an integration `service:` that is not supported"),
    Code("E0307", "invalid-credentials", "credential or setting fields wrong for the service"),
    Code("E0400", "literal-secret", "a secret value written into the catalog"),
    Code("E0401", "price-out-of-range", "a price below 0 or above 10,000 USD per 1M tokens"),
    Code("E0402", "unresolved-secret-reference", "a secret reference where nothing resolves it"),
    Code("E0403", "price-tiers-not-increasing", "long-context tier thresholds out of order"),
    Code("E0404", "variant-price-without-base", "a tier or variant prices what the base does not"),
    Code("E0405", "unknown-service-tier", "a `service_tiers` name other than flex or priority"),
    Code("E0406", "workspace-regional-prices", "regional prices in a workspace's pricing"),
    Code("E0500", "allow-matches-nothing", "an allow entry that matches no model the level sees"),
    Code("E0501", "unpriced-model", "a model without a price under a usd budget"),
    Code("E0502", "unreachable-target", "a config sends a workspace where it may not go"),
    Code("E0503", "unknown-target-name", "a conditional `then`/`default` naming no target"),
    Code("E0504", "all-zero-weights", "a loadbalance whose every weight is 0"),
    Code("E0505", "invalid-query", "an unknown query field or operator in a condition"),
    Code("E0506", "invalid-regex", "a `$regex` that is not a valid regular expression"),
    Code("E0507", "custom-host-not-allowed", "a config sends a provider's credentials elsewhere"),
    Code("E0508", "invalid-allowed-host", "an `allowed_hosts` entry that is not a host pattern"),
    Code("E0509", "allowed-host-widens", "a provider allows a host its integration does not"),
    Code(
        "E0510",
        "defined-only-in-broken-file",
        "names used elsewhere that only a broken file or a slugless document may define",
    ),
    Code(
        "E0511",
        "provider-not-provisioned",
        "a workspace lists a provider that is not provisioned to it",
    ),
    Code(
        "E0512",
        "price-far-from-registry",
        "a price more than 100x away from the registry's price for the model",
    ),
    Code("E0513", "price-override-matches-nothing", "a price override that applies to no model"),
    Code("E0514", "api-key-listed-twice", "one key hash names two callers"),
    Code("E0515", "config-sets-stream", "a config's params set `stream`, the client's choice"),
    Code("E0516", "config-raw-service", "a config target naming a raw service, not a provider"),
    Code("E0520", "alias-shadows-model", "an alias named like a model the workspace can use"),
    Code("E0521", "alias-target-not-usable", "a workspace alias whose target it may not use"),
    Code("W0300", "unused-integration", "an integration no provider is made from", WARN),
    Code("W0400", "price-looks-per-token", "a price so small it was typed per token", WARN),
    Code("W0500", "unreachable-limit", "a limit an ancestor's tighter limit makes dead", WARN),
    Code("W0501", "forwards-credential-header", "a config forwards a credential header", WARN),
    Code("W0502", "workspace-reaches-nothing", "a workspace that can reach no model", WARN),
    Code("W0503", "conditional-without-default", "a conditional without `default`", WARN),
    Code("W0504", "target-status-codes-unused", "a target's unused on_status_codes", WARN),
    Code("W0505", "config-mixes-modes", "a config whose targets are models of two modes", WARN),
]

CODES: dict[str, Code] = {c.id: c for c in _ALL}
CODE_BY_NAME: dict[str, Code] = {c.name: c for c in _ALL}
