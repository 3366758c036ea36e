"""Endpoints and headers as references (runtime/gateway/endpoints.py): a `base_url` from an
environment variable and headers from a file reach the fake upstream; a header read from a
reference never reaches a log; a reference that cannot be read (or reads as no usable URL)
fails start-up naming it, never its value, or with --allow-missing-secrets makes only the
providers that need it answer 503; `custom_host` is held to the resolved host; a reload
reads the references again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.gateway.fakes import Answer, Fakes
from tests.gateway.harness import (
    ORG,
    TEAM_KEY,
    UPSTREAM_ENV,
    GatewayProcess,
    compile_catalog,
    http,
    sha256,
    trace_id,
    user,
    write_catalog,
)

TOKEN = "sk-test-FAKE-header-token-0042"  # the file-held header value: never in a log
ROUTE = "route-blue-7"


def catalog(fakes: Fakes, token_file: Path) -> dict[str, str]:
    return {
        "catalog.yaml": ORG,
        "integrations.yaml": f"""\
            kind: Integration
            slug: selfhosted
            service: openai-compatible
            base_url: {{env: TEST_REF_BASE_URL}}
            headers:
              X-Tenant: acme
              X-Gateway-Token: {{file: {token_file}}}
            credentials:
              api_key: {{env: TEST_FAKE_BACKUP_KEY}}
            models:
              custom:
                - name: ref-chat
                  pricing: {{input: "1", output: "2"}}
                  headers: {{X-Route: {{env: TEST_REF_ROUTE}}}}
            ---
            kind: Integration
            slug: plain
            service: openai-compatible
            base_url: {fakes.openai.url}
            credentials:
              api_key: {{env: TEST_FAKE_OPENAI_KEY}}
            models:
              custom:
                - name: plain-chat
                  pricing: {{input: "1", output: "2"}}
            """,
        "providers.yaml": """\
            kind: Provider
            slug: selfhosted
            integration: selfhosted
            ---
            kind: Provider
            slug: plain
            integration: plain
            """,
        "workspaces.yaml": f"""\
            kind: Workspace
            slug: team
            api_keys:
              - name: team
                sha256: {sha256(TEAM_KEY)}
            """,
    }


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "gateway-token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def ref_bundle(fakes: Fakes, tmp_path: Path, token_file: Path) -> Path:
    root = write_catalog(tmp_path / "catalog", catalog(fakes, token_file))
    return compile_catalog(root, tmp_path / "bundle.json")


def env_for(fakes: Fakes, **overrides: str | None) -> dict[str, str]:
    env = {**os.environ, **UPSTREAM_ENV, "TEST_REF_BASE_URL": fakes.backup.url,
           "TEST_REF_ROUTE": ROUTE}  # fmt: skip
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@pytest.fixture
def started(ref_bundle: Path, fakes: Fakes) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(ref_bundle, ref_bundle.parent / "gw.log", env=env_for(fakes)).start()
    try:
        yield gw
    finally:
        gw.stop()
        assert TOKEN not in gw.log_text(), "a header value read from a file reached the log"


def chat(gw: GatewayProcess, model: str, **headers: str) -> tuple[int, bytes]:
    status, _, body = http("POST", gw.v1 + "/chat/completions",
                           {"model": model, "messages": user()},
                           {"x-portkey-api-key": TEAM_KEY, **headers})  # fmt: skip
    return status, body


def test_a_base_url_from_env_and_headers_from_file_and_env_reach_the_upstream(
    started: GatewayProcess, fakes: Fakes, ref_bundle: Path
) -> None:
    bundle = json.loads(ref_bundle.read_text())
    integ = bundle["integrations"]["selfhosted"]
    assert integ["base_url"] == {"ref": "env:TEST_REF_BASE_URL"}  # the reference, never a value
    assert TOKEN not in ref_bundle.read_text() and fakes.backup.url not in ref_bundle.read_text()
    fakes.backup.script(Answer())
    trace = trace_id()
    status, body = chat(started, "@selfhosted/ref-chat", **{"x-portkey-trace-id": trace})
    assert status == 200, body
    (rec,) = fakes.backup.requests  # the env var's URL, nothing else
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["x-gateway-token"] == TOKEN and rec.headers["x-tenant"] == "acme"
    assert rec.headers["x-route"] == ROUTE
    assert rec.headers["authorization"] == f"Bearer {UPSTREAM_ENV['TEST_FAKE_BACKUP_KEY']}"
    assert not fakes.openai.requests
    line = started.request_line(trace)
    assert line["status"] == 200 and TOKEN not in json.dumps(line)


def test_an_upstream_echoing_a_header_secret_or_an_escaped_key_is_scrubbed(
    ref_bundle: Path, fakes: Fakes
) -> None:
    """Only the credentials were scrubbed, and only as sent: a header value read from a
    reference, or the key JSON-escaped (`/` as `\\/`, valid JSON), reached the client."""
    key = "sk-test/FAKE/slashed+key-0009"
    echo = f"tenant {TOKEN} route {ROUTE} key {key.replace('/', chr(92) + '/')}"
    gw = GatewayProcess(ref_bundle, ref_bundle.parent / "gw.log",
                        env=env_for(fakes, TEST_FAKE_BACKUP_KEY=key)).start()  # fmt: skip
    try:
        for stream in (False, True):
            fakes.backup.script(
                Answer(status=401, body=b'{"error": {"message": "%s"}}' % echo.encode())
            )
            status, _, body = http("POST", gw.v1 + "/chat/completions",
                                   {"model": "@selfhosted/ref-chat", "messages": user(),
                                    "stream": stream}, {"x-portkey-api-key": TEAM_KEY})  # fmt: skip
            text = json.loads(body)["error"]["message"]
            assert status == 401 and text.count("[redacted]") == 3, text
            assert TOKEN not in text and ROUTE not in text and "slashed" not in text, text
    finally:
        gw.stop()
    assert TOKEN not in gw.log_text()


def test_custom_host_is_held_to_the_resolved_host(started: GatewayProcess, fakes: Fakes) -> None:
    def via(host: str) -> int:
        config = {"provider": "@selfhosted", "custom_host": host,
                  "override_params": {"model": "ref-chat"}}  # fmt: skip
        fakes.backup.script(Answer())
        status, _, _ = http("POST", started.v1 + "/chat/completions", {"messages": user()},
                            {"x-portkey-api-key": TEAM_KEY,
                             "x-portkey-config": json.dumps(config)})  # fmt: skip
        return status

    assert via(fakes.backup.url + "/") == 200  # the provider's own (resolved) host
    assert via(fakes.openai.url) == 403  # another host: the credentials stay home
    assert len(fakes.backup.requests) == 1 and not fakes.openai.requests


def run_cli(bundle: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runtime.gateway", str(bundle), "--port", "0",
                           *args], cwd=ROOT, text=True, capture_output=True, timeout=60,
                          env=env, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.parametrize(("override", "named", "why"), [
    ({"TEST_REF_BASE_URL": None}, "env:TEST_REF_BASE_URL", "not set"),
    ({"TEST_REF_ROUTE": None}, "env:TEST_REF_ROUTE", "not set"),
    ({"TEST_REF_BASE_URL": "ftp://files.example/v1"}, "env:TEST_REF_BASE_URL", "not a usable"),
    ({"TEST_REF_BASE_URL": "https://admin:hunter2-pass@llm.example/v1"},
     "env:TEST_REF_BASE_URL", "not a usable"),
])  # fmt: skip
def test_an_unreadable_reference_fails_start_naming_it(
    ref_bundle: Path, fakes: Fakes, override: dict[str, str | None], named: str, why: str
) -> None:
    done = run_cli(ref_bundle, env_for(fakes, **override))
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and why in done.stderr and "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr and "admin" not in done.stderr and TOKEN not in done.stderr


def test_an_unreadable_file_reference_fails_start(ref_bundle: Path, fakes: Fakes,
                                                  token_file: Path) -> None:  # fmt: skip
    token_file.unlink()
    done = run_cli(ref_bundle, env_for(fakes))
    assert done.returncode == 2 and f"file:{token_file}" in done.stderr


def test_allow_missing_secrets_makes_only_the_providers_that_need_it_503(
    ref_bundle: Path, fakes: Fakes
) -> None:
    gw = GatewayProcess(ref_bundle, ref_bundle.parent / "gw.log", ["--allow-missing-secrets"],
                        env=env_for(fakes, TEST_REF_BASE_URL=None)).start()  # fmt: skip
    try:
        missing = [e for e in gw.lines() if e.get("event") == "endpoint_missing"]
        assert missing == [{**missing[0], "target": "selfhosted",
                            "reference": "env:TEST_REF_BASE_URL"}]  # fmt: skip
        status, body = chat(gw, "@selfhosted/ref-chat")
        assert status == 503 and b"env:TEST_REF_BASE_URL" in body
        assert json.loads(body)["error"]["code"] == "endpoint_unavailable"
        fakes.openai.script(Answer())
        assert chat(gw, "@plain/plain-chat")[0] == 200
        assert not fakes.backup.requests and len(fakes.openai.requests) == 1
    finally:
        gw.stop()


def test_a_reload_reads_the_references_again(
    started: GatewayProcess, fakes: Fakes, token_file: Path
) -> None:
    rotated = TOKEN.replace("0042", "0043")
    token_file.write_text(rotated)
    assert started.proc is not None
    started.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not any(e.get("event") == "reloaded" for e in started.lines()):
        assert time.monotonic() < deadline, started.log_tail()
        time.sleep(0.05)
    fakes.backup.script(Answer())
    assert chat(started, "@selfhosted/ref-chat")[0] == 200
    assert fakes.backup.requests[-1].headers["x-gateway-token"] == rotated
    assert rotated not in started.log_text()
