"""Model aliases (`aliases:` on the Organization and on a Workspace): a short name a request
may send as its model, standing for `@provider/model` or for a named routing config.

An alias name is model-like so it can travel in `model:` unchanged: 1-128 characters of
letters, digits and `. _ : / -`, starting with a letter or digit. No `@` (that starts a
`@provider/model` string), no `*` (a glob in allow lists), no spaces.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from catalog_compiler.model.common import Strict
from catalog_compiler.model.errors import wrong_type
from catalog_compiler.model.types import SLUG_RE, Slug

ALIAS_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"
ALIAS_NAME_RE = re.compile(ALIAS_NAME_PATTERN[:-1] + r"\Z")
ALIAS_TARGET_PATTERN = r"^@[a-z0-9][a-z0-9-]{0,62}/\S{1,256}$"


class ConfigTarget(Strict):
    """`{config: slug}`: the alias stands for a named routing config."""

    config: Slug


def _alias_name(value: Any) -> str:
    if not isinstance(value, str):
        raise wrong_type("an alias name (string)", value)
    if not ALIAS_NAME_RE.match(value):
        fix = re.sub(r"[^A-Za-z0-9._:/-]+", "-", value.lstrip("@/")).strip("-")[:128]
        raise PydanticCustomError(
            "E0205",
            "`{value}` is not a valid alias name: 1-128 letters, digits and `. _ : / -`, "
            "starting with a letter or digit (no `@`, no `*`, no spaces)",
            {"value": value[:80], "hint": f"try `{fix or 'fast'}`"},
        )
    return value


def _model_string(value: str) -> str:
    provider, slash, model = value[1:].partition("/")
    ok = value.startswith("@") and slash and SLUG_RE.match(provider) and 0 < len(model) <= 256
    if not ok or any(c.isspace() for c in model):
        raise PydanticCustomError(
            "E0205",
            "an alias target is `@provider/model` or `{config: slug}`, found `{value}`",
            {"value": value[:80], "hint": 'write e.g. `"@openai-prod/gpt-4o-mini"`'},
        )
    return value


def _alias_target(value: Any) -> str | ConfigTarget:
    if isinstance(value, str):
        return _model_string(value)
    if not isinstance(value, dict):
        raise wrong_type("`@provider/model` or `{config: slug}`", value)
    extra = sorted(str(k) for k in value if k != "config")
    if extra:
        raise PydanticCustomError(
            "E0202",
            "unknown field `{name}` in an alias: an alias is `{config: slug}`",
            {"name": extra[0][:60], "hint": "write `{config: <slug>}`"},
        )
    if "config" not in value:
        raise PydanticCustomError("E0203", "missing required field `config` in an alias", {})
    slug = value["config"]
    if not isinstance(slug, str):
        raise wrong_type("a config slug (string)", slug)
    if not SLUG_RE.match(slug):
        raise PydanticCustomError(
            "E0207", "`{value}` is not a valid config slug", {"value": slug[:80]}
        )
    return ConfigTarget.model_construct(config=slug)


AliasName = Annotated[
    str,
    PlainValidator(_alias_name),
    WithJsonSchema({"type": "string", "pattern": ALIAS_NAME_PATTERN}),
]
TARGET_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "pattern": ALIAS_TARGET_PATTERN,
            "description": "`@provider/model`",
            "examples": ["@openai-prod/gpt-4o-mini"],
        },
        {"$ref": "#/$defs/ConfigTarget"},  # one definition, whatever refers to it
    ]
}
AliasTarget = Annotated[str | ConfigTarget, PlainValidator(_alias_target)]
Aliases = Annotated[
    dict[AliasName, AliasTarget],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": ALIAS_NAME_PATTERN},
            "additionalProperties": TARGET_SCHEMA,
        }
    ),
]
ALIASES_DESCRIPTION = (
    "model aliases: name -> `@provider/model` or `{config: slug}`; a request may send the "
    "name as its model (a Workspace's alias overrides the Organization's of the same name)"
)
