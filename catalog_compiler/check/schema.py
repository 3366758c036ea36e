"""Per-document structure check: `kind` dispatch, pydantic validation, located diagnostics."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from catalog_compiler.diagnostics import Sink, Span
from catalog_compiler.diagnostics.redact import mask
from catalog_compiler.load.positions import key_pos, value_pos
from catalog_compiler.load.yamlparse import Document
from catalog_compiler.model.common import Strict
from catalog_compiler.model.documents import KINDS
from catalog_compiler.model.errors import type_name
from runtime.bundle.suggest import did_you_mean, hint

Loc = Sequence[str | int]

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "decimal_type": "a number",
    "float_type": "a number",
}


# Codes whose message is prefixed with the field it is about.
_PREFIXED = frozenset({"E0204", "E0205", "E0206", "E0214", "E0215", "E0216"})

# Words people write for an enum value that are not typos of it.
SYNONYMS = {
    "dollars": "usd", "dollar": "usd", "$": "usd", "token": "tokens", "request": "requests",
    "req": "requests", "rpm": "requests", "tpm": "tokens", "sec": "second", "seconds": "second",
    "min": "minute", "minutes": "minute", "hours": "hour", "days": "day", "hr": "hour",
    "round-robin": "loadbalance", "load-balance": "loadbalance", "failover": "fallback",
}  # fmt: skip


@dataclass(slots=True)
class Checked:
    """A document that passed the structure check, with its typed model."""

    doc: Document
    kind: str
    model: Strict


def format_loc(loc: Loc) -> str:
    out = ""
    for step in loc:
        name = short(str(step))
        out += f"[{step}]" if isinstance(step, int) else (f".{name}" if out else name)
    return out


def short(text: str, limit: int = 60) -> str:
    """User text as a message quotes it: secret shapes masked, at most ~`limit` characters."""
    text = mask(text)
    return text if len(text) <= limit else f"{text[: limit - 20]}…({len(text):,} chars)"


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else args[0]
        else:
            return tp


def _descend(root: type[BaseModel], loc: Loc) -> tuple[Any, bool]:
    """(the type at `loc` or None, whether `loc` passed through a field its model lacks)."""
    tp: Any = root
    for step in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(step))
            if field is None:
                return None, True
            tp = field.annotation
        elif origin in (tuple, list):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None, False  # inside a free-form value: any key goes
    return _unwrap(tp), False


def type_at(root: type[BaseModel], loc: Loc) -> Any:
    """The type describing the value at `loc` (a model, a scalar type, `Any`), or None."""
    return _descend(root, loc)[0]


def names_unknown_field(root: type[BaseModel], loc: Loc) -> bool:
    """Does `loc` pass through a field its model does not have (a typo, reported as E0202)?
    False where it enters a free-form value (params, metadata), which takes any key."""
    return _descend(root, loc)[1]


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model describing the mapping at `loc`, if there is one."""
    tp = type_at(root, loc)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _where(kind: str, loc: Loc) -> str:
    return f"`{format_loc(loc)}`" if loc else kind


def _report(
    err: Any, doc: Document, kind: str, cls: type[Strict], sink: Sink, seen: set[Any]
) -> None:
    etype: str = err["type"]
    loc: tuple[str | int, ...] = tuple(err["loc"])
    ctx: dict[str, Any] = err.get("ctx") or {}
    if "field" in ctx:  # a check across fields names the one to point at (or a path to it)
        where = ctx["field"]
        loc = (*loc, *where) if isinstance(where, tuple) else (*loc, where)
    value = err.get("input")
    pos = value_pos(doc.pos, loc)
    if loc and loc[-1] == "[key]":  # a mapping key that is invalid itself (an alias name)
        loc = loc[:-1]
        pos = key_pos(doc.pos, loc)
    help_text: str | None = ctx.get("hint")
    if etype == "extra_forbidden":
        name = str(loc[-1])
        parent = model_at(cls, loc[:-1])
        fields = sorted(parent.model_fields) if parent else []
        code, pos = "E0202", key_pos(doc.pos, loc)
        message = f"unknown field `{short(name)}` in {_where(kind, loc[:-1])}"
        help_text = hint(name, fields) or (
            f"allowed here: {', '.join(fields)}" if 0 < len(fields) <= 12 else None
        )
    elif etype == "missing":
        code = "E0203"
        pos = value_pos(doc.pos, loc[:-1])
        message = f"missing required field `{loc[-1]}` in {_where(kind, loc[:-1])}"
    elif etype.startswith("E0"):
        code, message = etype, _bounded(err["msg"], ctx)
        if etype == "E0207" and "fix" in ctx and mask(str(value)) == str(value):
            help_text = f"try `{ctx['fix']}`"  # never a fix made from secret-shaped text
        elif "choices" in ctx and isinstance(value, str):
            help_text = hint(value, ctx["choices"]) or help_text
        elif etype == "E0204":
            help_text = help_text or _type_hint(ctx.get("expected", ""), value)
    elif etype in _TYPE_WORDS:
        code = "E0204"
        message = f"expected {_TYPE_WORDS[etype]}, found {type_name(value)}"
    elif etype in ("literal_error", "enum"):
        code = "E0205"
        expected = str(ctx.get("expected", "")).replace("'", "`")
        shown = mask(str(value))[:40] if isinstance(value, str) else type_name(value)
        message = f"invalid value `{shown}` for {_where(kind, loc)}: expected {expected}"
        if isinstance(value, str):
            choices = [c.strip("` ") for c in expected.replace(" or ", ",").split(",")]
            same = SYNONYMS.get(value.lower())
            help_text = f"did you mean `{same}`?" if same in choices else hint(value, choices)
    else:
        code = "E0205"
        message = str(err["msg"])
    if loc and code in _PREFIXED and not message.startswith("invalid value"):
        message = f"{_where(kind, loc)}: {message}"
    # A value reached through several aliases fails once per path: report it once.
    key = (pos, code, str(loc[-1]) if loc else "")
    if key not in seen:
        seen.add(key)
        sink.emit(code, message, Span.at(doc.file, pos), help=help_text)


_PLAIN_INTEGER = re.compile(r"-?[0-9]{1,20}\Z")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?\Z")
_NUMERIC_WORDS = ("an integer", "a whole number", "a number", "a weight", "an HTTP status")


def _bounded(message: str, ctx: dict[str, Any]) -> str:
    """A message whose echoed values are at most ~60 characters each (a value may be a
    5,000-digit number or a pasted blob)."""
    for value in ctx.values():
        if isinstance(value, str) and len(value) > 60:
            message = message.replace(value, short(value))  # masked before it is cut
    return message


def _type_hint(expected: str, value: Any) -> str | None:
    """How to write the value so YAML reads it as the type the field wants.

    Only text that *is* a plain number is offered back unquoted: `"sixty"` gets advice,
    never the suggestion to write `sixty`."""
    if isinstance(value, str) and expected.startswith("a price"):
        return 'write the price in digits, e.g. `2.50` or `"2.50"`'
    if isinstance(value, str) and expected.startswith(_NUMERIC_WORDS):
        text = value.strip()
        whole = not expected.startswith(("a number", "a weight"))
        if (_PLAIN_INTEGER if whole else _PLAIN_DECIMAL).match(text):
            return f"write a plain number, not text: e.g. `{text}` without quotes"
        if re.fullmatch(r"-?[0-9][0-9_,]*(\.[0-9]+)?", text):
            return "write the number without `_` or `,` separators"
        return "write the number in digits, without quotes (e.g. `60`)"
    if isinstance(value, str) and expected == "true or false":
        return "write `true` or `false` (YAML 1.2 reads yes/no/on/off as text)"
    if expected == "a string" and isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return f'quote it: `"{value}"` (YAML reads unquoted numbers as numbers)'
    if expected == "a string" and isinstance(value, bool):
        return f'quote it: `"{str(value).lower()}"` (YAML reads it as a boolean)'
    return None


def _without_typo_twins(errors: list[Any], cls: type[Strict]) -> list[Any]:
    """Drop "missing `limit`" when the same mapping has an unknown `limt`: one typo, one error."""
    typos: set[tuple[Any, ...]] = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            loc = tuple(err["loc"])
            parent = model_at(cls, loc[:-1])
            guess = did_you_mean(str(loc[-1]), parent.model_fields) if parent else None
            if guess:
                typos.add((*loc[:-1], guess))
    return [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"]) in typos)]


def check_document(doc: Document, sink: Sink) -> Checked | None:
    """Validate one document's structure; report every problem; None if it is invalid."""
    data = doc.data
    if not isinstance(data, dict):
        sink.emit(
            "E0213",
            f"a catalog document is a mapping with `kind:`, found {type_name(data)}",
            Span.at(doc.file, value_pos(doc.pos, ())),
        )
        return None
    kind = data.get("kind")
    if kind is None:
        sink.emit(
            "E0200",
            "document has no `kind:`",
            Span.at(doc.file, value_pos(doc.pos, ())),
            help=f"add one of: {', '.join(KINDS)}",
        )
        return None
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        shown = kind if isinstance(kind, str) else type_name(kind)
        guess = did_you_mean(shown, KINDS) if isinstance(kind, str) else None
        sink.emit(
            "E0201",
            f"unknown kind `{shown}`",
            Span.at(doc.file, value_pos(doc.pos, ("kind",))),
            help=f"did you mean `{guess}`?" if guess else f"kinds are: {', '.join(KINDS)}",
        )
        return None
    try:
        model = cls.model_validate(data)
    except ValidationError as exc:
        seen: set[Any] = set()
        for err in _without_typo_twins(exc.errors(include_url=False), cls):
            _report(err, doc, kind, cls, sink, seen)
        return None
    return Checked(doc, kind, model)
