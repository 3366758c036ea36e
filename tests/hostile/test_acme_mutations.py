"""Mutations of examples/acme, as a hurried platform engineer makes them: every document
deleted, every top-level field deleted or given a wrong type, every reference misspelt,
every file made unparsable, and pairs of such mistakes in different files.

Each mutation is compiled (every check, as `catalogc validate` runs them) and must keep the
promises of issue 9, item 10: no internal error (partial resolution may not fail either:
CATALOGC_DEBUG makes it raise), every diagnostic located, and no invented error — a
mistake in one file is reported in that file only (acme is clean, so anything reported
elsewhere would be a cascade), no "unknown" reference to a name some document still
defines, and two mistakes report nothing that neither reports alone. A sample also runs
through the real CLI. And the ten realistic mistakes of `TEN` are all reported in one
run, exactly, and fixing them one by one never reveals a new one.
"""

from __future__ import annotations

import itertools
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_compiler.compiler import Compiled, compile_catalog
from tests.conftest import ROOT
from tests.fuzz import test_fuzz as fuzz
from tests.hostile.conftest import assert_sound, catalogc

ACME = ROOT / "examples" / "acme"
FILES = sorted(p.relative_to(ACME).as_posix() for p in ACME.rglob("*.yaml"))
DANGLING = {"E0301", "E0302", "E0303", "E0305", "E0304"}
TOP_KEY = re.compile(r"^([a-z_]+):", re.M)


@dataclass(frozen=True)
class Mutation:
    kind: str  # the class it belongs to, for the counts
    file: str  # the file it changes (relative)
    what: str
    text: str | None  # the file's new text; None deletes the file

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.file}:{self.what}"


def original(rel: str) -> str:
    return (ACME / rel).read_text(encoding="utf-8")


def documents(text: str) -> list[str]:
    return text.split("\n---\n")


def join(docs: list[str]) -> str:
    return "\n---\n".join(docs)


def top_fields(doc: str) -> Iterator[tuple[str, int, int]]:
    """(key, start, end) of each top-level field's text, its block included."""
    starts = [(m.group(1), m.start()) for m in TOP_KEY.finditer(doc)]
    for i, (key, start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(doc)
        yield key, start, end


# -- the mutation classes ------------------------------------------------------------------


def deleted_documents() -> Iterator[Mutation]:
    for rel in FILES:
        docs = documents(original(rel))
        for i in range(len(docs)):
            rest = docs[:i] + docs[i + 1 :]
            yield Mutation("document-deleted", rel, f"doc{i}", join(rest) if rest else None)


def deleted_fields() -> Iterator[Mutation]:
    for rel in FILES:
        docs = documents(original(rel))
        for i, doc in enumerate(docs):
            for key, start, end in top_fields(doc):
                changed = [*docs[:i], doc[:start] + doc[end:], *docs[i + 1 :]]
                yield Mutation("field-deleted", rel, f"doc{i}.{key}", join(changed))


def wrong_types() -> Iterator[Mutation]:
    """Each top-level field (but `kind`) given a value of another shape."""
    for rel in FILES:
        docs = documents(original(rel))
        for i, doc in enumerate(docs):
            for key, start, end in top_fields(doc):
                if key == "kind":
                    continue
                block = doc[start:end]
                single = "\n" not in block.rstrip("\n")
                value = "{wrong: shape}" if single else "12345"
                new = f"{key}: {value}\n"
                changed = [*docs[:i], doc[:start] + new + doc[end:], *docs[i + 1 :]]
                yield Mutation("wrong-type", rel, f"doc{i}.{key}", join(changed))


REFERENCES = [
    re.compile(r"^(?:integration|default_config|base_model): *\"?([^\s\"]+)", re.M),
    re.compile(r"\"@([a-z0-9-]+)[\"/]"),  # @provider in lists and config targets
    re.compile(r"^workspaces: \[([^\]]+)\]", re.M),
    re.compile(r"\bmodel\"?: *\"?([^\s,}\"]+)"),  # override_params.model
]


def typo(name: str) -> str:
    """A near miss: the last two characters swapped (or one doubled)."""
    swapped = name[:-2] + name[-1] + name[-2] if len(name) > 2 else name + name[-1]
    return swapped if swapped != name else name + name[-1]


def misspelt_references() -> Iterator[Mutation]:
    for rel in FILES:
        text = original(rel)
        spans = set()
        for pattern in REFERENCES:
            for m in pattern.finditer(text):
                group_start = m.start(1)
                for item in re.finditer(r"[^,\s\"\[\]]+", m.group(1)):
                    spans.add((group_start + item.start(), group_start + item.end()))
        for start, end in sorted(spans):
            name = text[start:end]
            changed = text[:start] + typo(name) + text[end:]
            yield Mutation("reference-misspelt", rel, f"{name}@{start}", changed)


def unparsable_files() -> Iterator[Mutation]:
    """A syntax error in the first document (nothing of the file parses), and one at the end
    (the documents before it parse)."""
    for rel in FILES:
        text = original(rel)
        first = text.index("kind:")
        yield Mutation("unparsable", rel, "top", text[:first] + "oops: [unclosed\n" + text[first:])
        yield Mutation("unparsable", rel, "end", text + "trailing: {unclosed: [\n")


SINGLE_CLASSES = {
    "document-deleted": deleted_documents,
    "field-deleted": deleted_fields,
    "wrong-type": wrong_types,
    "reference-misspelt": misspelt_references,
    "unparsable": unparsable_files,
}
SINGLES = [m for make in SINGLE_CLASSES.values() for m in make()]
# Mistakes that leave the mistaken document in place: reported in their own file only.
CONTAINED = ("wrong-type", "reference-misspelt", "unparsable")


def pairs() -> list[tuple[Mutation, Mutation]]:
    """Two contained mistakes in different files: a deterministic spread of combinations."""
    contained = [m for m in SINGLES if m.kind in CONTAINED]
    found = [(a, b) for a, b in itertools.combinations(contained, 2) if a.file != b.file]
    return found[:: max(1, len(found) // 90)]


PAIRS = pairs()


# -- running ---------------------------------------------------------------------------------

Key = tuple[str, int, int, str]


def write(root: Path, mutations: tuple[Mutation, ...]) -> Path:
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(ACME, root)
    for m in mutations:
        path = root / m.file
        if m.text is None:
            path.unlink()
        else:
            path.write_text(m.text, encoding="utf-8")
    return root


def compile_mutated(root: Path, *mutations: Mutation) -> Compiled:
    return compile_catalog(write(root, mutations))


def keys(compiled: Compiled, root: Path) -> set[Key]:
    prefix = f"{root}/"
    return {(d.span.file.removeprefix(prefix), d.span.line, d.span.column, d.code)
            for d in compiled.diagnostics}  # fmt: skip


def defined_names(root: Path) -> dict[str, set[str]]:
    """What the mutated catalog's text still defines (documents valid or broken):
    slugs by kind, and Model names."""
    out: dict[str, set[str]] = {"E0301": set(), "E0302": set(), "E0303": set(),
                                "E0305": set(), "E0304": set()}  # fmt: skip
    code = {"Integration": "E0301", "Provider": "E0302", "Workspace": "E0303",
            "Config": "E0305", "Model": "E0304"}  # fmt: skip
    for path in root.rglob("*.yaml"):
        for doc in documents(path.read_text(encoding="utf-8")):
            kind = re.search(r"^kind: *(\w+)", doc, re.M)
            name = re.search(r"^(?:slug|name): *\"?([^\s\"]+)", doc, re.M)
            if kind and name and kind.group(1) in code:
                out[code[kind.group(1)]].add(name.group(1))
    return out


def dangling_names(compiled: Compiled) -> Iterator[tuple[str, str]]:
    for d in compiled.diagnostics:
        if d.code in DANGLING:
            found = re.search(r"`@?([^`/]+)`" if d.code != "E0304" else r"`([^`]+)`", d.message)
            assert found, d.message
            yield d.code, found.group(1)


@pytest.fixture(autouse=True)
def _debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOGC_DEBUG", "1")  # resolving around errors may not fail either


def assert_located(compiled: Compiled, root: Path) -> None:
    """At a line of a catalog file (or, without catalog.yaml, "not a catalog" at the root)."""
    files = {f"{root}/{rel}" for rel in FILES} | {str(p) for p in root.rglob("*.yaml")}
    for d in compiled.diagnostics:
        if d.code == "E0003":
            assert d.span.file == str(root), d
        else:
            assert d.span.file in files and d.span.line >= 1, d


def test_the_mutation_counts() -> None:
    counts = {k: sum(1 for m in SINGLES if m.kind == k) for k in SINGLE_CLASSES}
    counts["pairs"] = len(PAIRS)
    print("acme mutations:", counts, "total", sum(counts.values()))
    assert counts["document-deleted"] == 18
    assert counts["unparsable"] == 2 * len(FILES) == 28
    assert counts["field-deleted"] >= 90 and counts["wrong-type"] >= 70
    assert counts["reference-misspelt"] >= 40 and counts["pairs"] >= 80


@pytest.mark.parametrize("kind", sorted(SINGLE_CLASSES))
def test_single_mistakes(kind: str, tmp_path: Path) -> None:
    problems = []
    for m in (m for m in SINGLES if m.kind == kind):
        root = tmp_path / "c"
        compiled = compile_mutated(root, m)
        assert_located(compiled, root)
        if not compiled.errors and compiled.data is None:
            problems.append(f"{m.id}: no error, but no bundle either")
        if m.kind in CONTAINED:
            if not compiled.errors:
                problems.append(f"{m.id}: no error reported")
            elsewhere = {k for k in keys(compiled, root) if k[0] != m.file}
            if elsewhere:
                problems.append(f"{m.id}: reported in other files: {sorted(elsewhere)}")
        defined = defined_names(root)
        for code, name in dangling_names(compiled):
            if name in defined[code]:
                problems.append(f"{m.id}: invented {code} for `{name}`, which is defined")
    assert not problems, "\n".join(problems[:40])


def test_pairs_report_nothing_new(tmp_path: Path) -> None:
    """Two mistakes in different files: nothing that neither reports alone; a mistake that
    depends on nothing else (a syntax or type error) is still reported. (A misspelt reference
    may go unchecked: to a document the other mistake broke.)"""
    single: dict[str, set[Key]] = {}
    problems = []
    for a, b in PAIRS:
        for m in (a, b):
            if m.id not in single:
                single[m.id] = keys(compile_mutated(tmp_path / "c", m), tmp_path / "c")
        root = tmp_path / "c"
        compiled = compile_mutated(root, a, b)
        assert_located(compiled, root)
        got = keys(compiled, root)
        invented = {k for k in got - single[a.id] - single[b.id] if not moved(k, a, b, single)}
        if invented:
            problems.append(f"{a.id} + {b.id}: invented {sorted(invented)}")
        for m in (a, b):
            if m.kind != "reference-misspelt" and not got & single[m.id]:
                problems.append(f"{a.id} + {b.id}: the mistake in {m.file} is not reported")
    assert not problems, "\n".join(problems[:40])


def moved(key: Key, a: Mutation, b: Mutation, single: dict[str, set[Key]]) -> bool:
    """An unknown name of one mistake that a document the other mistake left without a slug
    might define is reported once at that document (E0510) instead of at its use: moved,
    not invented."""
    if key[3] != "E0510":
        return False
    for here, there in ((a, b), (b, a)):
        if key[0] == here.file and any(k[3] in DANGLING for k in single[there.id]):
            return True
    return False


@pytest.mark.parametrize("rel", FILES)
def test_unparsable_file_through_the_cli(rel: str, tmp_path: Path) -> None:
    """In a real process: exit 1, no traceback, and the file's names are not reported as
    unknown anywhere (the references wait on the broken file: E0510, located in it)."""
    mutation = next(m for m in SINGLES if m.kind == "unparsable" and m.file == rel)
    root = write(tmp_path / "c", (mutation,))
    run = catalogc("validate", root, "--format", "json")
    assert_sound(run)
    assert run.returncode == 1, run.output
    assert "unknown " not in run.stdout, run.stdout


@pytest.mark.parametrize(("how", "code"), [("too-large", "E0104"), ("not-utf8", "E0102")])
def test_a_file_that_cannot_be_read_holds_its_names(how: str, code: str, tmp_path: Path) -> None:
    """A file too large to read (nothing of it is known) or not UTF-8 (its text is scanned
    as far as it decodes): the providers it defines are reported once, at it."""
    root = write(tmp_path / "c", ())
    path = root / "providers" / "openai.yaml"
    text = path.read_text(encoding="utf-8")
    if how == "too-large":
        path.write_text(text + ("#" * 1023 + "\n") * 8 * 1024, encoding="utf-8")
    else:
        path.write_bytes(text.encode() + b"# \xff\n")
    compiled = compile_catalog(root)
    assert sorted(d.code for d in compiled.diagnostics) == [code, "E0510"]
    (waiting,) = (d for d in compiled.diagnostics if d.code == "E0510")
    assert waiting.span.file == str(path)
    assert "`@openai-prod`" in waiting.message and "`@openai-research`" in waiting.message
    assert (waiting.span.line >= 1) == (how == "not-utf8")  # the slug's line, when readable


@settings(max_examples=200)
@given(st.lists(fuzz.mutation, min_size=1, max_size=4))
def test_random_edits_resolve_around_the_errors(edits: list[tuple[str, str, int, str]]) -> None:
    """Character-level edits (the fuzz suite's): resolving around whatever they break never
    fails (CATALOGC_DEBUG is set: a failure would raise), and every diagnostic is located."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "c"
        shutil.copytree(ACME, root)
        for rel, how, at, piece in edits:
            path = root / rel
            path.write_text(fuzz.mutate(path.read_text("utf-8"), how, at, piece), "utf-8")
        compiled = compile_catalog(root)
        assert_located(compiled, root)
        assert (compiled.data is None) == bool(compiled.errors)


# -- ten realistic mistakes, one run -------------------------------------------------------

# (file, text before, text after): each a mistake a hurried engineer makes.
TEN = [
    ("catalog.yaml", "concurrency: 400", "concurency: 400"),  # a typo'd field
    ("configs/support-bot.yaml", "request_timeout: 30000", 'request_timeout: "30s"'),  # type
    ("workspaces/teams.yaml", '"@openai-research", "@azure-eu", "@llama-local"',
     '"@openai-research", "@azure-ue", "@llama-local"'),  # a dangling reference
    ("providers/openai.yaml", '"gpt-5*", "o4-mini"]', '"gpt-5*", "o4-mni"]'),  # dead allow
    ("models/fine-tuned.yaml", '  cache_read: "0.15"\n', '  cache_read: "0.15"\n---\n'
     "kind: Model\nname: ft:gpt-4o-2024-08-06:acme:triage:4Lm2\nintegration: openai-main\n"),
    ("workspaces/teams.yaml", '"@anthropic-prod", "@azure-eu"]',
     '"@anthropic-prod", "@azure-eu", "@openai-research"]'),  # not provisioned to it
    ("configs/eu-router.yaml", '"@azure-eu"\n      override_params: {model: gpt-4o-mini}',
     '"@llama-local"\n      override_params: {model: llama-3.3-70b-instruct}'),  # bad target
    ("providers/anthropic.yaml", 'input: "2.70"', 'input: "0.0027"'),  # per-1K as per-1M
    ("workspaces/teams2.yaml", "", "kind: Workspace\nslug: platform\nname: Platform EU\n"),
    ("workspaces/teams.yaml", "usd, period: monthly}\npricing", "usd, period: 1month}\npricing"),
]  # fmt: skip
TEN_REPORTED = [
    "catalog.yaml:12:1: error[E0202]",  # `concurency`: did you mean `concurrency`?
    "configs/eu-router.yaml:21:32: error[E0502]",  # support does not take @llama-local
    "configs/support-bot.yaml:11:20: error[E0204]",  # request_timeout is a number
    "models/fine-tuned.yaml:13:7: error[E0501]",  # unpriced, under openai-main's usd budget
    "providers/anthropic.yaml:10:12: error[E0512]",  # 1,111x below the registry's 3
    "providers/openai.yaml:18:33: error[E0500]",  # `o4-mni`: did you mean `o4-mini`?
    "workspaces/teams.yaml:7:38: error[E0205]",  # unknown period `1month`
    "workspaces/teams.yaml:16:61: error[E0511]",  # @openai-research is not provisioned to it
    "workspaces/teams.yaml:38:33: error[E0302]",  # unknown provider `@azure-ue`
    "workspaces/teams2.yaml:2:7: error[E0300]",  # duplicate workspace slug `platform`
]
# The line of TEN_REPORTED each mistake of TEN is reported as.
TEN_CAUSE = [0, 2, 8, 5, 3, 7, 1, 4, 9, 6]


def apply(root: Path, mistakes: list[tuple[str, str, str]]) -> Path:
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(ACME, root)
    for rel, before, after in mistakes:
        path = root / rel
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        assert text.count(before) == 1 or before == "", (rel, before)
        path.write_text(text.replace(before, after, 1) if before else after, encoding="utf-8")
    return root


def reported(root: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(root)
    return [f"{d.span}: {d.severity.value}[{d.code}]" for d in compile_catalog(".").diagnostics]


def test_ten_mistakes_in_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert reported(apply(tmp_path / "c", TEN), monkeypatch) == TEN_REPORTED


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_ten_mistakes_through_the_cli(fmt: str, tmp_path: Path) -> None:
    root = apply(tmp_path / "c", TEN)
    run = catalogc("validate", ".", "--format", fmt, cwd=root)
    assert_sound(run)
    assert run.returncode == 1
    for line in TEN_REPORTED:
        where, code = line.split(": error[")
        file = where.rsplit(":", 2)[0]
        assert code.rstrip("]") in run.stdout and file in run.stdout, (fmt, line)
    compiled = catalogc("compile", ".", "-o", "bundle.json", cwd=root)
    assert compiled.returncode == 1 and not (root / "bundle.json").exists()


def test_fixing_the_ten_one_by_one_reveals_nothing_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    left = list(range(len(TEN)))
    before = TEN_REPORTED
    for fixed in range(len(TEN)):
        left.remove(fixed)
        now = reported(apply(tmp_path / f"c{fixed}", [TEN[i] for i in left]), monkeypatch)
        assert now == [TEN_REPORTED[TEN_CAUSE[i]] for i in sorted(left, key=TEN_CAUSE.__getitem__)]
        assert set(now) <= set(before)
        before = now
    assert before == []
