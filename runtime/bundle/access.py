"""Model access rules: allow/deny glob lists per level, where only `*` is special."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


def glob_regex(text: str) -> str:
    """A full-match regex for a glob, in linear time whatever the pattern (`*a*a*a*b` would
    backtrack polynomially as plain `.*a.*a.*a.*b`): each middle literal is matched at its
    first occurrence and never revisited (an atomic group). For `*`-only globs the leftmost
    placement of every middle part is always a match if any placement is."""
    if "*" not in text:
        return re.escape(text) + r"\Z"
    first, *middle, last = text.split("*")
    inner = "".join(f"(?>.*?{re.escape(part)})" for part in middle)
    return f"{re.escape(first)}{inner}.*{re.escape(last)}\\Z"


class Pattern:
    """A model pattern: a literal, or a glob where `*` matches anything (`.` is literal)."""

    __slots__ = ("literal", "regex", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.literal = "*" not in text
        self.regex = None if self.literal else re.compile(glob_regex(text), re.S)

    def matches(self, name: str) -> bool:
        if self.regex is None:
            return name == self.text
        return self.regex.match(name) is not None

    def specificity(self) -> tuple[bool, int, str]:
        """Higher is more specific: literals first, then more literal characters."""
        return (self.literal, len(self.text.replace("*", "")), self.text)

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"


@lru_cache(maxsize=65536)
def pattern(text: str) -> Pattern:
    """Shared compiled patterns: the same globs recur across thousands of providers."""
    return Pattern(text)


def qualified(provider: str, model: str) -> str:
    return f"@{provider}/{model}"


@dataclass(frozen=True, slots=True)
class Refusal:
    level: str  # "organization", "integration openai-main", "provider @openai-prod", ...
    rule: str  # human text: "denies `gpt-5*`" or "allows only `gpt-4o*`, `o4-mini`"
    element: str  # provenance key of the deciding rule


def any_of(patterns: tuple[Pattern, ...]) -> re.Pattern[str] | None:
    """One regex for a whole list: a single match call decides membership."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{glob_regex(p.text)})" for p in patterns), re.S)


@dataclass(frozen=True, slots=True)
class Rules:
    """One level's `models:` block; `allow=None` inherits the parent's set."""

    level: str
    key: str  # provenance prefix, e.g. "workspaces/support/access"
    allow: tuple[Pattern, ...] | None
    deny: tuple[Pattern, ...]
    allow_re: re.Pattern[str] | None = field(default=None, compare=False)
    deny_re: re.Pattern[str] | None = field(default=None, compare=False)

    @classmethod
    def from_json(cls, level: str, key: str, data: Mapping[str, Any] | None) -> Rules:
        data = data or {}
        allow: Sequence[str] | None = data.get("allow")
        deny: Sequence[str] = data.get("deny") or ()
        allowed = None if allow is None else tuple(pattern(p) for p in allow)
        denied = tuple(pattern(p) for p in deny)
        return cls(
            level, key, allowed, denied, any_of(allowed) if allowed else None, any_of(denied)
        )

    def refuse(self, names: Iterable[str]) -> Refusal | None:
        """Why none of `names` (a model and its qualified form) passes, or None if one does."""
        names = tuple(names)
        deny_re = self.deny_re
        if deny_re is not None and any(deny_re.match(n) for n in names):
            denied = next(d for d in self.deny if any(d.matches(n) for n in names))
            return Refusal(self.level, f"denies `{denied.text}`", f"{self.key}/deny/{denied.text}")
        if self.allow is not None and not (
            self.allow_re is not None and any(self.allow_re.match(n) for n in names)
        ):
            if not self.allow:
                return Refusal(self.level, "allows nothing (`allow: []`)", f"{self.key}/allow")
            shown = ", ".join(f"`{p.text}`" for p in self.allow[:6])
            more = f" and {len(self.allow) - 6} more" if len(self.allow) > 6 else ""
            return Refusal(self.level, f"allows only {shown}{more}", f"{self.key}/allow")
        return None
