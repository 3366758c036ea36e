"""The gateway under test as a real process: a catalog written to disk that points its
integrations at the fake upstreams, compiled with `catalogc compile`, served by
`python -m runtime.gateway BUNDLE --port 0`, its JSON log (stderr) kept in a file the tests
read back. Every credential here is an obviously fake value."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
from click.testing import CliRunner

from catalog_compiler.cli import cli
from tests.conftest import ROOT
from tests.gateway.fakes import Fakes, Tokens

# Workspace API keys (the catalog holds their sha256) and upstream credentials (the gateway
# reads them from its environment through the catalog's `{env: ...}` references).
TEAM_KEY = "sk-test-FAKE-team-0000"
OTHER_KEY = "sk-test-FAKE-other-0000"
LIMITED_KEY = "sk-test-FAKE-limited-0000"
UPSTREAM_ENV = {
    "TEST_FAKE_OPENAI_KEY": "sk-test-FAKE-upstream-openai-0001",
    "TEST_FAKE_BACKUP_KEY": "sk-test-FAKE-upstream-backup-0002",
    "TEST_FAKE_ANTHROPIC_KEY": "sk-test-FAKE-upstream-anthropic-0003",
}
OPENAI_UPSTREAM_KEY = UPSTREAM_ENV["TEST_FAKE_OPENAI_KEY"]
BACKUP_UPSTREAM_KEY = UPSTREAM_ENV["TEST_FAKE_BACKUP_KEY"]
ANTHROPIC_UPSTREAM_KEY = UPSTREAM_ENV["TEST_FAKE_ANTHROPIC_KEY"]
SECRETS = (TEAM_KEY, OTHER_KEY, LIMITED_KEY, *UPSTREAM_ENV.values())

# Prompt text the gateway must never log.
PROMPT = "Tell the quokka a short joke"
PROMPT_MARKER = "quokka"

START_TIMEOUT = 30.0  # a cold interpreter on a busy 2-core CI box
LOG_TIMEOUT = 5.0  # a request's access-log line follows its answer


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def user(text: str = PROMPT) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def trace_id() -> str:
    return f"test-{uuid.uuid4().hex}"


# -- the catalog --------------------------------------------------------------------------
ORG = """\
kind: Organization
version: 1
name: Gateway Test Org
"""


def main_catalog(fakes: Fakes) -> dict[str, str]:
    """Three upstream families behind five providers, three workspaces, five configs.

    `team` may use @openai-main (OpenAI), @backup (an OpenAI-compatible server with its own
    prices) and @claude (Anthropic), except gpt-4.1* (denied: 403); it falls back to the
    config `team-default` when a request names neither provider nor config. `other` sees
    only @backup. `limited` sees @broke (a budget of 0 USD: 412) and @throttled (one
    request an hour: the second gets 429 with Retry-After)."""
    return {
        "catalog.yaml": ORG,
        "integrations.yaml": f"""\
            kind: Integration
            slug: oai
            service: openai
            base_url: {fakes.openai.url}
            credentials:
              api_key: {{env: TEST_FAKE_OPENAI_KEY}}
            models:
              allow: ["gpt-4o-mini", "gpt-4.1-mini", "text-embedding-3-small"]
            ---
            kind: Integration
            slug: backup
            service: openai-compatible
            base_url: {fakes.backup.url}
            credentials:
              api_key: {{env: TEST_FAKE_BACKUP_KEY}}
            models:
              custom:
                - name: backup-chat
                  context_window: 32000
                  max_output_tokens: 4096
                  pricing: {{input: "0.50", output: "1.50", cache_read: "0.25"}}
                - name: backup-instruct
                  mode: completion
                  context_window: 8000
                  max_output_tokens: 1024
                  pricing: {{input: "1.25", output: "2.50"}}
            ---
            kind: Integration
            slug: ant
            service: anthropic
            base_url: {fakes.anthropic.url}
            credentials:
              api_key: {{env: TEST_FAKE_ANTHROPIC_KEY}}
            models:
              allow: ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]
            """,
        "providers.yaml": """\
            kind: Provider
            slug: openai-main
            integration: oai
            ---
            kind: Provider
            slug: backup
            integration: backup
            ---
            kind: Provider
            slug: claude
            integration: ant
            ---
            kind: Provider
            slug: broke
            integration: oai
            workspaces: [limited]
            budgets: [{limit: 0, unit: usd, period: monthly}]
            ---
            kind: Provider
            slug: throttled
            integration: oai
            workspaces: [limited]
            rate_limits: [{limit: 1, unit: requests, per: hour}]
            """,
        "workspaces.yaml": f"""\
            kind: Workspace
            slug: team
            providers: ["@openai-main", "@backup", "@claude"]
            models:
              deny: ["gpt-4.1*"]
            default_config: team-default
            api_keys:
              - {{name: tests, sha256: "{sha256(TEAM_KEY)}"}}
            ---
            kind: Workspace
            slug: other
            providers: ["@backup"]
            api_keys:
              - {{name: tests, sha256: "{sha256(OTHER_KEY)}"}}
            ---
            kind: Workspace
            slug: limited
            providers: ["@broke", "@throttled"]
            api_keys:
              - {{name: tests, sha256: "{sha256(LIMITED_KEY)}"}}
            """,
        "configs.yaml": """\
            kind: Config
            slug: team-default
            workspaces: [team]
            config:
              provider: "@backup"
              override_params: {model: backup-chat}
            ---
            kind: Config
            slug: fallback-cfg
            workspaces: [team]
            config:
              strategy: {mode: fallback, on_status_codes: [429, 500, 502, 503, 504]}
              targets:
                - provider: "@openai-main"
                  override_params: {model: gpt-4o-mini}
                - provider: "@backup"
                  override_params: {model: backup-chat}
            ---
            kind: Config
            slug: retry-cfg
            workspaces: [team]
            config:
              retry: {attempts: 2, on_status_codes: [429, 503], use_retry_after_headers: true}
              provider: "@openai-main"
              override_params: {model: gpt-4o-mini}
            ---
            kind: Config
            slug: quick
            workspaces: [team]
            config:
              request_timeout: 400
              provider: "@openai-main"
              override_params: {model: gpt-4o-mini}
            ---
            kind: Config
            slug: by-region
            workspaces: [team]
            config:
              strategy:
                mode: conditional
                conditions:
                  - query: {metadata.region: {$eq: eu}}
                    then: eu
                default: rest
              targets:
                - name: eu
                  provider: "@backup"
                  override_params: {model: backup-chat}
                - name: rest
                  provider: "@openai-main"
                  override_params: {model: gpt-4o-mini}
            """,
    }


def write_catalog(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def compile_catalog(directory: Path, bundle: Path) -> Path:
    """`catalogc compile DIRECTORY -o BUNDLE`, as a user runs it."""
    result = CliRunner().invoke(
        cli, ["compile", str(directory), "-o", str(bundle), "--no-cache", "--color", "never"],
        env={"CATALOGC_NO_CACHE": "1", "NO_COLOR": "1"}, catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return bundle


# -- money ---------------------------------------------------------------------------------
def prices_of(bundle: Path, provider: str, model: str) -> dict[str, Any]:
    data = json.loads(bundle.read_text(encoding="utf-8"))
    prices: dict[str, Any] = data["providers"][provider]["models"][model]["prices"]
    return prices


def expected_cost(bundle: Path, provider: str, model: str, used: Tokens) -> Decimal:
    """The exact USD the catalog's prices give for `used` (per 1M tokens; a missing cache
    price is the input price; plus any per-request fee), computed here independently."""
    # the base table: these tests stay below any long-context tier, at the default service
    # tier (test_price_tiers.py computes the variants by hand)
    p = {k: Decimal(v) for k, v in prices_of(bundle, provider, model).items() if type(v) is str}
    cache_read = p.get("cache_read", p["input"])
    cache_write = p.get("cache_write", p["input"])
    per_million = (
        used.input * p["input"]
        + used.output * p.get("output", Decimal(0))
        + used.cache_read * cache_read
        + used.cache_write * cache_write
    )
    return per_million / Decimal(1_000_000) + p.get("per_request", Decimal(0))


# -- the process ---------------------------------------------------------------------------
class GatewayProcess:
    """`python -m runtime.gateway BUNDLE --port 0 ...` with its stderr in a file."""

    def __init__(self, bundle: Path, log: Path, args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.bundle = bundle
        self.log_path = log
        self.args = tuple(args)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **UPSTREAM_ENV, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.listening: dict[str, Any] = {}

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def v1(self) -> str:
        return f"{self.origin}/v1"

    def start(self) -> GatewayProcess:
        cmd = [sys.executable, "-m", "runtime.gateway", str(self.bundle),
               "--host", "127.0.0.1", "--port", "0", *self.args]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                env=self.env, cwd=str(ROOT),
            )  # fmt: skip
        self.listening = self._wait_listening()
        self.port = int(self.listening["port"])
        self._wait_healthy()
        return self

    def _fail(self, why: str) -> None:
        self.stop()
        raise AssertionError(f"gateway {why}; its log:\n{self.log_tail()}")

    def _wait_listening(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for line in self.lines():
                if line.get("event") == "listening":
                    return line
            assert self.proc is not None
            if self.proc.poll() is not None:
                self._fail(f"exited with status {self.proc.returncode} before listening")
            if time.monotonic() > deadline:
                self._fail("printed no `listening` line")
            time.sleep(0.05)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                status, _, _ = http("GET", self.origin + "/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._fail("never answered /healthz with 200")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (a graceful drain), then SIGKILL if it does not exit in time."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    # -- the log ---------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def lines(self) -> list[dict[str, Any]]:
        """Every JSON object line of the log (other lines are left out here; a test checks
        there are none)."""
        out = []
        for raw in self.log_text().splitlines():
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out

    def request_lines(self, trace: str) -> list[dict[str, Any]]:
        return [
            line for line in self.lines()
            if line.get("event") == "request" and line.get("trace_id") == trace
        ]  # fmt: skip

    def request_line(self, trace: str, timeout: float = LOG_TIMEOUT) -> dict[str, Any]:
        """The one access-log line of the request sent with `x-portkey-trace-id: trace`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.request_lines(trace)
            if found:
                assert len(found) == 1, f"{len(found)} request lines for one request: {found}"
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no request line with trace_id {trace}:\n{self.log_tail()}")
            time.sleep(0.02)


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 20.0,
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request (urllib): status, lower-case headers, body. Error statuses are
    answers here, not exceptions."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None and not req.has_header("Content-type"):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def settled(
    gateway: GatewayProcess, key: str = TEAM_KEY, counter: str = "workspace/team"
) -> Decimal:
    """A budget's settled spend as the gateway's usage endpoint reports it, with nothing
    still reserved (every request before the call has settled)."""
    status, _, body = http("GET", gateway.v1 + "/catalog/usage", None,
                           {"authorization": f"Bearer {key}"})  # fmt: skip
    assert status == 200, body
    (row,) = [c for c in json.loads(body)["counters"] if c["counter"] == counter]
    assert row["reserved"] == "0", row
    return Decimal(row["spent"])


def openai_client(gateway: GatewayProcess, key: str = TEAM_KEY, **kw: Any) -> openai.OpenAI:
    """The openai SDK pointed at the gateway, the workspace key as its bearer token. No SDK
    retries unless asked: each test decides what is retried."""
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 20)
    return openai.OpenAI(base_url=gateway.v1, api_key=key, **kw)


def secrets_in(text: str, secrets: Iterable[str] = SECRETS) -> list[str]:
    """Which of `secrets` appear in `text`, by position only (an assertion message must not
    print the value either)."""
    found = []
    for i, secret in enumerate(secrets):
        if secret in text:
            found.append(f"secret #{i} (plain)")
    return found


def parse_sse(data: bytes) -> list[tuple[str | None, str]]:
    """(event, data) of each server-sent event in `data`."""
    events = []
    for block in data.replace(b"\r\n", b"\n").split(b"\n\n"):
        event, lines = None, []
        for line in block.decode("utf-8").split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                lines.append(line[5:].lstrip())
        if lines:
            events.append((event, "\n".join(lines)))
    return events


def check_logged(line: dict[str, Any], *, workspace: str, provider: str, model: str,
                 status: int, cost: Decimal, used: Tokens | None = None) -> None:  # fmt: skip
    """The access-log line says who, where, what it cost (exact) and what was used."""
    assert line["workspace"] == workspace, line
    assert str(line["provider"]).lstrip("@") == provider, line
    assert line["model"] == model, line
    assert line["status"] == status, line
    assert Decimal(line["cost_usd"]) == cost, (line, cost)
    if used is not None:
        got = logged_tokens(line["tokens"])
        assert got == (used.total if isinstance(got, int) else used), line


def logged_tokens(tokens: Any) -> Tokens | int:
    """The log's `tokens`: a total, or the four counts by name."""
    if isinstance(tokens, int):
        return tokens
    assert isinstance(tokens, dict), tokens
    return Tokens(tokens.get("input", 0), tokens.get("output", 0), tokens.get("cache_read", 0),
                  tokens.get("cache_write", 0))  # fmt: skip
