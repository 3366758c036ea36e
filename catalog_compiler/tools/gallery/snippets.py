"""Ready-to-use request code for one model, in the three request forms the router resolves.

1. `model="@provider/model"` (the model string names both);
2. the provider header (`@provider`) plus the bare model;
3. a routing config (by slug) that reaches the model, with request metadata when a
   conditional branch needs it.

Each form is written for Python (the `portkey-ai` and `openai` SDKs), JavaScript (the
`portkey-ai` and `openai` npm packages) and curl, all pointed at the gateway. The gateway's
API key is never a value: snippets read it from an environment variable (`$CATALOG_API_KEY`).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from catalog_compiler.diagnostics import printable

LANGS = ("python", "js", "curl")
FORMS = ("model", "provider", "config")
SDKS = ("portkey-ai", "openai")
LANG_TITLES = {"python": "Python", "js": "JavaScript", "curl": "curl"}
FORM_TITLES = {
    "model": "Model string",
    "provider": "Provider header",
    "config": "Config",
}

DEFAULT_GATEWAY_URL = "http://localhost:8787/v1"
PORTKEY_HEADERS = {
    "provider_header": "x-portkey-provider",
    "config_header": "x-portkey-config",
    "api_key_header": "x-portkey-api-key",
    "metadata_header": "x-portkey-metadata",
}
DEFAULT_API_KEY_ENV = "CATALOG_API_KEY"

CHAT_PROMPT = "Say hello in one short sentence."
COMPLETION_PROMPT = "Once upon a time"
# The endpoint each mode is asked on (runtime/routing/modes.py); a mode without one gets no snippet.
MODE_ENDPOINTS = {"chat": "/chat/completions", "completion": "/completions",
                  "embedding": "/embeddings", "responses": "/responses"}  # fmt: skip
EMBEDDING_INPUT = "The quick brown fox jumps over the lazy dog."
# The keyword arguments the Python SDKs' create() take per mode, less those a snippet writes
# itself (the openai SDK refuses any other; Portkey's passes the rest on). Any other request
# parameter, a Python keyword (`lambda`) or a name the SDK keeps for itself (`timeout`,
# `extra_body`) included, goes in `extra_body`, which both merge into the JSON body; except
# Portkey's embeddings, which sends its other keyword arguments as the body
# (and `extra_body` as one member of it): there, `**{...}`.
_SAMPLING = ("max_tokens", "temperature", "top_p", "n", "stop", "seed", "user", "logprobs",
             "presence_penalty", "frequency_penalty")  # fmt: skip
PY_NAMED = {
    "chat": frozenset({*_SAMPLING, "max_completion_tokens", "top_logprobs", "store",
                       "parallel_tool_calls", "reasoning_effort", "service_tier"}),
    "completion": frozenset({*_SAMPLING, "suffix", "echo", "best_of"}),
    "embedding": frozenset({"dimensions", "user"}),
    "responses": frozenset({"max_output_tokens", "temperature", "top_p", "user", "store",
                            "parallel_tool_calls", "service_tier", "instructions"}),
}  # fmt: skip

_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESERVED_PARAMS = frozenset({"model", "messages", "input", "stream"})
Scalar = str | int | float | bool
_URL = re.compile(r"https?://[^\s'\"`\\<>{}$]+\Z")
# What a string literal or JSON text escapes although JSON need not: DEL, C1 controls, bidi
# overrides, line and paragraph separators, lone surrogates. Copied code shows no raw control
# (a terminal would act on it), and reads as it runs (no reordering).
_ESCAPED = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


@dataclass(frozen=True)
class Gateway:
    """Where clients send requests, and the header names the gateway reads."""

    url: str = DEFAULT_GATEWAY_URL
    provider_header: str = PORTKEY_HEADERS["provider_header"]
    config_header: str = PORTKEY_HEADERS["config_header"]
    api_key_header: str = PORTKEY_HEADERS["api_key_header"]
    metadata_header: str = PORTKEY_HEADERS["metadata_header"]
    api_key_env: str = DEFAULT_API_KEY_ENV

    def __post_init__(self) -> None:
        if not _URL.match(self.url):
            raise ValueError(
                f"`{self.url}` is not a gateway URL: write http(s)://host[:port]/path "
                "without quotes, spaces or `$`"
            )
        for name in PORTKEY_HEADERS:
            value = getattr(self, name)
            if not _HEADER_NAME.match(value):
                raise ValueError(f"`{value}` is not an HTTP header name")
        if not _ENV_NAME.match(self.api_key_env):
            raise ValueError(f"`{self.api_key_env}` is not an environment variable name")

    @property
    def base(self) -> str:
        return self.url.rstrip("/")

    @property
    def portkey_compatible(self) -> bool:
        """The Portkey SDKs send their own header names: only usable when the gateway
        reads those."""
        return all(getattr(self, k).lower() == v for k, v in PORTKEY_HEADERS.items())


@dataclass(frozen=True)
class Request:
    """One way to reach `@provider/model`: what a client sends."""

    provider: str
    model: str
    form: str  # model | provider | config
    mode: str = "chat"  # the model's mode: chat | embedding | ...
    config: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()  # what a conditional branch needs
    params: tuple[tuple[str, Scalar], ...] = ()  # request parameters a branch needs
    how: str | None = None  # how the config reaches the model, for people
    ready: bool = True  # False: a condition the snippet cannot satisfy picks the branch
    workspace: str | None = None

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ValueError(f"unknown request form `{self.form}`")
        if self.form == "config" and not self.config:
            raise ValueError("a config request names its config")
        for name, _ in self.params:
            if not IDENTIFIER.match(name) or name in RESERVED_PARAMS:
                raise ValueError(f"`{name}` cannot be a request parameter in a snippet")

    @property
    def target(self) -> str:
        return f"@{self.provider}/{self.model}"

    @property
    def body_model(self) -> str:
        return self.target if self.form == "model" else self.model

    @property
    def embedding(self) -> bool:
        return self.mode == "embedding"

    @property
    def endpoint(self) -> str:
        return MODE_ENDPOINTS.get(self.mode, "/chat/completions")

    def headers(self, gateway: Gateway) -> list[tuple[str, str]]:
        """Routing headers (not the API key) in the order the snippets send them."""
        out: list[tuple[str, str]] = []
        if self.form == "provider":
            out.append((gateway.provider_header, f"@{self.provider}"))
        if self.form == "config":
            assert self.config is not None
            out.append((gateway.config_header, self.config))
            if self.metadata:
                out.append((gateway.metadata_header, metadata_json(self.metadata)))
        return out

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"model": self.body_model}
        if self.embedding:
            body["input"] = EMBEDDING_INPUT
        elif self.mode == "completion":
            body["prompt"] = COMPLETION_PROMPT
        elif self.mode == "responses":
            body["input"] = CHAT_PROMPT
        else:
            body["messages"] = [{"role": "user", "content": CHAT_PROMPT}]
        body.update(self.params)
        return body


@dataclass(frozen=True)
class Snippet:
    form: str
    lang: str
    sdk: str  # portkey-ai | openai | curl
    code: str

    @property
    def title(self) -> str:
        tool = "" if self.lang == "curl" else f" · {self.sdk}"
        return f"{LANG_TITLES[self.lang]}{tool}"


def _json(value: object, ensure_ascii: bool = True, compact: bool = False) -> str:
    """JSON text with every control, bidi and separator character escaped (same value)."""
    separators = (",", ":") if compact else None
    text = json.dumps(value, ensure_ascii=ensure_ascii, separators=separators)
    return _ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def metadata_json(metadata: tuple[tuple[str, str], ...]) -> str:
    return _json(dict(metadata), compact=True)


def _lit(value: str) -> str:
    """A string literal valid in Python and JavaScript alike."""
    return _json(value)


def _py_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return _lit(value) if isinstance(value, str) else repr(value)


def _js_value(value: Scalar) -> str:
    return _json(value)


def _dict_lit(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in pairs) + "}"


def describe(req: Request) -> list[str]:
    """Comment lines above every snippet: the exact target and how this form reaches it."""
    if req.form == "model":
        lines = [f"{req.target}: the model string names the provider and the model."]
    elif req.form == "provider":
        lines = [f"{req.target}: the provider header `@{req.provider}` plus the bare model."]
    else:
        how = f" ({req.how})" if req.how else ""
        lines = [f"{req.target}: through the config `{req.config}`{how}."]
        if req.config and not req.ready:
            lines.append("The config takes this branch only for requests that match its")
            lines.append("condition: shape the request to match, or use another form.")
        else:
            lines.append("The config decides the route: another of its targets may answer.")
    if req.workspace:
        lines.append(f"Use an API key of workspace `{req.workspace}`.")
    # One comment line each, always, and printable: a catalog's names drive no terminal and
    # hide no code (a NUL alone made every Python snippet a SyntaxError).
    return [printable(" ".join(line.split())) for line in lines]


# -- Python ---------------------------------------------------------------------------------
def python_portkey(req: Request, gw: Gateway) -> str:
    args = [f"base_url={_lit(gw.base)}", f"api_key=os.environ[{_lit(gw.api_key_env)}]"]
    args += _portkey_routing(req, "=")
    lines = [f"# {line}" for line in describe(req)]
    lines += ["# pip install portkey-ai", "import os", "", "from portkey_ai import Portkey", ""]
    lines.append("client = Portkey(")
    lines += [f"    {a}," for a in args]
    lines.append(")")
    lines += _python_call(req, portkey=True)
    return "\n".join(lines) + "\n"


def python_openai(req: Request, gw: Gateway) -> str:
    headers = _openai_headers(req, gw, f"os.environ[{_lit(gw.api_key_env)}]", "json.dumps")
    lines = [f"# {line}" for line in describe(req)]
    lines.append("# pip install openai")
    if req.metadata and req.form == "config":
        lines.append("import json")
    lines += ["import os", "", "from openai import OpenAI", "", "client = OpenAI("]
    lines.append(f"    base_url={_lit(gw.base)},")
    lines.append(f'    api_key="unused",  # the gateway reads its key from {gw.api_key_header}')
    lines.append("    default_headers={")
    lines += [f"        {k}: {v}," for k, v in headers]
    lines += ["    },", ")"]
    lines += _python_call(req)
    return "\n".join(lines) + "\n"


def _python_params(req: Request, portkey: bool) -> list[str]:
    named = PY_NAMED.get(req.mode, frozenset())
    lines = [f"    {k}={_py_value(v)}," for k, v in req.params if k in named]
    rest = ", ".join(f"{_lit(k)}: {_py_value(v)}" for k, v in req.params if k not in named)
    if not rest:
        return lines
    spread = portkey and req.mode == "embedding"
    return [*lines, f"    **{{{rest}}}," if spread else f"    extra_body={{{rest}}},"]


def _python_call(req: Request, portkey: bool = False) -> list[str]:
    extra = _python_params(req, portkey)
    if req.embedding:
        # The Python Portkey SDK asks for base64 by default but does not decode it: without
        # `float` each embedding would be a string.
        fmt = ['    encoding_format="float",'] if portkey else []
        return [
            "response = client.embeddings.create(",
            f"    model={_lit(req.body_model)},",
            f"    input={_lit(EMBEDDING_INPUT)},",
            *fmt,
            *extra,
            ")",
            "print(len(response.data[0].embedding))",
        ]
    if req.mode in ("completion", "responses"):
        prompt = COMPLETION_PROMPT if req.mode == "completion" else CHAT_PROMPT
        call, arg, shown = {
            "completion": ("completions", "prompt", "response.choices[0].text"),
            "responses": ("responses", "input", "response.output_text"),
        }[req.mode]
        return [f"response = client.{call}.create(", f"    model={_lit(req.body_model)},",
                f"    {arg}={_lit(prompt)},", *extra, ")", f"print({shown})"]  # fmt: skip
    return [
        "response = client.chat.completions.create(",
        f"    model={_lit(req.body_model)},",
        f'    messages=[{{"role": "user", "content": {_lit(CHAT_PROMPT)}}}],',
        *extra,
        ")",
        "print(response.choices[0].message.content)",
    ]


# -- JavaScript -----------------------------------------------------------------------------
def js_portkey(req: Request, gw: Gateway) -> str:
    opts = [f"baseURL: {_lit(gw.base)}", f"apiKey: process.env.{gw.api_key_env}"]
    opts += _portkey_routing(req, ": ")
    lines = [f"// {line}" for line in describe(req)]
    # The package is CommonJS: under Node's ESM its default import is the whole exports
    # object ("Portkey is not a constructor"); the named export is the class everywhere.
    lines += ["// npm install portkey-ai", 'import { Portkey } from "portkey-ai";', ""]
    lines.append("const client = new Portkey({")
    lines += [f"  {o}," for o in opts]
    lines += ["});", ""]
    lines += _js_call(req)
    return "\n".join(lines) + "\n"


def js_openai(req: Request, gw: Gateway) -> str:
    headers = _openai_headers(req, gw, f"process.env.{gw.api_key_env}", "JSON.stringify")
    lines = [f"// {line}" for line in describe(req)]
    lines += ["// npm install openai", 'import OpenAI from "openai";', ""]
    lines.append("const client = new OpenAI({")
    lines.append(f"  baseURL: {_lit(gw.base)},")
    lines.append(f'  apiKey: "unused", // the gateway reads its key from {gw.api_key_header}')
    lines.append("  defaultHeaders: {")
    lines += [f"    {k}: {v}," for k, v in headers]
    lines += ["  },", "});", ""]
    lines += _js_call(req)
    return "\n".join(lines) + "\n"


def _js_call(req: Request) -> list[str]:
    extra = [f"  {k}: {_js_value(v)}," for k, v in req.params]
    if req.embedding:
        return [
            "const response = await client.embeddings.create({",
            f"  model: {_lit(req.body_model)},",
            f"  input: {_lit(EMBEDDING_INPUT)},",
            *extra,
            "});",
            "console.log(response.data[0].embedding.length);",
        ]
    if req.mode in ("completion", "responses"):
        prompt = COMPLETION_PROMPT if req.mode == "completion" else CHAT_PROMPT
        call, arg, shown = {
            "completion": ("completions", "prompt", "response.choices[0].text"),
            "responses": ("responses", "input", "response.output_text"),
        }[req.mode]
        return [f"const response = await client.{call}.create({{",
                f"  model: {_lit(req.body_model)},", f"  {arg}: {_lit(prompt)},", *extra,
                "});", f"console.log({shown});"]  # fmt: skip
    return [
        "const response = await client.chat.completions.create({",
        f"  model: {_lit(req.body_model)},",
        f'  messages: [{{ role: "user", content: {_lit(CHAT_PROMPT)} }}],',
        *extra,
        "});",
        "console.log(response.choices[0].message.content);",
    ]


# -- shared by Python and JavaScript (both literal syntaxes agree on strings and dicts) --
def _portkey_routing(req: Request, assign: str) -> list[str]:
    """The Portkey client's routing options, `name{assign}value`."""
    opts = []
    if req.form == "provider":
        opts.append(f"provider{assign}{_lit('@' + req.provider)}")
    if req.form == "config":
        opts.append(f"config{assign}{_lit(req.config or '')}")
        if req.metadata:
            opts.append(f"metadata{assign}{_dict_lit(req.metadata)}")
    return opts


def _openai_headers(req: Request, gw: Gateway, api_key: str, to_json: str) -> list[tuple[str, str]]:
    """(name, value) code for an OpenAI client's default headers: the key, then routing."""
    headers = [(_lit(gw.api_key_header), api_key)]
    for name, value in req.headers(gw):
        code = (
            f"{to_json}({_dict_lit(req.metadata)})" if name == gw.metadata_header else _lit(value)
        )
        headers.append((_lit(name), code))
    return headers


# -- curl -----------------------------------------------------------------------------------
def curl(req: Request, gw: Gateway) -> str:
    body = _json(req.body(), ensure_ascii=False)
    args = [
        shlex.quote(gw.base + req.endpoint),
        '-H "Content-Type: application/json"',
        f'-H "{gw.api_key_header}: ${gw.api_key_env}"',
    ]
    args += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in req.headers(gw)]
    args.append(f"-d {shlex.quote(body)}")
    lines = [f"# {line}" for line in describe(req)]
    lines.append("curl " + " \\\n  ".join(args))
    return "\n".join(lines) + "\n"


RENDERERS = {
    ("python", "portkey-ai"): python_portkey,
    ("python", "openai"): python_openai,
    ("js", "portkey-ai"): js_portkey,
    ("js", "openai"): js_openai,
    ("curl", "curl"): curl,
}


def sdks_for(lang: str, gateway: Gateway) -> tuple[str, ...]:
    if lang == "curl":
        return ("curl",)
    return SDKS if gateway.portkey_compatible else ("openai",)


def snippets(
    req: Request,
    gateway: Gateway,
    langs: Iterable[str] = LANGS,
    sdk: str | None = None,
) -> list[Snippet]:
    """Every snippet of one request form: per language, per SDK (curl has none).

    The Portkey SDKs send Portkey's header names, so they are left out when the gateway
    reads other names. A model of a mode no endpoint serves yet gets none."""
    if req.mode not in MODE_ENDPOINTS:
        return []
    out = []
    for lang in langs:
        for each in sdks_for(lang, gateway):
            if sdk is not None and lang != "curl" and each != sdk:
                continue
            out.append(Snippet(req.form, lang, each, RENDERERS[lang, each](req, gateway)))
    return out
