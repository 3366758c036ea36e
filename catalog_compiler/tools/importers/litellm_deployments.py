"""One `model_list` entry of a LiteLLM proxy config read as a `Deployment`: which service
and upstream model its `model` string names, and the endpoint (credentials, settings, base
URL) it reaches. What cannot be read is skipped or noted in the import's report; a literal
key is kept only as a hash, to tell two keys apart."""

from __future__ import annotations

import re
from collections.abc import Mapping
from hashlib import sha256
from typing import Any
from urllib.parse import urlsplit

from catalog_compiler.model.types import ENV_RE, HTTP_URL
from catalog_compiler.registry import Registry
from catalog_compiler.services import SERVICES, Service
from catalog_compiler.tools.importers import service_for
from catalog_compiler.tools.importers.emit import Report, env_name, valid_model_name
from catalog_compiler.tools.importers.litellm_input import Creds, Deployment, Endpoint
from catalog_compiler.tools.importers.litellm_tables import (
    AZURE_BASE,
    CREDENTIAL_PARAMS,
    ENV_PREFIX,
    LITELLM_DEFAULT_ENV,
    SETTING_PARAMS,
)


def read_deployment(
    index: int, entry: Any, registry: Registry, report: Report
) -> Deployment | None:
    where = f"model_list[{index}]"
    if not isinstance(entry, dict):
        report.skip(where, "not a deployment", "not a mapping")
        return None
    model_name = entry.get("model_name")
    params = entry.get("litellm_params")
    if not isinstance(model_name, str) or not model_name.strip():
        report.skip(where, "not a deployment", "no `model_name`")
        return None
    where = f"{where} {model_name}"
    if not isinstance(params, dict):
        report.skip(where, "not a deployment", "no `litellm_params`")
        return None
    model = params.get("model")
    if not isinstance(model, str) or not model.strip():
        report.skip(where, "not a deployment", "no `litellm_params.model`")
        return None
    raw_info = entry.get("model_info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    located = locate(where, model.strip(), params, registry, report)
    if located is None:
        return None
    service, group, upstream = located
    literals: list[tuple[str, str]] = []
    endpoint = read_endpoint(where, service, group, params, literals, report)
    return Deployment(index, model_name, model, upstream, endpoint, params, info, entry, literals)


def locate(
    where: str, model: str, params: Mapping[str, Any], registry: Registry, report: Report
) -> tuple[Service, str, str] | None:
    """(service, integration group, upstream model name) of a litellm `model` string."""
    explicit = params.get("custom_llm_provider")
    prefix, _, rest = model.partition("/")
    if isinstance(explicit, str) and explicit:
        prefix, rest = explicit, (rest if service_for(prefix) else model)
    elif "/" not in model:
        prefix, rest = infer_provider(model, registry), model
        if not prefix:
            report.skip(where, "unknown provider", f"cannot tell the provider of `{model}`")
            return None
    target = service_for(prefix)
    if target is None:
        report.skip(where, "unsupported provider", f"`{prefix}` (model `{model}`)")
        return None
    service = SERVICES[target.service]
    base = params.get("api_base") or params.get("base_url")
    if service.id == "openai" and isinstance(base, str) and "api.openai.com" not in base:
        service = SERVICES["openai-compatible"]  # LiteLLM's `openai/` + api_base idiom
        report.notes.append(
            f"{where}: `openai/…` with its own `api_base` is an OpenAI-compatible server: "
            "service `openai-compatible`"
        )
    if service.id == "bedrock" and rest.split("/", 1)[0] in ("converse", "invoke"):
        rest = rest.split("/", 1)[1] if "/" in rest else ""
    if not rest or not valid_model_name(rest):
        report.skip(where, "no model name", f"`{model}` names no model")
        return None
    group = target.group if target.service == service.id else service.id
    return service, group, rest


def infer_provider(model: str, registry: Registry) -> str:
    """LiteLLM's guess for a bare model name, as far as we can tell."""
    if registry.lookup("openai", model) or re.match(
        r"(gpt-|o[1-9]|chatgpt|dall-e|text-embedding|whisper|tts-|davinci|babbage|ft:)", model
    ):
        return "openai"
    if model.startswith("claude"):
        return "anthropic"
    for service in sorted(registry.services):
        if registry.lookup(service, model):
            return service
    return ""


def read_endpoint(
    where: str,
    service: Service,
    group: str,
    params: Mapping[str, Any],
    literals: list[tuple[str, str]],
    report: Report,
) -> Endpoint:
    creds = Creds()
    accepted = set(service.credentials) | set(service.optional_credentials)
    for param, field_name in CREDENTIAL_PARAMS.items():
        if param not in params or params[param] in (None, ""):
            continue
        if field_name not in accepted:
            report.notes.append(
                f"{where}: `{param}` has no place on service `{service.id}`: dropped"
            )
            continue
        if not credential(field_name, params[param], creds):
            literals.append((param, field_name))
    for field_name in service.credentials:
        if field_name not in creds.refs and field_name not in creds.literals:
            env = LITELLM_DEFAULT_ENV.get(service.id)
            if field_name.startswith("aws_"):
                env = field_name.upper()
            creds.refs[field_name] = {"env": env or env_name(group, field_name)}
    settings: dict[str, str] = {}
    base_url = read_base_url(where, service, params, settings, report)
    for param, setting in SETTING_PARAMS.items():
        value = params.get(param)
        if value is None or setting not in (*service.settings, *service.optional_settings):
            continue
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            report.notes.append(
                f"{where}: `{param}` is read from `{value[len(ENV_PREFIX) :]}` at run "
                f"time; the catalog needs the value: set `settings.{setting}`"
            )
            continue
        settings[setting] = str(value)
    return Endpoint(service, group, creds, settings, base_url)


def credential(field_name: str, value: Any, creds: Creds) -> bool:
    """Record a credential as a reference; False when it was a literal (kept only as
    a hash, to tell two keys apart: the value itself goes nowhere)."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        env = value[len(ENV_PREFIX) :].strip()
        if ENV_RE.match(env):
            creds.refs[field_name] = {"env": env}
            return True
    if field_name == "service_account_json" and isinstance(value, str) and _is_path(value):
        creds.refs[field_name] = {"file": value}
        return True
    creds.literals[field_name] = sha256(str(value).encode()).hexdigest()
    return False


def read_base_url(
    where: str,
    service: Service,
    params: Mapping[str, Any],
    settings: dict[str, str],
    report: Report,
) -> str | None:
    base = params.get("api_base") or params.get("base_url")
    if isinstance(base, str) and base.startswith(ENV_PREFIX):
        env = base[len(ENV_PREFIX) :]
        report.notes.append(
            f"{where}: `api_base` is read from `{env}` at run time; a catalog `base_url` "
            "is a literal URL: set it (a placeholder is written where one is required)"
        )
        base = None
    if not isinstance(base, str) or not base.strip():
        return None
    base = base.strip()
    if service.id == "azure-openai":
        found = AZURE_BASE.match(base.rstrip("/"))
        if found:
            settings["resource_name"] = found[1]
            return None
    if not HTTP_URL.match(base):
        report.notes.append(f"{where}: `api_base` is not an http(s) URL: dropped")
        return None
    parts = urlsplit(base)
    if "@" in parts.netloc or parts.query:  # user:password@ or ?key=…: maybe a secret
        report.notes.append(f"{where}: `api_base` carries credentials or a query: dropped, set it")
        return None
    return base.rstrip("/")


def _is_path(value: str) -> bool:
    return value.endswith(".json") and "\n" not in value and "{" not in value
