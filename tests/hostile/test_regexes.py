"""No regular expression of the product backtracks on hostile text.

Every pattern the compiler and the runtime apply (found in the source: module-level
compiled patterns and literal patterns passed to `re.*`), plus the model-pattern globs, is
run on long adversarial strings — runs of each character class the pattern mentions, with
a tail that makes it fail late. A linear pattern finishes these in milliseconds; a
quadratic one (like the old URL check: 4 s at 20,000 characters) takes minutes on the
whole set and trips the guard. The guard is a hang detector with a generous bound, not a benchmark.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import ROOT

LENGTH = 20_000
RE_CALLS = {"compile", "match", "search", "fullmatch", "sub", "subn", "split", "findall",
            "finditer"}  # fmt: skip
ATOMS = ("a", "A", "0", " ", "\t", "\n", "-", ".", "/", ":", "@", "_", "=", "+", "\"", "'",
         "\\", "a:", "a@", "a/", "://", "http://a", "Bearer a", "sk-a", "*a", "$", "[", "{",
         "a.", "0.", "a-", "e", "1e", "é", "\u2028")  # fmt: skip
TAILS = ("", "!", " ", "\x00", "\n")
PREFIXES = ("", "http://", "a:", "a@", "-", "0.")  # so a pattern gets past its opening


SCANNING = {"search", "sub", "subn", "split", "findall", "finditer"}  # try every start


def _product_trees() -> list[tuple[Path, ast.AST]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8")))
            for package in ("catalog_compiler", "runtime")
            for path in sorted((ROOT / package).rglob("*.py"))]  # fmt: skip


def _methods_by_name(trees: list[tuple[Path, ast.AST]]) -> dict[str, set[str]]:
    """For every name, the methods called on it anywhere (`NAME.match(…)`, `m.NAME.search`)."""
    found: dict[str, set[str]] = {}
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                name = owner.id if isinstance(owner, ast.Name) else (
                    owner.attr if isinstance(owner, ast.Attribute) else None)  # fmt: skip
                if name:
                    found.setdefault(name, set()).add(node.func.attr)
    return found


def source_patterns() -> list[tuple[str, str, int, str]]:
    """(where, pattern, flags, "match"|"search") for every constant pattern the product
    gives `re`: how it is applied decides what hostile text can make it do."""
    trees = _product_trees()
    methods = _methods_by_name(trees)
    found = []
    for path, tree in trees:
        targets = {id(n.value): n.targets[0].id for n in ast.walk(tree)
                   if isinstance(n, ast.Assign) and len(n.targets) == 1
                   and isinstance(n.targets[0], ast.Name)}  # fmt: skip
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.func.attr in RE_CALLS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                continue  # (bytes patterns apply to the bundle file, checked elsewhere)
            if node.func.attr == "compile":
                used = methods.get(targets.get(id(node), ""), {"search"})
            else:
                used = {node.func.attr}
            mode = "search" if used & SCANNING or not used else "match"
            flags = re.S if "re.S" in ast.unparse(node) else 0
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            found.append((where, node.args[0].value, flags, mode))
    return found


def test_the_product_has_patterns_to_check() -> None:
    patterns = source_patterns()
    assert len(patterns) >= 20
    assert any("model/types.py" in where for where, _, _, _ in patterns)


DRIVER = textwrap.dedent(
    """
    import json, re, signal, sys
    from runtime.bundle.access import pattern

    LENGTH, PREFIXES, ATOMS, TAILS, items, globs = json.loads(sys.stdin.read())

    def alarm(signum, frame):
        raise TimeoutError

    signal.signal(signal.SIGALRM, alarm)
    slow = []
    checks = [(w, getattr(re.compile(p, f), mode)) for w, p, f, mode in items]
    checks += [("glob " + g, pattern(g).regex.match) for g in globs]
    for where, apply in checks:
        signal.alarm(20)
        try:
            for atom in ATOMS:
                body = atom * (LENGTH // len(atom))
                for prefix in PREFIXES:
                    for tail in TAILS:
                        apply(prefix + body + tail)
        except TimeoutError:
            slow.append(where)
        finally:
            signal.alarm(0)
    print(json.dumps(slow))
    """
)


def test_no_pattern_backtracks_on_long_hostile_text() -> None:
    globs = ["*a*a*a*a*b", "*a*:*/*@*", "gpt-*-*-*-x", "*.*.*.*.*z", "**a**a**"]
    import json

    payload = json.dumps([LENGTH, PREFIXES, ATOMS, TAILS, source_patterns(), globs])
    run = subprocess.run(
        [sys.executable, "-c", DRIVER], input=payload, capture_output=True, text=True,
        cwd=ROOT, timeout=900, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout) == [], "patterns that backtrack on long input"


def test_the_guard_catches_a_quadratic_pattern() -> None:
    """The driver, given the URL check as it was, reports it (so the test above can fail)."""
    import json

    old = ("old url check", r"https?://[^\s/?#]+[^\s]*\Z", 0, "match")
    # 100,000 characters: minutes for the quadratic check on any machine, 3 s allowed
    payload = json.dumps([100_000, ["http://"], ["a"], [" "], [old], []])
    run = subprocess.run(
        [sys.executable, "-c", DRIVER.replace("signal.alarm(20)", "signal.alarm(3)")],
        input=payload, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert json.loads(run.stdout) == ["old url check"], run.stderr[-2000:]


def test_globs_agree_with_fnmatch() -> None:
    """The linear glob matcher means what `*` means in fnmatch (where only `*` is special)."""
    import fnmatch
    import random

    from runtime.bundle.access import any_of, pattern

    rng = random.Random(7)
    for _ in range(20_000):
        glob = "".join(rng.choice("ab*.") for _ in range(rng.randint(0, 7)))
        name = "".join(rng.choice("ab.") for _ in range(rng.randint(0, 8)))
        expected = fnmatch.fnmatchcase(name, glob)
        assert pattern(glob).matches(name) is expected, (glob, name)
        combined = any_of((pattern(glob), pattern("zz*")))
        assert combined is not None
        assert (combined.match(name) is not None) is expected, (glob, name)


_ = Path  # (imported for type checkers reading ROOT)
