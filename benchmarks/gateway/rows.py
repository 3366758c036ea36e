"""What each row of the gateway benchmark starts: the pass-through floors of each HTTP stack,
our gateway (memory store or Redis), and Portkey's gateway from npm."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.gateway.loadgen import Target
from benchmarks.gateway.procs import Server, free_port

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
CHAT = "/v1/chat/completions"
# An obviously fake workspace key; only its sha256 is in the catalog.
GATEWAY_KEY = "catalogc-bench-FAKE-0000"
UPSTREAM_KEY = "sk-test-FAKE-0000"
PORTKEY_VERSION = "1.15.2"
# @portkey-ai/gateway asks for @hono/node-server ^1.3.3; npm picks the newest 1.x, whose
# lightweight Response hands the upstream's immutable fetch headers to Portkey's
# updateHeaders: every streaming answer is a 500 "TypeError: immutable"
# (Portkey-AI/gateway#1389). 1.13.8 is the newest release without that code path.
PORTKEY_OVERRIDES = {"@hono/node-server": "1.13.8"}


@dataclass
class Row:
    """A row of the table: what to send, and the server to start (None: the upstream)."""

    name: str
    model: str
    headers: dict[str, str]
    start: Callable[[Path, str | None], Server] | None = None
    server: Server | None = None
    skipped: str | None = None

    def target(self, upstream: str) -> Target:
        base = self.server.url if self.server else upstream
        return Target(self.name, base + CHAT, self.model, self.headers)


def _env() -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def aiohttp_floor(upstream: str, loop: str = "uvloop") -> Callable[[Path, str | None], Server]:
    def start(work: Path, cpus: str | None) -> Server:
        return floor_server(upstream, work, cpus, loop).start()

    return start


def floor_server(upstream: str, work: Path, cpus: str | None, loop: str = "uvloop") -> Server:
    """The aiohttp floor, not started yet."""
    port = free_port()
    argv = [PY, "-m", "benchmarks.gateway.floor_aiohttp", "--port", str(port),
            "--upstream", upstream, "--loop", loop]  # fmt: skip
    return Server(f"floor-aiohttp-{loop}", argv, port, work, cpus, _env())


def _script(module: str, name: str, upstream: str) -> Callable[[Path, str | None], Server]:
    """A floor that is one script taking --port and --upstream."""

    def start(work: Path, cpus: str | None) -> Server:
        port = free_port()
        argv = [PY, "-m", module, "--port", str(port), "--upstream", upstream]
        return Server(name, argv, port, work, cpus, _env()).start()

    return start


def tcp_relay(upstream: str) -> Callable[[Path, str | None], Server]:
    """The byte relay (floor_tcp.py): no HTTP, what any proxy adds before doing anything."""
    return _script("benchmarks.gateway.floor_tcp", "relay-tcp", upstream)


def raw_client_floor(upstream: str) -> Callable[[Path, str | None], Server]:
    """aiohttp's server, a minimal upstream client (floor_rawclient.py): whose latency is it."""
    return _script("benchmarks.gateway.floor_rawclient", "floor-rawclient", upstream)


def asgi_floor(upstream: str, server: str) -> Callable[[Path, str | None], Server]:
    """uvicorn (httptools, uvloop) or granian (asgi or rsgi, uvloop, one runtime thread)."""

    def start(work: Path, cpus: str | None) -> Server:
        port = free_port()
        if server == "uvicorn":
            argv = [PY, "-m", "uvicorn", "benchmarks.gateway.floor_asgi:app", "--port", str(port),
                    "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                    "--lifespan", "off", "--log-level", "warning"]  # fmt: skip
        else:
            interface = server.removeprefix("granian-")
            app = "app" if interface == "asgi" else "rsgi_app"
            argv = [PY, "-m", "granian", "--interface", interface,
                    f"benchmarks.gateway.floor_asgi:{app}", "--port", str(port),
                    "--loop", "uvloop", "--no-ws", "--log-level", "warning"]  # fmt: skip
        env = {**_env(), "BENCH_UPSTREAM": upstream}
        return Server(f"floor-{server}", argv, port, work, cpus, env).start()

    return start


def stack_rows(upstream: str) -> list[Row]:
    """The stack decision: the same bare pass-through on each candidate server."""
    return [
        Row("upstream directly", "bench-model", {}),
        Row("byte relay, no HTTP (asyncio Protocols, uvloop)", "bench-model", {},
            tcp_relay(upstream)),
        Row("aiohttp server + client, asyncio loop", "bench-model", {},
            aiohttp_floor(upstream, "asyncio")),
        Row("aiohttp server + client, uvloop", "bench-model", {}, aiohttp_floor(upstream)),
        Row("aiohttp server + a minimal httptools client, uvloop", "bench-model", {},
            raw_client_floor(upstream)),
        Row("uvicorn (httptools, uvloop) + aiohttp client, ASGI", "bench-model", {},
            asgi_floor(upstream, "uvicorn")),
        Row("granian (uvloop) + aiohttp client, ASGI", "bench-model", {},
            asgi_floor(upstream, "granian-asgi")),
        Row("granian (uvloop) + aiohttp client, RSGI", "bench-model", {},
            asgi_floor(upstream, "granian-rsgi")),
    ]  # fmt: skip


# --- our gateway ---------------------------------------------------------------------------


def gateway_available() -> str | None:
    """None when `runtime.gateway` can be run, else why not."""
    try:
        spec = importlib.util.find_spec("runtime.gateway")
    except ImportError as exc:
        return f"runtime.gateway is not importable ({exc})"
    if spec is None:
        return "runtime.gateway is not importable yet (the gateway is not on this branch)"
    if importlib.util.find_spec("runtime.gateway.__main__") is None:
        return "runtime.gateway has no __main__ yet (python -m runtime.gateway cannot start)"
    return None


def catalog(upstream: str) -> dict[str, str]:
    """An openai-compatible integration at the fake upstream; one workspace with a key, a
    rate limit and a USD budget far above anything a run can spend (so admission and
    settlement run on every request and nothing is refused)."""
    digest = hashlib.sha256(GATEWAY_KEY.encode()).hexdigest()
    return {
        "catalog.yaml": "kind: Organization\nversion: 1\nname: Gateway benchmark\n",
        "rest.yaml": f"""kind: Integration
slug: bench-upstream
service: openai-compatible
base_url: {upstream}/v1
credentials: {{api_key: {{env: BENCH_UPSTREAM_KEY}}}}
models:
  custom:
    - name: bench-model
      context_window: 128000
      max_output_tokens: 4096
      pricing: {{input: "1", output: "2"}}
---
kind: Provider
slug: bench
integration: bench-upstream
---
kind: Workspace
slug: bench
api_keys:
  - {{name: bench, sha256: "{digest}"}}
rate_limits:
  - {{limit: 1000000000, unit: requests, per: minute}}
budgets:
  - {{limit: 1000000000, unit: usd, period: monthly}}
""",
    }


def compile_bundle(upstream: str, work: Path) -> Path:
    return compile_files(catalog(upstream), work)


def compile_files(files: dict[str, str], work: Path) -> Path:
    """The catalog `files` (name -> YAML) compiled to `work`/bench.bundle.json."""
    from catalog_compiler.compiler import compile_catalog

    root = work / "catalog"
    root.mkdir(exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    compiled = compile_catalog(root)
    if compiled.data is None:
        raise SystemExit(f"the benchmark catalog does not compile: {compiled.errors}")
    bundle = work / "bench.bundle.json"
    bundle.write_bytes(compiled.data)
    return bundle


def gateway(bundle: Path, redis_url: str | None) -> Callable[[Path, str | None], Server]:
    def start(work: Path, cpus: str | None) -> Server:
        return gateway_server(bundle, redis_url, work, cpus).start()

    return start


def gateway_server(bundle: Path, redis_url: str | None, work: Path, cpus: str | None) -> Server:
    """`python -m runtime.gateway` on `bundle`, not started yet."""
    port = free_port()
    argv = [PY, "-m", "runtime.gateway", str(bundle), "--port", str(port)]
    if redis_url:
        argv += ["--redis", redis_url]
    env = {**_env(), "BENCH_UPSTREAM_KEY": UPSTREAM_KEY}
    name = "gateway-redis" if redis_url else "gateway-memory"
    return Server(name, argv, port, work, cpus, env)


def gateway_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {GATEWAY_KEY}"}


# --- Portkey's gateway ---------------------------------------------------------------------


def portkey_script(directory: Path) -> Path | str:
    """build/start-server.js of @portkey-ai/gateway, installed into `directory` with npm
    on first use; or why it cannot be."""
    script = directory / "node_modules/@portkey-ai/gateway/build/start-server.js"
    if script.exists():
        return script
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        return "node and npm are needed for Portkey's gateway (not installed)"
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {"private": True, "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION},
                "overrides": PORTKEY_OVERRIDES}  # fmt: skip
    (directory / "package.json").write_text(json.dumps(manifest, indent=2))
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=directory,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0 or not script.exists():
        return f"npm install @portkey-ai/gateway@{PORTKEY_VERSION} failed: {done.stderr[-500:]}"
    return script


def portkey(script: Path) -> Callable[[Path, str | None], Server]:
    def start(work: Path, cpus: str | None) -> Server:
        port = free_port()
        node = shutil.which("node") or "node"
        argv = [node, str(script), f"--port={port}", "--headless"]
        return Server("portkey", argv, port, work, cpus).start()

    return start


def portkey_headers(upstream: str) -> dict[str, str]:
    config = {"provider": "openai", "api_key": UPSTREAM_KEY, "custom_host": f"{upstream}/v1"}
    return {"x-portkey-config": json.dumps(config, separators=(",", ":"))}


def default_portkey_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "catalogc-bench" / f"portkey-gateway-{PORTKEY_VERSION}"
