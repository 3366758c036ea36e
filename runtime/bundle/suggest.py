"""'Did you mean …?': the nearest candidates within a small edit distance.

Shared by the runtime and the compiler (the compiler may import the runtime)."""

from __future__ import annotations

from collections.abc import Iterable


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap counts as one edit), cut off above `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
            best = min(best, cur[j])
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate, or None when nothing is plausibly a typo of `name`."""
    if not name:
        return None
    limit = max(2, len(name) // 3)
    lowered = name.lower()
    best: tuple[int, str] | None = None
    for cand in candidates:
        if cand == name:
            continue
        dist = 0 if cand.lower() == lowered else edit_distance(lowered, cand.lower(), limit)
        if dist <= limit and (best is None or (dist, cand) < best):
            best = (dist, cand)
    return best[1] if best else None


def hint(name: str, candidates: Iterable[str], quote: str = "`") -> str | None:
    found = did_you_mean(name, candidates)
    return f"did you mean {quote}{found}{quote}?" if found else None


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """Like `did_you_mean`, tolerant of a leading `@` on provider slugs."""
    return did_you_mean(name.removeprefix("@"), candidates)


def closest(name: str, candidates: Iterable[str], n: int = 3) -> tuple[str, ...]:
    """Up to `n` plausible candidates, nearest first (for "unknown model" errors)."""
    limit = max(2, len(name) // 3)
    lowered = name.lower()
    scored = []
    for cand in candidates:
        low = cand.lower()
        if low == lowered:
            dist = 0
        elif low.startswith(lowered) or lowered.startswith(low):
            dist = 1
        else:
            dist = edit_distance(lowered, low, limit)
        if dist <= limit:
            scored.append((dist, cand))
    return tuple(c for _, c in sorted(scored)[:n])
