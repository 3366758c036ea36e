"""Snippets: each names its exact `@provider/model`, compiles or parses, and — sent as written
to a gateway — resolves in the router to that very model."""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from catalog_compiler.tools.gallery import Gateway, Request, Site, build_site, snippets
from catalog_compiler.tools.gallery.routes import config_routes, shape_for
from runtime.bundle.load import Bundle
from runtime.routing.router import Router
from tests.gallery.snippet_runner import node_sdks, run_node, run_python  # noqa: F401


def all_requests(site: Site) -> list[Request]:
    return [
        f.request
        for w in site.workspaces
        for g in w.groups
        for r in g.routes
        for f in r.forms
        if f.request is not None
    ]


def curl_body(code: str) -> dict[str, Any]:
    words = shlex.split(code, comments=True)
    assert words[0] == "curl"
    body: dict[str, Any] = json.loads(words[words.index("-d") + 1])
    return body


# -- shape ------------------------------------------------------------------------------------
def test_every_snippet_names_its_exact_target(acme_site: Site) -> None:
    requests = all_requests(acme_site)
    assert {r.form for r in requests} == {"model", "provider", "config"}
    for req in requests:
        for s in snippets(req, acme_site.gateway):
            assert req.target in s.code.splitlines()[0], (req, s.code)
            if req.form == "model":
                assert f'"{req.target}"' in s.code  # the model string itself is sent
            else:
                assert f'"{req.model}"' in s.code


def test_python_snippets_compile(acme_site: Site) -> None:
    count = 0
    for req in all_requests(acme_site):
        for s in snippets(req, acme_site.gateway, ("python",)):
            compile(s.code, f"<{req.target} {req.form} {s.sdk}>", "exec")
            count += 1
            assert 'os.environ["CATALOG_API_KEY"]' in s.code
    assert count > 100


def test_curl_bodies_are_json_naming_the_model(acme_site: Site) -> None:
    for req in all_requests(acme_site):
        (s,) = snippets(req, acme_site.gateway, ("curl",))
        body = curl_body(s.code)
        assert body["model"] == req.body_model
        assert ("input" in body) == req.embedding and ("messages" in body) != req.embedding
        assert '"x-portkey-api-key: $CATALOG_API_KEY"' in s.code


def test_each_language_has_its_sdks(acme_site: Site) -> None:
    req = all_requests(acme_site)[0]
    got = {(s.lang, s.sdk) for s in snippets(req, acme_site.gateway)}
    assert got == {("python", "portkey-ai"), ("python", "openai"), ("js", "portkey-ai"),
                   ("js", "openai"), ("curl", "curl")}  # fmt: skip


def test_embedding_models_use_the_embeddings_endpoint() -> None:
    req = Request("openai-prod", "text-embedding-3-large", "model", "embedding")
    code = {s.sdk: s.code for s in snippets(req, Gateway(), ("python", "curl"))}
    assert "client.embeddings.create(" in code["portkey-ai"]
    assert "http://localhost:8787/v1/embeddings" in code["curl"]
    assert curl_body(code["curl"])["input"]


@pytest.mark.parametrize(("mode", "path", "call", "field"), [
    ("completion", "/v1/completions", "client.completions.create(", "prompt"),
    ("responses", "/v1/responses", "client.responses.create(", "input"),
    ("chat", "/v1/chat/completions", "client.chat.completions.create(", "messages"),
])  # fmt: skip
def test_each_mode_is_asked_on_the_endpoint_that_serves_it(
    mode: str, path: str, call: str, field: str
) -> None:
    req = Request("local", "m", "model", mode)
    code = {(s.lang, s.sdk): s.code for s in snippets(req, Gateway())}
    assert all(call in code[lang, sdk] for lang, sdk in code if lang != "curl")
    assert f"http://localhost:8787{path}" in code["curl", "curl"]
    assert field in curl_body(code["curl", "curl"])


@pytest.mark.parametrize("mode", ["image", "audio", "rerank"])
def test_a_mode_no_endpoint_serves_gets_no_snippet(mode: str) -> None:
    assert snippets(Request("local", "m", "model", mode), Gateway()) == []


def test_gateway_options_shape_every_snippet() -> None:
    gw = Gateway("https://llm.acme.example/gw/", "x-gw-provider", "x-gw-config", "x-gw-key",
                 "x-gw-meta", "ACME_LLM_KEY")  # fmt: skip
    req = Request("azure-eu", "gpt-4o", "config", config="eu-router",
                  metadata=(("region", "eu"),), params=(("max_tokens", 512),))  # fmt: skip
    got = snippets(req, gw)
    # The Portkey SDKs send Portkey's own header names: left out for other names.
    assert {s.sdk for s in got} == {"openai", "curl"}
    curl = next(s.code for s in got if s.lang == "curl")
    assert "https://llm.acme.example/gw/chat/completions" in curl
    assert '"x-gw-key: $ACME_LLM_KEY"' in curl and "'x-gw-config: eu-router'" in curl
    assert '\'x-gw-meta: {"region":"eu"}\'' in curl
    assert curl_body(curl)["max_tokens"] == 512
    python = next(s.code for s in got if s.lang == "python")
    compile(python, "<python>", "exec")
    assert '"x-gw-meta": json.dumps({"region": "eu"})' in python and "max_tokens=512" in python


@pytest.mark.parametrize(
    "kwargs",
    [{"url": "ftp://x"}, {"url": "http://x/'; rm -rf /"}, {"provider_header": "x bad"},
     {"api_key_env": "1KEY"}, {"api_key_env": "KEY; echo"}],
)  # fmt: skip
def test_gateway_rejects_what_would_break_a_snippet(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Gateway(**kwargs)


def test_quotes_in_names_stay_inside_their_literals() -> None:
    req = Request("lab", "it's\"odd\\", "provider")
    for s in snippets(req, Gateway()):
        if s.lang == "python":
            compile(s.code, "<odd>", "exec")
        if s.lang == "curl":
            assert curl_body(s.code)["model"] == "it's\"odd\\"


# What the catalog accepts in a model name (no space) and a terminal, Python or a reader
# must not get raw: a NUL made every Python snippet a SyntaxError; ESC ]0;…BEL retitled the
# terminal of whoever printed the snippet; U+202E reordered the line shown.
UNPRINTABLE_NAME = "m\x00\x1b]0;pwned\x07\x7f\x9b31m\u202ex\u2066y"


@pytest.mark.parametrize("form", ["model", "provider", "config"])
def test_a_name_with_controls_gives_working_printable_code(form: str) -> None:
    meta = (("region", UNPRINTABLE_NAME),) if form == "config" else ()
    req = Request("lab", UNPRINTABLE_NAME, form, config="c" if form == "config" else None,
                  metadata=meta, how=f"branch when {UNPRINTABLE_NAME}")  # fmt: skip
    codes = snippets(req, Gateway())
    assert len(codes) == 5
    for s in codes:
        assert all(c == "\n" or c.isprintable() for c in s.code), repr(s.code)
        if s.lang == "python":
            compile(s.code, "<controls>", "exec")
        if s.lang == "curl":
            assert curl_body(s.code)["model"] == req.body_model
            if form == "config":
                words = shlex.split(s.code, comments=True)
                header = next(w for w in words if w.startswith("x-portkey-metadata: "))
                assert json.loads(header.partition(": ")[2]) == {"region": UNPRINTABLE_NAME}


# Condition parameters the Python SDKs cannot take as keyword arguments: a Python keyword
# (`lambda=1` was a SyntaxError), one the openai SDK does not know (`top_k=40` a TypeError),
# one the SDK keeps for itself (`timeout` set the client's timeout, not the body), one the
# snippet writes already (`prompt` twice, a SyntaxError).
AWKWARD_PARAMS = (("lambda", 1), ("max_tokens", 64), ("prompt", "x"), ("timeout", 5),
                  ("top_k", 40))  # fmt: skip


@pytest.mark.parametrize("mode", ["chat", "completion", "embedding", "responses"])
def test_any_condition_parameter_makes_working_python(
    mode: str, tmp_path: Path, stub_gateway: tuple[str, list[tuple[str, dict[str, str], bytes]]]
) -> None:
    url, seen = stub_gateway
    req = Request("lab", "m", "config", mode, config="c", params=AWKWARD_PARAMS)
    codes = [s.code for s in snippets(req, Gateway(url), ("python",))]
    assert len(codes) == 2
    for code in codes:
        compile(code, "<params>", "exec")
    results = run_python(codes, {"CATALOG_API_KEY": "test-only-gateway-key"}, tmp_path, 1)
    if mode != "responses":  # the stub answers in chat's shape: the request is what counts
        assert all(r.ok for r in results), [r.error for r in results]
    assert len(seen) == 2
    for _, _, body in seen:
        assert dict(AWKWARD_PARAMS).items() <= json.loads(body).items()


def test_javascript_snippets_parse(acme_site: Site) -> None:
    """Syntax of every JS snippet, in one node process (skipped without node)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    codes = [
        s.code for req in all_requests(acme_site) for s in snippets(req, acme_site.gateway, ("js",))
    ]
    codes.append('import OpenAI from "openai";\nconst x = ;')  # the checker must refuse it
    checker = r"""
const codes = JSON.parse(require("fs").readFileSync(0, "utf8"));
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
let bad = 0;
for (const code of codes) {
  const imports = code.split("\n").filter((l) => l.startsWith("import "));
  if (imports.length !== 1) { console.log("imports:", code); bad++; continue; }
  try { new AsyncFunction(code.replace(imports[0], "")); } catch (e) { console.log(e.message, code); bad++; }
}
process.exit(bad === 1 ? 0 : 1);
"""
    done = subprocess.run([node, "-e", checker], input=json.dumps(codes), text=True,
                          capture_output=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr  # exactly the planted error
    assert len(codes) > 100


def test_a_javascript_snippet_is_a_valid_module(tmp_path: Path, acme_site: Site) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    req = next(r for r in all_requests(acme_site) if r.form == "config" and r.metadata)
    for s in snippets(req, acme_site.gateway, ("js",)):
        path = tmp_path / f"{s.sdk}.mjs"
        path.write_text(s.code)
        done = subprocess.run([node, "--check", str(path)], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr


# -- configs ------------------------------------------------------------------------------------
def test_config_routes_skip_what_a_request_never_reaches(acme: Bundle) -> None:
    routes = {
        slug: [(r.target, r.how, dict(r.metadata), dict(r.params), r.ready)
               for r in config_routes(slug, info.tree)]
        for slug, info in acme.configs.items()
    }  # fmt: skip
    # weight 0 is never picked
    assert [t for t, *_ in routes["research-lb"]] == [
        "@openai-research/gpt-4.1", "@anthropic-prod/claude-sonnet-4-5-20250929"]  # fmt: skip
    assert routes["support-bot"][0][1] == "fallback 1 of 2"
    eu, cheap, direct = routes["eu-router"]
    assert eu[0] == "@azure-eu/gpt-4o" and eu[2] == {"region": "eu"} and eu[4]
    assert cheap[2] == {"tier": "free"} and cheap[3] == {"max_tokens": 512} and cheap[4]
    assert direct[1] == "default branch `direct`" and direct[2] == {} and direct[4]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"metadata.tier": "gold"}, ({"tier": "gold"}, {})),
        ({"metadata.tier": {"$ne": "free"}}, None),
        ({"metadata.user.tier": "gold"}, None),
        ({"params.temperature": {"$lt": 1}}, ({}, {"temperature": 0})),
        ({"params.max_tokens": {"$gt": 100, "$lte": 200}}, ({}, {"max_tokens": 101})),
        ({"$or": [{"url.pathname": "/v1/x"}, {"metadata.a": {"$in": [1, "b"]}}]},
         ({"a": "b"}, {})),
        ({"$and": [{"metadata.a": "x"}, {"params.model": "y"}]}, None),
    ],
)  # fmt: skip
def test_request_shapes_for_conditions(query: dict[str, Any], expected: Any) -> None:
    assert shape_for(query) == expected


# -- resolution: what a snippet sends reaches its model in the router -------------------------
def plan_targets(
    router: Router, ws: str, sent: dict[str, Any], headers: dict[str, str]
) -> set[str]:
    model = sent["model"]
    if "x-portkey-config" in headers:
        meta = json.loads(headers.get("x-portkey-metadata", "{}"))
        found: set[str] = set()
        for seed in range(64):  # loadbalance picks by seed; fallbacks list every attempt
            plan = router.resolve(ws, model, config=headers["x-portkey-config"], metadata=meta,
                                  params=sent, seed=seed)  # fmt: skip
            found.update(a.target for a in plan.attempts)
        return found
    plan = router.resolve(ws, model, provider=headers.get("x-portkey-provider"))
    return {a.target for a in plan.attempts}


def test_every_request_resolves_to_its_model(acme: Bundle, acme_site: Site) -> None:
    router = Router(acme)
    checked = 0
    for w in acme_site.workspaces:
        for g in w.groups:
            for r in g.routes:
                for f in r.forms:
                    if f.request is None:
                        continue
                    req = f.request
                    headers = {k.lower(): v for k, v in req.headers(acme_site.gateway)}
                    targets = plan_targets(router, w.slug, req.body(), headers)
                    assert req.target in targets, (w.slug, req)
                    checked += 1
    assert checked > 150


STUB_REPLY = "stub gateway reply"


def stub_answer(path: str, body: bytes) -> dict[str, Any]:
    """The smallest answer the SDKs parse: a chat completion or an embedding list."""
    sent = json.loads(body)
    model = sent.get("model", "")
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    if path.endswith("/embeddings"):
        vector: Any = [0.5, 0.25]
        if sent.get("encoding_format") == "base64":  # the SDKs' default: little-endian float32
            vector = base64.b64encode(struct.pack("<2f", *vector)).decode()
        return {"object": "list", "model": model, "usage": usage,
                "data": [{"object": "embedding", "index": 0, "embedding": vector}]}  # fmt: skip
    return {"id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": model,
            "usage": usage,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": STUB_REPLY}}]}  # fmt: skip


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        reply = json.dumps(stub_answer(self.path, body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub_gateway() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    seen: list[tuple[str, dict[str, str], bytes]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_curl_snippets_run_and_reach_their_model(
    acme: Bundle, stub_gateway: tuple[str, list[tuple[str, dict[str, str], bytes]]]
) -> None:
    """Run each curl snippet as written (bash, real curl) against a recording gateway, then
    resolve what arrived with the router."""
    bash, curl = shutil.which("bash"), shutil.which("curl")
    if bash is None or curl is None:
        pytest.skip("bash and curl are needed to run the curl snippets")
    url, seen = stub_gateway
    site = build_site(acme, Gateway(url))
    router = Router(acme)
    env = {**os.environ, "CATALOG_API_KEY": "test-only-gateway-key"}
    ran = 0
    for w in site.workspaces:
        if w.slug not in ("support", "data-science"):  # one with configs, one with embeddings
            continue
        for g in w.groups:
            for r in g.routes:
                for f in r.forms:
                    if f.request is None:
                        continue
                    (s,) = snippets(f.request, site.gateway, ("curl",))
                    seen.clear()
                    done = subprocess.run([bash, "-c", s.code.rstrip() + " -sS -o /dev/null"], env=env,
                                          capture_output=True, text=True, timeout=30)  # fmt: skip
                    assert done.returncode == 0, (s.code, done.stderr)
                    ((path, headers, body),) = seen
                    assert path == "/v1" + f.request.endpoint
                    assert headers["x-portkey-api-key"] == "test-only-gateway-key"
                    assert headers["content-type"] == "application/json"
                    sent = json.loads(body)
                    assert f.request.target in plan_targets(router, w.slug, sent, headers)
                    ran += 1
    assert ran >= 40


def test_pick_config_prefers_ready_routes_then_the_default_config() -> None:
    from catalog_compiler.tools.gallery.routes import ConfigView, pick_config

    any_model = config_routes("any", {"mode": "fallback", "targets": [
        {"mode": "target", "provider": "p"}]})  # fmt: skip
    assert [(r.target, r.model) for r in any_model] == [("@p/*", None)]
    gated = config_routes("gated", {
        "mode": "conditional",
        "strategy": {"conditions": [{"query": {"url.pathname": "/x"}, "then": "a"}],
                     "default": "b"},
        "targets": [{"mode": "target", "provider": "p", "model": "m", "name": "a"},
                    {"mode": "target", "provider": "q", "model": "m", "name": "b"}],
    })  # fmt: skip
    assert [(r.target, r.ready) for r in gated] == [("@p/m", False), ("@q/m", True)]
    views = [ConfigView("any", "fallback", None, tuple(any_model), None),
             ConfigView("gated", "conditional", None, tuple(gated), None)]  # fmt: skip
    best, others = pick_config(views, "p", "m", None)
    assert best is not None and best.config == "any" and others == ("gated",)
    best, _ = pick_config(views, "p", "m", "gated")  # the default config, but not ready
    assert best is not None and best.config == "any"
    best, _ = pick_config(views, "q", "m", None)
    assert best is not None and best.config == "gated" and best.ready
    assert pick_config(views, "r", "m", None) == (None, ())


def sample_requests(site: Site) -> list[tuple[str, Request]]:
    """One request of each form in `support` (its config form carries metadata), and an
    embedding model of `data-science`: (workspace, request)."""
    found: dict[tuple[str, bool], tuple[str, Request]] = {}
    for w in site.workspaces:
        for g in w.groups:
            for r in g.routes:
                for f in r.forms:
                    req = f.request
                    if req is None:
                        continue
                    if w.slug == "support" and not req.embedding:
                        found.setdefault((req.form, bool(req.metadata)), (w.slug, req))
                    if w.slug == "data-science" and req.embedding:
                        found.setdefault(("embedding", False), (w.slug, req))
    return list(found.values())


@pytest.mark.parametrize("lang", [pytest.param("python", marks=pytest.mark.slow), "js"])
def test_sdk_snippets_run_and_reach_their_model(
    acme: Bundle,
    lang: str,
    tmp_path: Path,
    stub_gateway: tuple[str, list[tuple[str, dict[str, str], bytes]]],
    request: pytest.FixtureRequest,
) -> None:
    """Every SDK snippet of a sample runs as written (Python: `openai` and `portkey-ai`;
    JavaScript: the npm packages under node) against a recording gateway: it prints the
    answer, sends the key from $CATALOG_API_KEY, and what arrives resolves to its model."""
    url, seen = stub_gateway
    site = build_site(acme, Gateway(url))
    router = Router(acme)
    picked = sample_requests(site)
    assert {req.form for _, req in picked} == {"model", "provider", "config"}
    assert any(req.metadata for _, req in picked) and any(req.embedding for _, req in picked)
    jobs = [(ws, req, s) for ws, req in picked for s in snippets(req, site.gateway, (lang,))]
    assert {s.sdk for _, _, s in jobs} == {"openai", "portkey-ai"}
    env = {"CATALOG_API_KEY": "test-only-gateway-key"}
    codes = [s.code for _, _, s in jobs]
    if lang == "python":
        results = run_python(codes, env, tmp_path, processes=1)  # `seen` is in job order
    else:
        results = run_node(codes, env, tmp_path, request.getfixturevalue("node_sdks"))
    assert len(seen) == len(jobs), [r.error for r in results if not r.ok]
    for (ws, req, s), ran, (path, headers, body) in zip(jobs, results, seen, strict=True):
        assert ran.ok, (s.code, ran.error)
        assert ran.out.strip() == ("2" if req.embedding else STUB_REPLY), (s.code, ran.out)
        assert path == "/v1" + req.endpoint
        assert headers["x-portkey-api-key"] == "test-only-gateway-key", s.code
        sent = json.loads(body)
        assert req.target in plan_targets(router, ws, sent, headers), (s.code, headers)
