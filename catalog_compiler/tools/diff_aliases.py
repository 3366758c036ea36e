"""`diff` of model aliases: added, removed (breaking: clients send alias names, as they send
config slugs) and retargeted (notable: the same request now goes somewhere else). A change
of the Organization's alias shows once, naming the workspaces it reaches."""

from __future__ import annotations

from collections.abc import Callable

from runtime.bundle.load import Bundle

Found = dict[tuple[str, str | None, str | None], list[str]]  # (name, old, new) -> workspaces


def alias_changes(old: Bundle, new: Bundle, change: Callable[..., None]) -> None:
    """Report each alias change through `change(kind, subject, old, new, breaking, note,
    notable=...)` (diff.Change's fields)."""
    found: Found = {}
    for slug in sorted(set(old.workspaces) & set(new.workspaces)):
        before = {n: a.target for n, a in old.workspaces[slug].aliases.items()}
        after = {n: a.target for n, a in new.workspaces[slug].aliases.items()}
        for name in sorted(before.keys() | after.keys()):
            a, b = before.get(name), after.get(name)
            if a != b:
                found.setdefault((name, a, b), []).append(slug)
    everyone = len(set(old.workspaces) & set(new.workspaces))
    for (name, a, b), workspaces in sorted(found.items(), key=lambda kv: str(kv[0])):
        who = ("every workspace" if len(workspaces) == everyone > 1
               else "workspace" + ("s " if len(workspaces) > 1 else " ")
               + ", ".join(f"`{w}`" for w in workspaces))  # fmt: skip
        if a is None:
            change("alias", name, None, b, False, f"added for {who}")
        elif b is None:
            change("alias", name, a, None, True,
                   f"removed for {who}: clients naming `{name}` will fail")  # fmt: skip
        else:
            change("alias", name, a, b, False,
                   f"retargeted for {who}: requests naming `{name}` now go to `{b}`",
                   notable=True)  # fmt: skip
