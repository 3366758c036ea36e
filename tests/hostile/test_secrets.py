"""Secrets, wider net (ISSUE9 item 9): a secret in any string field, under any credential
name or auth header, is an error, never reaches a bundle, and no output format prints it.

Every string field of the language (enumerated from the generated JSON Schema) gets a
known-format key, a password in a URL, a token as a URL's user part and a Bearer value;
every place that takes arbitrary keys gets credential-named keys and auth headers with
short, low-entropy values. Each is checked in-process in all four output formats; the
real CLI runs each probe kind planted in every field at once, in every format.

Probe counts (lead's tally): 104 string fields × 4 value probes (a rotating FAKE_SECRETS
key, URL password, URL token, Bearer) = 416; 13 keyed places × 11 credential names = 143;
13 numbers under a credential name; 12 unresolved references; 1 query operator; 6
false-positive probes; CLI: 8 probe kinds, each planted in every field at once, × 4
formats = 32 runs. Every probe is checked in all 4 formats.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from catalog_compiler.compiler import Compiled, compile_catalog
from catalog_compiler.diagnostics.redact import mask, mask_same_length
from catalog_compiler.diagnostics.report import REPORTER_BY_NAME
from catalog_compiler.diagnostics.report.base import Summary
from catalog_compiler.registry import builtin
from tests.hostile.acme_fields import (
    Field,
    Planted,
    Probe,
    branches,
    defs,
    free_form_fields,
    plant,
    plant_many,
    string_fields,
)
from tests.hostile.conftest import FAKE_SECRETS, assert_sound, catalogc

REGISTRY = builtin()
FORMATS = ("text", "json", "github", "sarif")
STRINGS = string_fields()

URL_PASSWORD = "FAKEpassw0rd-in-url"
URL_TOKEN = "FAKEtoken0123456789abcdef"
BEARER = "FAKEbearer0123456789"
# (probe name, the value written, the secret that must never be printed)
VALUE_PROBES = [
    *[(f"known-{s[:4]}", s, s) for s in FAKE_SECRETS],
    ("url-password", f"https://svc:{URL_PASSWORD}@llm.example.com/v1", URL_PASSWORD),
    ("url-token", f"https://{URL_TOKEN}@llm.example.com/v1", URL_TOKEN),
    ("bearer", f"Bearer {BEARER}", BEARER),
]
# Credential names in the styles people write them, each with a short, boring value.
CREDENTIAL_KEYS = ("api_key", "apiKey", "client_secret", "password", "private_key",
                   "access_token", "Authorization", "Proxy-Authorization", "x-api-key",
                   "X-Goog-Api-Key", "cookie")  # fmt: skip
SHORT_SECRET = "FAKE-pw-7"


def keyed_places() -> list[Field]:
    """Fields taking arbitrary keys: free-form objects, and typed mappings (`headers`,
    `settings`, `credentials`)."""
    maps = [
        Field(model, name, (), branch)
        for model, body in sorted(defs().items())
        for name, prop in sorted(body.get("properties", {}).items())
        for branch in branches(prop)
        if branch.get("type") == "object" and isinstance(branch.get("additionalProperties"), dict)
    ]
    return [*free_form_fields(), *maps]


KEYED = keyed_places()


def compile_at(planted: Planted) -> Compiled:
    return compile_catalog(planted.root, registry=REGISTRY)


def rendered(compiled: Compiled) -> dict[str, str]:
    """What each output format prints for this compile."""
    out = {}
    summary = Summary(len(compiled.validation.sources), compiled.validation.document_count)
    for fmt in FORMATS:
        stream = io.StringIO()
        REPORTER_BY_NAME[fmt](stream).report(compiled.diagnostics, summary)
        out[fmt] = stream.getvalue()
    return out


def secret_codes_at(compiled: Compiled, planted: Planted) -> list[str]:
    return [
        d.code
        for d in compiled.diagnostics
        if Path(d.span.file).resolve() == planted.file.resolve()
        and (d.span.line, d.span.column) == (planted.line, planted.column)
    ]


def assert_caught(compiled: Compiled, planted: Planted, secret: str, code: str = "E0400") -> None:
    codes = secret_codes_at(compiled, planted)
    assert code in codes, f"no {code} at {planted.line}:{planted.column}: {compiled.diagnostics}"
    assert compiled.data is None, "a bundle was produced"
    for fmt, text in rendered(compiled).items():
        assert secret not in text, f"{fmt} output prints the secret"


@pytest.mark.parametrize("probe", VALUE_PROBES[len(FAKE_SECRETS) :], ids=lambda p: p[0])
@pytest.mark.parametrize("field", STRINGS, ids=lambda f: f.id)
def test_secret_in_string_field(field: Field, probe: tuple[str, str, str], tmp_path: Path) -> None:
    _, value, secret = probe
    planted = plant(tmp_path, field, json.dumps(value))
    assert_caught(compile_at(planted), planted, secret)


@pytest.mark.parametrize("field", STRINGS, ids=lambda f: f.id)
def test_known_format_in_string_field(field: Field, tmp_path: Path) -> None:
    """Each string field gets one of the FAKE_SECRETS (rotating): every format is known."""
    secret = FAKE_SECRETS[STRINGS.index(field) % len(FAKE_SECRETS)]
    planted = plant(tmp_path, field, json.dumps(secret))
    assert_caught(compile_at(planted), planted, secret)


@pytest.mark.parametrize("key", CREDENTIAL_KEYS)
@pytest.mark.parametrize("field", KEYED, ids=lambda f: f.id)
def test_credential_name_with_a_short_literal(field: Field, key: str, tmp_path: Path) -> None:
    extra: tuple[str | int, ...] = (f"metadata.{key}",) if field.model == "Condition" else (key,)
    if field.name == "credentials":
        extra = ("api_key",)  # the one credential an anthropic integration takes
    planted = plant(tmp_path, field, json.dumps(SHORT_SECRET), extra=extra)
    assert_caught(compile_at(planted), planted, SHORT_SECRET)


@pytest.mark.parametrize("field", KEYED, ids=lambda f: f.id)
def test_a_number_under_a_credential_name_is_a_literal(field: Field, tmp_path: Path) -> None:
    """Also where the field wants text: "quote it: `"424242"`" must not echo it."""
    extra = ("metadata.password",) if field.model == "Condition" else ("password",)
    if field.name == "credentials":
        extra = ("api_key",)
    planted = plant(tmp_path, field, "424242", extra=extra)
    assert_caught(compile_at(planted), planted, "424242")


# The gateway reads references in credentials and in the `headers` of integrations,
# providers and custom models (runtime/gateway/endpoints.py); nothing else resolves one.
RESOLVED = {"credentials", "headers"}


@pytest.mark.parametrize("field", [f for f in KEYED if f.name not in RESOLVED], ids=lambda f: f.id)
def test_a_reference_nothing_resolves(field: Field, tmp_path: Path) -> None:
    extra = ("metadata.api_key",) if field.model == "Condition" else ("api_key",)
    planted = plant(tmp_path, field, "{env: FAKE_KEY_NAME}", extra=extra)
    codes = secret_codes_at(compile_at(planted), planted)
    assert "E0402" in codes


@pytest.mark.parametrize("field", [f for f in KEYED if f.name == "headers"], ids=lambda f: f.id)
def test_a_header_reference_is_resolved_so_fine(field: Field, tmp_path: Path) -> None:
    assert field.model in ("CustomModel", "Integration", "Model", "Provider")
    planted = plant(tmp_path, field, "{env: FAKE_KEY_NAME}", extra=("X-Api-Key",))
    compiled = compile_at(planted)
    assert not secret_codes_at(compiled, planted), compiled.diagnostics


def test_a_query_comparing_a_credential_field(tmp_path: Path) -> None:
    field = next(f for f in KEYED if f.model == "Condition")
    planted = plant(tmp_path, field, json.dumps(SHORT_SECRET), extra=("metadata.api_key", "$eq"))
    assert_caught(compile_at(planted), planted, SHORT_SECRET)


# -- no false alarms -----------------------------------------------------------------------

FINE = [
    ("Target.metadata", ("max_tokens",), "100"),
    ("Target.default_params", ("token_limit",), "5"),
    ("Target.metadata", ("note",), '"the password is rotated monthly"'),
    ("Target.custom_host", (), '"https://llm.example.com/v1"'),
    ("Provider.description", (), '"see https://medium.com/@acme and our Bearer docs"'),
    ("Target.metadata", ("api_key_env",), '"OPENAI_API_KEY"'),
]


@pytest.mark.parametrize(("field_id", "extra", "token"), FINE, ids=[f"{f}{e}" for f, e, _ in FINE])
def test_no_false_alarm(field_id: str, extra: tuple[str, ...], token: str, tmp_path: Path) -> None:
    fields = {f.id: f for f in [*STRINGS, *KEYED]}
    planted = plant(tmp_path, fields[field_id], token, extra=extra)
    compiled = compile_at(planted)
    assert not [d for d in compiled.diagnostics if d.code.startswith("E04")]
    if field_id == "Target.custom_host":
        # not a secret; but a host the catalog does not allow for that provider (E0507)
        assert {d.code for d in compiled.errors} <= {"E0507"}
    else:
        assert compiled.ok


# -- masking, as every reporter applies it ----------------------------------------------------


def test_mask_hides_url_credentials_and_auth_values() -> None:
    text = f"`https://svc:{URL_PASSWORD}@h.example.com` and Bearer {BEARER}"
    assert URL_PASSWORD not in mask(text) and BEARER not in mask(text)
    line = f'  base_url: "https://svc:{URL_PASSWORD}@h.example.com"  # Bearer {BEARER}'
    hidden = mask_same_length(line, [])
    assert len(hidden) == len(line)
    assert URL_PASSWORD not in hidden and BEARER not in hidden
    assert "h.example.com" in hidden


def test_a_short_secret_shows_no_characters() -> None:
    line = f"  password: {SHORT_SECRET}"
    assert mask_same_length(line, [(13, 13 + len(SHORT_SECRET))]) == "  password: " + "*" * 9


# -- the real CLI: each probe in every field at once, every format ---------------------------

CLI_PROBES = [(name, json.dumps(value), secret) for name, value, secret in VALUE_PROBES]
CLI_PROBES.append(("credential-keys", json.dumps(SHORT_SECRET), SHORT_SECRET))


def _cli_plant(tmp: Path, name: str, token: str) -> list[Planted]:
    if name == "credential-keys":
        probes = [
            Probe(f, token, (f"metadata.{k}",) if f.model == "Condition" else (k,))
            for f in KEYED
            if f.name != "credentials"
            for k in CREDENTIAL_KEYS[:3]
        ]
    else:  # `kind` is left alone: a document of unknown kind gets no further checks
        probes = [Probe(f, token) for f in STRINGS if f.name != "kind"]
    return plant_many(tmp, probes)


@pytest.mark.parametrize(("name", "token", "secret"), CLI_PROBES, ids=[p[0] for p in CLI_PROBES])
def test_cli_every_format(name: str, token: str, secret: str, tmp_path: Path) -> None:
    planted = _cli_plant(tmp_path, name, token)
    root = planted[0].root
    out = tmp_path / "bundle.json"
    for fmt in FORMATS:
        run = catalogc("compile", ".", "-o", out, "--format", fmt, cwd=root)
        assert_sound(run, secrets=[secret, *FAKE_SECRETS])
        assert run.returncode == 1, run.output[-2000:]
        assert not out.exists()
        if fmt == "json":
            assert_every_probe_reported(json.loads(run.stdout), planted, root)


def assert_every_probe_reported(report: dict[str, Any], planted: list[Planted], root: Path) -> None:
    found = {
        (d["file"], d["range"]["start"]["line"], d["range"]["start"]["column"])
        for d in report["diagnostics"]
        if d["code"] == "E0400"
    }
    for p in planted:
        where = (p.file.relative_to(root).as_posix(), p.line, p.column)
        assert where in found, f"no E0400 at {where}"
