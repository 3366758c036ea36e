"""Values that may be written, or be a reference resolved by the gateway at start:
`base_url` and custom `headers` of integrations, providers and models (self-hosted
endpoints differ per environment). The reference syntax is the credentials' own,
`{env: NAME}` or `{file: PATH}`; the bundle keeps `{"ref": "env:NAME"}`, never a value."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field, PlainValidator, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from catalog_compiler.model.common import SecretRef
from catalog_compiler.model.types import _text, _url

URL_SCHEMA = {"type": "string", "pattern": "^https?://", "format": "uri"}
REF_SCHEMA = {
    "type": "object",
    "description": "a reference `{env: NAME}` or `{file: PATH}`, read by the gateway at start",
    "properties": {
        "env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "file": {"type": "string", "minLength": 1},
    },
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
}


def _or_ref(plain: Callable[[Any], str]) -> Callable[[Any], str | SecretRef]:
    def validate(value: Any) -> str | SecretRef:
        if not isinstance(value, dict):
            return plain(value)
        try:
            return SecretRef.model_validate(value)
        except ValidationError as exc:  # one report, at the value, in the reference's words
            first = exc.errors(include_input=False)[0]
            code = first["type"] if first["type"].startswith("E0") else "E0205"
            name = ".".join(str(step) for step in first["loc"])
            if first["type"] == "extra_forbidden":
                msg = f"unknown field `{name}` in a reference"
            else:
                msg = f"`{name}`: {first['msg']}" if name else first["msg"]
            hint = "write `{env: NAME}` or `{file: PATH}`"
            raise PydanticCustomError(code, "{msg}", {"msg": msg, "hint": hint}) from None

    return validate


UrlOrRef = Annotated[
    str | SecretRef,
    PlainValidator(_or_ref(_url)),
    WithJsonSchema({"anyOf": [URL_SCHEMA, REF_SCHEMA]}),
]
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_HEADERS = 64  # as the runtime's bundle check
HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$"


def _header_name(value: Any) -> str:
    text = _text(value)
    if not _HEADER_NAME.match(text):
        raise PydanticCustomError(
            "E0205", "`{name}` is not an HTTP header name", {"name": text[:60]}
        )
    return text


def _header_text(value: Any) -> str:
    text = _text(value)
    if _CONTROL.search(text):  # a line break would forge headers
        raise PydanticCustomError("E0205", "a header value has no line breaks or controls", {})
    return text


HeaderName = Annotated[
    str,
    PlainValidator(_header_name),
    WithJsonSchema({"type": "string", "pattern": HEADER_NAME_PATTERN}),
]
HeaderValue = Annotated[
    str | SecretRef,
    PlainValidator(_or_ref(_header_text)),
    WithJsonSchema({"anyOf": [{"type": "string"}, REF_SCHEMA]}),
]
Headers = Annotated[
    dict[HeaderName, HeaderValue],
    Field(max_length=MAX_HEADERS),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_HEADERS,
            "propertyNames": {"pattern": HEADER_NAME_PATTERN},
            "additionalProperties": {"anyOf": [{"type": "string"}, REF_SCHEMA]},
        }
    ),
]
HEADERS_DOC = (
    "extra request headers sent upstream; a value is text, or `{env:}`/`{file:}` for a "
    "credential (a credential-named header must be a reference)"
)


def ref_json(value: str | SecretRef | None) -> str | dict[str, str] | None:
    """As the bundle writes it: the text, or `{"ref": "env:NAME"}`."""
    return {"ref": value.ref()} if isinstance(value, SecretRef) else value


def shown(value: str | SecretRef | None) -> str | None:
    """As explain and the gallery show it: the text, or `env:NAME` (never resolved)."""
    return value.ref() if isinstance(value, SecretRef) else value
