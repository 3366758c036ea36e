"""The words of a routing config and its `$regex` engine: modes, query operators, carried
and secret fields, synonyms a config may use, and RE2 patterns compiled within bounds. What
a bundle's configs may contain, so the bundle's checks, the normalizer (configs.py) and the
router's conditions (plan.py) read the same definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import re2

QUERY_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex")
QUERY_LOGIC = ("$and", "$or")
MODES = ("single", "loadbalance", "fallback", "conditional")
SECRET_FIELDS = ("api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                 "vertex_service_account_json", "Authorization")  # fmt: skip
# Fields the router does not act on: validated, then carried into the bundle unchanged.
CARRIED = (
    "forward_headers", "passthrough", "strict_open_ai_compliance", "input_guardrails",
    "output_guardrails", "before_request_hooks", "after_request_hooks", "metadata", "prompt_id",
    "resource_name", "deployment_id", "api_version", "deployments", "azure_resource_name",
    "azure_deployment_id", "azure_api_version", "azure_model_name", "azure_region",
    "azure_deployment_name", "azure_deployment_type", "azure_endpoint_name", "aws_access_key_id",
    "aws_secret_access_key", "aws_session_token", "aws_region", "openai_organization",
    "openai_project", "vertex_project_id", "vertex_region", "vertex_service_account_json",
    "Authorization", "cb_config",
)  # fmt: skip


MODE_SYNONYMS = {"roundrobin": "loadbalance", "round-robin": "loadbalance",
                 "round_robin": "loadbalance", "load-balance": "loadbalance",
                 "load_balance": "loadbalance", "failover": "fallback"}  # fmt: skip
OPERATOR_SYNONYMS = {"$equals": "$eq", "$equal": "$eq", "$neq": "$ne", "$not": "$ne",
                     "$notin": "$nin", "$not_in": "$nin", "$match": "$regex",
                     "$regexp": "$regex", "$all": "$and", "$any": "$or"}  # fmt: skip
# `$regex` has RE2 semantics: matching is linear in the text, whatever the pattern, so a
# client's pattern cannot stall the process (a backtracking engine takes seconds on
# `^(a+)+$` against 28 characters). RE2 has no backreferences or look-around; it accepts
# JavaScript's named groups `(?<name>…)` as Portkey writes them. Linear is not free: the
# cost is about text length x program size, so both are bounded.
MAX_REGEX_CHARS = 1_000
MAX_REGEX_PROGRAM = 2_000  # RE2 instructions; `\pL+` is 1,201, `.{300}x` 2,405
MAX_REGEX_TEXT = 4_096  # longer text never matches a `$regex` (documented)
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors are ours to report, not RE2's to print on stderr
_RE2_OPTIONS.max_mem = 1 << 20  # program + DFA cache per pattern; the cache holds 256
_UNSUPPORTED = re2.compile(r"\(\?<?[=!]|\\[1-9]|\\k<", _RE2_OPTIONS)  # look-around, backrefs


class RegexError(ValueError):
    """A `$regex` pattern RE2 does not accept, or one too large to run in bounded time."""

    def __init__(self, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.help = help


def compile_regex(pattern: str) -> Any:
    """The compiled RE2 program for `pattern`, cached (bounded); RegexError if unusable."""
    if len(pattern) > MAX_REGEX_CHARS:
        raise RegexError(f"longer than {MAX_REGEX_CHARS} characters", "match a shorter pattern")
    return _compile(pattern)


@lru_cache(maxsize=256)
def _compile(pattern: str) -> Any:
    try:
        program = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if _UNSUPPORTED.search(pattern) is not None:
            help = (
                "RE2 syntax (linear time) has no look-around or backreferences: "
                "match the text directly, or split the condition with `$and`/`$or`"
            )
        else:
            help = "escape special characters with a backslash, e.g. `\\(`"
        raise RegexError(message, help) from None
    except (TypeError, ValueError) as exc:  # e.g. a NUL or a lone surrogate in the pattern
        raise RegexError(f"unusable pattern ({type(exc).__name__})") from None
    if program.programsize > MAX_REGEX_PROGRAM:
        raise RegexError(
            f"too complex: {program.programsize} RE2 instructions (at most {MAX_REGEX_PROGRAM})",
            "use fewer or smaller counted repetitions (`{n}`) and Unicode classes",
        )
    return program


def regex_search(pattern: str, text: str) -> bool:
    """Does `pattern` match somewhere in `text`? Never raises for a checked pattern."""
    if len(text) > MAX_REGEX_TEXT:
        return False
    try:
        return compile_regex(pattern).search(text) is not None
    except (RegexError, TypeError, ValueError):
        return False


def query_field(key: str) -> bool:
    if key == "url.pathname":
        return True
    head, _, rest = key.partition(".")
    return head in ("metadata", "params") and bool(rest)


def weight_of(target: Mapping[str, Any]) -> Decimal:
    """A target's weight; absent or null means the default 1 (an unreadable one counts 0,
    and its own check reports it)."""
    value = target.get("weight")
    if value is None:
        return Decimal(1)
    try:
        found = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return found if found.is_finite() else Decimal(0)
