"""Every field of the catalog language, read from the generated JSON Schema, and a place in
`examples/acme` to plant a probe there: a field added later is probed too, and a field no
document of acme can hold fails loudly instead of being skipped.

A probe is planted by rewriting one YAML file of a copy of acme as flow-style (JSON-like)
YAML with the probe's token written verbatim, so the test knows its exact line and column.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from catalog_compiler.check.schema import type_at
from catalog_compiler.diagnostics import Sink
from catalog_compiler.emit.schemas import render
from catalog_compiler.load.yamlparse import parse_text
from catalog_compiler.model.documents import KINDS
from tests.conftest import EXAMPLE

Loc = tuple[str | int, ...]
MARK = "@@PROBE@@"  # stands for the probe's token until the file is written


@cache
def defs() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(render("catalog.schema.json"))
    return dict(schema["$defs"])


def branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a property schema, `null` left out, `$ref`s left as they are."""
    alts = schema.get("anyOf") or schema.get("oneOf")
    if alts:
        return [b for alt in alts for b in branches(alt) if b.get("type") != "null"]
    return [schema]


@dataclass(frozen=True)
class Field:
    """A property of a `$defs` model; `step` is how a probe reaches a value inside it:
    () the value itself, (0,) a list's first item, ("probe",) a mapping's entry."""

    model: str
    name: str
    step: Loc
    schema: dict[str, Any]

    @property
    def id(self) -> str:
        tail = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in self.step)
        return f"{self.model}.{self.name}{tail}"


def _fields(want: str) -> Iterator[Field]:
    for model, body in sorted(defs().items()):
        for name, prop in sorted(body.get("properties", {}).items()):
            for branch in branches(prop):
                if _is(branch, want):
                    yield Field(model, name, (), branch)
                    break
                inner = branch.get("items") or branch.get("additionalProperties")
                if isinstance(inner, dict) and any(_is(b, want) for b in branches(inner)):
                    step: Loc = (0,) if branch.get("type") == "array" else ("probe",)
                    yield Field(model, name, step, inner)
                    break


def _is(schema: dict[str, Any], want: str) -> bool:
    kind = schema.get("type")
    if want == "number":
        numbers = [v for v in schema.get("enum", []) if isinstance(v, (int, float))]
        return kind in ("integer", "number") or bool(numbers)
    if want == "string":
        return kind == "string"
    # free-form: an object taking any keys and values (models forbid extra keys; typed
    # mappings such as `headers` declare their values)
    return kind == "object" and "additionalProperties" not in schema


def numeric_fields() -> list[Field]:
    return list(_fields("number"))


def string_fields() -> list[Field]:
    return list(_fields("string"))


def free_form_fields() -> list[Field]:
    return list(_fields("free"))


# -- where each model lives in acme ------------------------------------------------------


@dataclass(frozen=True)
class Place:
    file: str  # relative to the catalog root
    doc: int
    loc: Loc
    create: Any = None  # set at `loc` first: acme has no such object


def _paths(value: Any, loc: Loc = ()) -> Iterator[Loc]:
    yield loc
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*loc, i))


@cache
def acme_documents() -> tuple[tuple[str, int, Any], ...]:
    out = []
    for path in sorted(EXAMPLE.rglob("*.yaml")):
        rel = path.relative_to(EXAMPLE).as_posix()
        for i, doc in enumerate(parse_text(path.read_text(encoding="utf-8"), rel, Sink())):
            out.append((rel, i, doc.data))
    return tuple(out)


@cache
def places() -> dict[str, Place]:
    """Model name -> the first place in acme holding one."""
    found: dict[str, Place] = {}
    for rel, i, data in acme_documents():
        found.setdefault(data["kind"], Place(rel, i, ()))
        for loc in _paths(data):
            tp = type_at(KINDS[data["kind"]], loc)
            if (
                isinstance(tp, type)
                and issubclass(tp, BaseModel)
                and isinstance(_at(data, loc), dict)
            ):
                found.setdefault(tp.__name__, Place(rel, i, loc))
    return found


def place_of(model: str) -> Place:
    """Where acme has a `model`, or where one can be added (a parent with an optional field
    of that model, filled with its required fields)."""
    known = places()
    if model in known:
        return known[model]
    ref = {"$ref": f"#/$defs/{model}"}
    for parent, body in sorted(defs().items()):
        if parent not in known:
            continue
        for name, prop in body.get("properties", {}).items():
            for branch in branches(prop):
                new = _skeleton(model)
                if branch == ref:
                    return Place(known[parent].file, known[parent].doc,
                                 (*known[parent].loc, name), new)  # fmt: skip
                if branch.get("items") == ref:
                    return Place(known[parent].file, known[parent].doc,
                                 (*known[parent].loc, name, 0), new)  # fmt: skip
                values = branch.get("additionalProperties")  # a mapping of such models
                if isinstance(values, dict) and ref in branches(values):
                    return Place(known[parent].file, known[parent].doc,
                                 (*known[parent].loc, name, f"probe-{model.lower()}"), new)  # fmt: skip
    raise AssertionError(f"no document of examples/acme can hold a {model}: add one")


def _skeleton(model: str) -> dict[str, Any]:
    """The smallest mapping of `model`: its required fields with plain values."""
    body = defs()[model]
    out: dict[str, Any] = {}
    for name in body.get("required", []):
        prop = branches(body["properties"][name])[0]
        if "enum" in prop:
            out[name] = prop["enum"][0]
        elif prop.get("type") == "string":
            out[name] = "filler"
        elif prop.get("type") in ("integer", "number"):
            out[name] = prop.get("minimum", 1)
        elif str(prop.get("$ref", "")).endswith("/SecretRef"):
            out[name] = {"env": "FILLER_SECRET"}
        else:
            raise AssertionError(f"cannot fill required {model}.{name}: extend _skeleton")
    return out


def _at(data: Any, loc: Loc) -> Any:
    for step in loc:
        data = data[step]
    return data


# -- planting a probe --------------------------------------------------------------------


def flow(value: Any) -> str:
    """Flow-style YAML (JSON, plus exact decimals) for the parsed data of acme."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    return json.dumps(value)


@dataclass(frozen=True)
class Planted:
    root: Path  # the catalog directory
    file: Path
    line: int
    column: int


@dataclass(frozen=True)
class Probe:
    field: Field
    token: str  # raw YAML, written verbatim
    extra: Loc = ()  # further steps below the field (a key inside a free-form object)


def plant(tmp: Path, field: Field, token: str, extra: Loc = ()) -> Planted:
    """A copy of acme under `tmp` with `token` (raw YAML) at `field` (+ `extra` steps)."""
    return plant_many(tmp, [Probe(field, token, extra)])[0]


def plant_many(tmp: Path, probes: list[Probe]) -> list[Planted]:
    """A copy of acme under `tmp` with every probe planted; where each one landed."""
    root = tmp / "catalog"
    shutil.copytree(EXAMPLE, root)
    files: dict[str, list[Any]] = {}
    marks: dict[str, tuple[str, str]] = {}  # marker -> (file, token)
    for i, probe in enumerate(probes):
        place = place_of(probe.field.model)
        docs = files.setdefault(
            place.file, [copy.deepcopy(d) for rel, _, d in acme_documents() if rel == place.file]
        )
        target = docs[place.doc]
        if place.create is not None and not _has(target, place.loc):
            _set(target, place.loc, copy.deepcopy(place.create))
        mark = f"{MARK}{i}"
        _set(target, (*place.loc, probe.field.name, *probe.field.step, *probe.extra), mark)
        marks[json.dumps(mark)] = (place.file, probe.token)
    landed: dict[str, Planted] = {}
    for rel, docs in files.items():
        text = "\n---\n".join(flow(d) for d in docs) + "\n"
        mine = [m for m, (file, _) in marks.items() if file == rel and m in text]
        for marker in sorted(mine, key=text.index):  # left to right: offsets stay true
            assert text.count(marker) == 1, "a probe's place is not unique"
            offset = text.index(marker)
            text = text.replace(marker, marks[marker][1])
            line = text.count("\n", 0, offset) + 1
            column = offset - text.rfind("\n", 0, offset)
            landed[marker] = Planted(root, root / rel, line, column)
        (root / rel).write_text(text, encoding="utf-8")
    missing = [m for m in marks if m not in landed]
    assert not missing, f"probes overwritten by others: {missing}"
    return [landed[m] for m in marks]


def _has(data: Any, loc: Loc) -> bool:
    try:
        _at(data, loc)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _set(data: Any, loc: Loc, value: Any) -> None:
    for i, step in enumerate(loc[:-1]):
        nxt = loc[i + 1]
        if isinstance(data, dict):
            data = data.setdefault(step, [] if isinstance(nxt, int) else {})
        else:
            assert isinstance(step, int)
            while len(data) <= step:
                data.append([] if isinstance(nxt, int) else {})
            data = data[step]
    last = loc[-1]
    if isinstance(data, list):
        assert isinstance(last, int)
        if last < len(data):
            data[last] = value
        else:
            data.append(value)
    else:
        data[last] = value
