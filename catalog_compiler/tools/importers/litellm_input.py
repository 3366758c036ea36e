"""A LiteLLM proxy config as LiteLLM reads it (YAML 1.1, behind the catalog loader's bounds),
and the deployments, endpoints and credentials the import reads out of it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from catalog_compiler.diagnostics import Sink
from catalog_compiler.load.fsutil import read_input
from catalog_compiler.load.yamlparse import parse_text
from catalog_compiler.services import Service
from catalog_compiler.tools.importers import InputError


@dataclass
class Creds:
    """An integration's credentials: references, and literals awaiting a placeholder name."""

    refs: dict[str, dict[str, str]] = field(default_factory=dict)
    literals: dict[str, str] = field(default_factory=dict)  # field -> sha256 of the literal

    def identity(self) -> tuple[tuple[str, str], ...]:
        out = [(k, f"{next(iter(v))}:{next(iter(v.values()))}") for k, v in self.refs.items()]
        out += [(k, f"literal:{h}") for k, h in self.literals.items()]
        return tuple(sorted(out))


@dataclass
class Endpoint:
    """The integration a deployment uses: service, credentials, settings, base URL."""

    service: Service
    group: str
    creds: Creds
    settings: dict[str, str]
    base_url: str | None

    def identity(self) -> tuple[Any, ...]:
        return (
            self.service.id,
            self.group,
            self.creds.identity(),
            tuple(sorted(self.settings.items())),
            self.base_url,
        )


@dataclass
class Deployment:
    index: int
    model_name: str
    model: str  # the litellm `model` string
    upstream: str  # the model name the service knows ("*" or a glob for wildcards)
    endpoint: Endpoint
    params: dict[str, Any]
    info: dict[str, Any]
    entry: dict[str, Any]
    literals: list[tuple[str, str]] = field(default_factory=list)  # (param, credential)
    provider: str = ""  # slug, once assigned
    integration: str = ""


BOUNDS = {"E0103", "E0108", "E0109"}  # alias expansion, nesting depth, document count


def within_bounds(text: str, path: Path) -> None:
    """The catalog loader's guards first (alias bombs, nesting, document floods): the YAML
    1.1 loader below has none, and the import walks what it returns."""
    sink = Sink()
    parse_text(text, str(path), sink)
    for diag in sink:
        if diag.code in BOUNDS:
            raise InputError(f"{diag.span}: {diag.message}")


def load(path: Path) -> dict[str, Any]:
    """The config as LiteLLM reads it (YAML 1.1: `20_000` is a number, `True` a boolean)."""
    try:
        text = read_input(path).decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    within_bounds(text, path)
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 1)
    yaml.allow_duplicate_keys = True  # LiteLLM (PyYAML) keeps the last one
    try:
        with warnings.catch_warnings():  # ruamel's 40-line advice on YAML 1.1's `1e5` floats
            warnings.simplefilter("ignore")
            data = yaml.load(text)
    except YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path} is not valid YAML: {first}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a LiteLLM proxy config (a mapping with `model_list`)")
    models = data.get("model_list")
    if models is not None and not isinstance(models, list):
        raise InputError(f"{path}: `model_list` is not a list")
    return data
