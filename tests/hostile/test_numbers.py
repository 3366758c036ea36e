"""Numbers are finite and in range everywhere (ISSUE9 item 2).

The sweep plants each hostile number in every numeric field of the language — enumerated
from the generated JSON Schema, so a field added later is swept too — in a copy of
examples/acme, and asserts: exit 1, a located diagnostic at exactly that value, no internal
error, nothing written. Free-form objects (params, metadata, queries, hook options) are swept
with the numbers JSON cannot hold. The bulk runs in-process; a sample runs the real CLI.

Probe counts (lead's tally): 37 numeric fields × 11 values = 407; 9 free-form objects × 18
values (11 JSON cannot hold, 7 it can) = 162; depth/size 2; all-in-one-run 1; null/quoted
text 3; CLI sample 6 (compile text + validate json each); property test 300 examples.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from catalog_compiler.compiler import Compiled, compile_catalog
from catalog_compiler.model.common import Strict, numeric_fields
from catalog_compiler.model.freeform import MAX_DEPTH, MAX_VALUES
from catalog_compiler.model.numbers import MAX_SAFE_INT, Numeric
from catalog_compiler.registry import builtin
from tests.hostile.acme_fields import Field, Planted, defs, free_form_fields, plant
from tests.hostile.acme_fields import numeric_fields as schema_numeric_fields
from tests.hostile.conftest import assert_sound, catalogc

REGISTRY = builtin()
FIELDS = schema_numeric_fields()
FREE = free_form_fields()

# name -> YAML token. The first eight are wrong in every numeric field.
ALWAYS_WRONG = {
    "nan": ".nan",
    "inf": ".inf",
    "-inf": "-.inf",
    "1e400": "1e400",
    "-1e400": "-1e400",
    "5000-digits": "9" * 5000,
    "null": "null",
    "true": "true",
}
# Wrong where the field's JSON Schema says so (a price may be "5"; a weight may be 1.5).
BY_SCHEMA = {"-1": ("-1", -1), "quoted-5": ('"5"', "5"), "1.5": ("1.5", 1.5)}

# In free-form objects: numbers a JSON reader cannot hold exactly, and numbers it can.
FREE_WRONG = {
    **{k: v for k, v in ALWAYS_WRONG.items() if k not in ("null", "true")},
    "2^53": str(2**53),
    "-2^53": str(-(2**53)),
    "0.1-exact": "0.1000000000000000055511151231257827",
    "1e-400": "1e-400",
    "1e20-inexact": "100000000000000000001",
}
FREE_FINE = {
    "2^53-1": str(MAX_SAFE_INT),
    "-1": "-1",
    "1.5": "1.5",
    "1e-7": "1e-7",
    "null": "null",
    "true": "true",
    "quoted-5": '"5"',
}


def compile_at(planted: Planted) -> Compiled:
    return compile_catalog(planted.root, registry=REGISTRY)


def at_probe(compiled: Compiled, planted: Planted) -> list[Any]:
    return [
        d
        for d in compiled.diagnostics
        if Path(d.span.file).resolve() == planted.file.resolve()
        and (d.span.line, d.span.column) == (planted.line, planted.column)
        and d.severity.value == "error"
    ]


def schema_accepts(field: Field, value: Any) -> bool:
    """What the field's JSON Schema says about `value` (where a probe puts it)."""
    prop = defs()[field.model]["properties"][field.name]
    for step in reversed(field.step):
        value = [value] if isinstance(step, int) else {step: value}
    validator = jsonschema.Draft202012Validator({"$defs": defs(), **prop})
    return validator.is_valid(value)


def assert_rejected_there(compiled: Compiled, planted: Planted, codes: tuple[str, ...]) -> None:
    found = at_probe(compiled, planted)
    where = f"{planted.file.name}:{planted.line}:{planted.column}"
    got = [f"{d.span} {d.code} {d.message}" for d in compiled.diagnostics]
    assert found, f"no error at {where}; got {got}"
    assert all(d.code.startswith(codes) for d in found), got
    assert all(len(d.message) < 300 for d in found), "a message printed a huge number"
    assert compiled.data is None, "a bundle was produced"


def test_the_sweep_sees_every_kind_of_number() -> None:
    ids = {f.id for f in FIELDS}
    assert len(FIELDS) >= 35
    for must in ("Target.weight", "Target.request_timeout", "Retry.attempts", "Budget.limit",
                 "Limits.concurrency", "Model.context_window", "Pricing.per_request",
                 "Sticky.ttl", "Cache.max_age", "CircuitBreaker.cooldown_interval",
                 "Strategy.on_status_codes[0]", "Budget.alert_threshold", "RateLimit.burst"):  # fmt: skip
        assert must in ids
    free = {f.id for f in FREE}
    assert {"Target.metadata", "Target.default_params", "Provider.default_params",
            "Condition.query", "Target.input_guardrails[0]"} <= free  # fmt: skip


@pytest.mark.parametrize("name", list(ALWAYS_WRONG) + list(BY_SCHEMA))
@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.id)
def test_hostile_number(field: Field, name: str, tmp_path: Path) -> None:
    token, as_json = BY_SCHEMA.get(name, (ALWAYS_WRONG.get(name), None))
    assert token is not None
    planted = plant(tmp_path, field, token)
    compiled = compile_at(planted)
    if name in ALWAYS_WRONG or not schema_accepts(field, as_json):
        assert_rejected_there(compiled, planted, ("E02", "E0401"))
    else:
        assert not at_probe(compiled, planted), "a value the JSON Schema allows was rejected"


def test_null_is_reported_as_a_mistake_not_as_absent(tmp_path: Path) -> None:
    field = next(f for f in FIELDS if f.id == "Target.weight")
    planted = plant(tmp_path, field, "null")
    (diag,) = at_probe(compile_at(planted), planted)
    assert diag.code == "E0204"
    assert diag.message.endswith("expected a weight (number), found null")
    assert diag.help == "omit the field for the default"


def test_a_quoted_word_is_not_offered_back_unquoted(tmp_path: Path) -> None:
    field = next(f for f in FIELDS if f.id == "RateLimit.limit")
    planted = plant(tmp_path, field, '"sixty"')
    (diag,) = at_probe(compile_at(planted), planted)
    assert diag.code == "E0204" and diag.help is not None
    assert "`sixty`" not in diag.help
    planted = plant(tmp_path / "digits", field, '"60"')
    (diag,) = at_probe(compile_at(planted), planted)
    assert diag.help == "write a plain number, not text: e.g. `60` without quotes"


def _free_probe(field: Field) -> tuple[str | int, ...]:
    return ("metadata.probe",) if field.model == "Condition" else ("probe",)


@pytest.mark.parametrize("name", list(FREE_WRONG))
@pytest.mark.parametrize("field", FREE, ids=lambda f: f.id)
def test_free_form_number_json_cannot_hold(field: Field, name: str, tmp_path: Path) -> None:
    planted = plant(tmp_path, field, FREE_WRONG[name], extra=_free_probe(field))
    assert_rejected_there(compile_at(planted), planted, ("E0214", "E0215"))


@pytest.mark.parametrize("name", list(FREE_FINE))
@pytest.mark.parametrize("field", FREE, ids=lambda f: f.id)
def test_free_form_number_json_holds(field: Field, name: str, tmp_path: Path) -> None:
    planted = plant(tmp_path, field, FREE_FINE[name], extra=_free_probe(field))
    compiled = compile_at(planted)
    assert not at_probe(compiled, planted)
    if compiled.data is not None:
        assert_strict_json(compiled.data)


def assert_strict_json(data: bytes) -> None:
    def refuse(token: str) -> None:
        raise AssertionError(f"the bundle holds {token}")

    json.loads(data, parse_constant=refuse)


def test_free_form_depth_and_size_are_bounded(tmp_path: Path) -> None:
    field = next(f for f in FREE if f.id == "Target.metadata")
    deep = "[" * (MAX_DEPTH + 1) + "1" + "]" * (MAX_DEPTH + 1)
    planted = plant(tmp_path / "deep", field, deep, extra=("probe",))
    compiled = compile_at(planted)
    assert compiled.data is None
    assert any(d.code == "E0216" for d in compiled.diagnostics)
    wide = "[" + ", ".join(["1"] * (MAX_VALUES + 1)) + "]"
    planted = plant(tmp_path / "wide", field, wide, extra=("probe",))
    compiled = compile_at(planted)
    assert [d.code for d in compiled.errors] == ["E0216"]


def test_every_free_form_problem_in_one_run(tmp_path: Path) -> None:
    field = next(f for f in FREE if f.id == "Target.default_params")
    planted = plant(tmp_path, field, "{a: .nan, b: [1, 1e400], c: {d: 9007199254740993}}")
    codes = sorted(d.code for d in compile_at(planted).errors)
    assert codes == ["E0214", "E0215", "E0215"]


# -- the real CLI, for a sample ------------------------------------------------------------

CLI_SAMPLE = [
    ("Target.weight", "null"),
    ("Target.request_timeout", "1e400"),
    ("Retry.attempts", "1e5000"),
    ("Budget.limit", "9" * 5000),
    ("Pricing.input", ".nan"),
    ("RateLimit.burst", "-.inf"),
]


@pytest.mark.parametrize(
    ("field_id", "token"), CLI_SAMPLE, ids=[f"{f}={t[:8]}" for f, t in CLI_SAMPLE]
)
def test_cli_rejects_and_writes_nothing(field_id: str, token: str, tmp_path: Path) -> None:
    field = next(f for f in FIELDS if f.id == field_id)
    planted = plant(tmp_path, field, token)
    rel = planted.file.relative_to(planted.root).as_posix()
    out = tmp_path / "bundle.json"
    run = catalogc("compile", ".", "-o", out, cwd=planted.root)
    assert_sound(run)
    assert run.returncode == 1
    assert re.search(
        rf"^{re.escape(rel)}:{planted.line}:{planted.column}: error\[E0", run.stdout, re.M
    ), run.stdout
    assert not out.exists()
    run = catalogc("validate", ".", "--format", "json", cwd=planted.root)
    assert_sound(run)
    assert run.returncode == 1
    report = json.loads(run.stdout)
    starts = [(d["file"], d["range"]["start"]) for d in report["diagnostics"]]
    assert (rel, {"line": planted.line, "column": planted.column}) in starts


# -- the law behind every field: a value in bounds, or a typed error ------------------------


def _numeric_metadata() -> list[tuple[str, Numeric]]:
    out = []
    for model in _all_models():
        for name in sorted(numeric_fields(model)):
            info = model.model_fields[name]
            metas = [m for m in _metadata(info.annotation, info.metadata) if isinstance(m, Numeric)]
            out += [(f"{model.__name__}.{name}", m) for m in metas]
    return out


def _all_models() -> list[type[Strict]]:
    seen: list[type[Strict]] = []
    stack: list[type] = [Strict]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.append(sub)
                stack.append(sub)
    return sorted(seen, key=lambda c: c.__name__)


def _metadata(annotation: Any, metadata: list[Any]) -> list[Any]:
    import typing

    found = list(metadata)
    for arg in typing.get_args(annotation):
        found += _metadata(arg, [])
    if typing.get_origin(annotation) is typing.Annotated:
        found += list(annotation.__metadata__)
    return found


NUMERIC = _numeric_metadata()
ANY_NUMBER = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**70), max_value=10**70),
    st.decimals(min_value=-(10**6), max_value=10**6, places=8),
    st.builds(lambda e: Decimal(f"1e{e}"), st.integers(-(10**6), 10**6)),
    st.text(alphabet="0123456789.-e", max_size=80),
    st.none(),
    st.booleans(),
)


def test_every_numeric_field_declares_its_bounds() -> None:
    assert len(NUMERIC) >= 20
    for name, meta in NUMERIC:
        schema = meta.json_schema()
        text = json.dumps(schema)
        assert '"maximum"' in text or name.startswith("Budget.limit"), name


@settings(max_examples=300)
@given(st.sampled_from(NUMERIC), ANY_NUMBER)
def test_a_number_is_in_bounds_or_a_typed_error(field: tuple[str, Numeric], value: Any) -> None:
    name, meta = field
    try:
        result = meta.validate(value)
    except PydanticCustomError as err:
        assert err.type in ("E0204", "E0205", "E0206", "E0214", "E0401"), (name, err.type)
        assert len(err.message()) < 300
        return
    schema = meta.json_schema()
    number = next(b for b in schema.get("anyOf", [schema]) if b.get("type") != "string")
    assert Decimal(result).is_finite()
    assert Decimal(result) >= Decimal(str(number.get("minimum", number.get("exclusiveMinimum"))))
    if "maximum" in number:
        assert Decimal(result) <= Decimal(str(number["maximum"]))
    if number["type"] == "integer":
        assert isinstance(result, int) and not isinstance(result, bool)
