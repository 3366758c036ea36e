"""`catalogc serve`: compile a catalog (or take a bundle) and hand it to the gateway."""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from catalog_compiler.cli.serve_cmd import gateway_argv, tuning_argv
from runtime.bundle.load import Bundle
from tests.conftest import ROOT

GATEWAY_EXAMPLE = ROOT / "examples" / "gateway"
DEMO_KEY = "demo-key-not-secret"
ASK = [{"role": "user", "content": "hello there"}]
BROKEN = {"catalog.yaml": "kind: Organization\nversion: 1\nname: X\nbudgets: 5\n"}
# The gateway extra is missing: Python refuses an import whose sys.modules entry is None.
WITHOUT_AIOHTTP = (
    "import sys; sys.modules['aiohttp'] = None; "
    "from catalog_compiler.cli import main; sys.argv = ['catalogc', *sys.argv[1:]]; main()"
)


def test_gateway_argv_forwards_every_option() -> None:
    argv = gateway_argv("/b/catalog.bundle.json", "0.0.0.0", 0, 4, "redis://r:6379/0", True)
    assert argv == [
        "/b/catalog.bundle.json", "--host", "0.0.0.0", "--port", "0", "--workers", "4",
        "--redis", "redis://r:6379/0", "--allow-missing-secrets",
    ]  # fmt: skip


def test_gateway_argv_defaults_and_an_absolute_bundle_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = gateway_argv("-odd.json", "127.0.0.1", 8787, 1, None, False)
    # relative to where catalogc ran, and never mistaken for an option
    assert argv == [str(tmp_path / "-odd.json"), "--host", "127.0.0.1", "--port", "8787",
                    "--workers", "1"]  # fmt: skip


def test_a_catalog_with_errors_is_not_served(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = make_catalog(BROKEN, org=None)
    result = run_cli("serve", str(root), "--port", "0")
    assert result.exit_code == 1
    assert "catalog.yaml:4:10: error[E0204]" in result.output
    assert "nothing served: fix the errors above" in result.output


def test_a_missing_catalog_is_an_io_error(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    result = run_cli("serve", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert "error[E0001]" in result.output


def test_several_workers_need_redis_before_anything_is_compiled(
    make_catalog: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    root = make_catalog(BROKEN, org=None)
    result = run_cli("serve", str(root), "--workers", "2")
    assert result.exit_code == 2
    assert "--workers 2 needs --redis URL" in result.output
    assert "E0204" not in result.output  # refused first: no compile was spent on it


def run_catalogc(code: str, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "CATALOGC_NO_CACHE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
        timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("bundle", [False, True], ids=["catalog", "bundle"])
def test_without_the_gateway_extra_serve_says_what_to_install(tmp_path: Path, bundle: bool) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    source = str(GATEWAY_EXAMPLE)
    if bundle:
        source = str(tmp_path / "g.bundle.json")
        done = run_catalogc(WITHOUT_AIOHTTP, "compile", str(GATEWAY_EXAMPLE), "-o", source,
                            tmp=tmp)  # fmt: skip
        assert done.returncode == 0, done.stderr
    done = run_catalogc(WITHOUT_AIOHTTP, "serve", source, tmp=tmp)
    assert done.returncode == 2, done.stderr
    assert "install catalog-compiler[gateway]" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp.iterdir()) == []  # no bundle was written for a server that cannot start


# -- with the gateway (runtime/gateway): a real server on 127.0.0.1 ------------------------


def read_events(proc: subprocess.Popen[str], until: str, timeout: float = 60) -> list[Any]:
    """The JSON lines the process logs on stderr, up to the first `until` event."""
    assert proc.stderr is not None
    events: list[Any] = []
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and sel.select(deadline - time.monotonic()):
            line = proc.stderr.readline()
            if not line:
                break
            if line.startswith("{"):
                events.append(json.loads(line))
                if events[-1].get("event") == until:
                    return events
    raise AssertionError(f"no `{until}` event; got {events}")


@dataclass
class Served:
    proc: subprocess.Popen[str]
    events: list[Any]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.events[-1]['port']}/v1"


@contextlib.contextmanager
def serving(tmp: Path, *args: str) -> Iterator[Served]:
    """`catalogc serve ARGS --port 0` in its own process, until its `listening` line;
    stopped with SIGINT (Ctrl-C) afterwards."""
    pytest.importorskip("runtime.gateway.cli", reason="the gateway (runtime/gateway) is not here")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "CATALOGC_NO_CACHE": "1"}
    command = [sys.executable, "-m", "catalog_compiler", "serve", *args, "--port", "0"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield Served(proc, read_events(proc, "listening"))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        assert proc.stderr is not None
        proc.stderr.close()


def test_serve_compiles_the_directory_and_the_gateway_serves_that_bundle(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with serving(tmp, str(GATEWAY_EXAMPLE)) as served:
        compiled = next(e for e in served.events if e["event"] == "compiled")
        bundle = Bundle.load(Path(compiled["bundle"]))
        assert compiled["digest"] == bundle.digest == served.events[-1]["digest"]
        assert Path(compiled["bundle"]).parent.parent == tmp
        url = served.base_url.removesuffix("/v1") + "/readyz"
        with urllib.request.urlopen(url, timeout=10) as answer:
            ready = json.loads(answer.read())
        assert ready["status"] == "ready" and ready["digest"] == bundle.digest
    assert list(tmp.iterdir()) == []  # the compiled bundle does not outlive the server


def quick_start() -> str:
    """The ```python block of docs/gateway.md's quick start, as written."""
    text = (ROOT / "docs" / "gateway.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n(.*?)```", text, re.S)
    assert found is not None, "docs/gateway.md lost its quick-start block"
    return found.group(1)


def test_the_documented_quick_start_runs_and_the_next_call_is_rate_limited(
    tmp_path: Path,
) -> None:
    openai = pytest.importorskip("openai")
    with serving(tmp_path, str(GATEWAY_EXAMPLE)) as served:
        code = quick_start().replace("http://127.0.0.1:8787/v1", served.base_url)
        assert code != quick_start()
        exec(compile(code, "docs/gateway.md", "exec"), {})  # our own docs, as a reader runs them
        client = openai.OpenAI(base_url=served.base_url, api_key=DEMO_KEY, max_retries=0)
        # 1 + 1 + 1 + 2 (the fallback is admitted twice) of the 10 a minute are spent
        for _ in range(5):
            client.chat.completions.create(model="@mock-fast/echo", messages=ASK)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="@mock-fast/echo", messages=ASK)
        assert refused.value.response.headers["retry-after"] == "6"


def test_the_quick_start_answers_as_documented(tmp_path: Path) -> None:
    openai = pytest.importorskip("openai")
    with serving(tmp_path, str(GATEWAY_EXAMPLE)) as served:
        demo = openai.OpenAI(base_url=served.base_url, api_key=DEMO_KEY, max_retries=0)
        raw = demo.chat.completions.with_raw_response.create(model="@mock-fast/echo", messages=ASK)
        answer = raw.parse()
        assert answer.choices[0].message.content == "echo: hello there"
        assert answer.usage is not None
        assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (2, 3)
        assert raw.headers["x-catalog-cost-usd"] == "0.000008"
        raw = demo.chat.completions.with_raw_response.create(model="echo", messages=ASK)
        assert raw.headers["x-portkey-provider"] == "@mock-fast"
        assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
        analytics = openai.OpenAI(base_url=served.base_url, api_key="analytics-key-not-secret",
                                  max_retries=0)  # fmt: skip
        assert [m.id for m in analytics.models.list()] == [
            "@mock-down/echo", "@mock-down/embed", "@mock-fast/echo", "@mock-fast/embed",
        ]  # fmt: skip
        with pytest.raises(openai.PermissionDeniedError, match="allows only `echo`, `embed`"):
            analytics.chat.completions.create(model="@mock-fast/echo-large", messages=ASK)


def test_the_gateways_own_options_are_forwarded_only_when_given() -> None:
    assert tuning_argv(None, None, None, True) == []
    assert tuning_argv("team-a", 4096, 2.5, False) == [
        "--namespace", "team-a", "--max-body-bytes", "4096", "--drain-timeout", "2.5",
        "--no-watch",
    ]  # fmt: skip
    from runtime.gateway.cli import parser

    argv = gateway_argv("/b.json", "127.0.0.1", 0, 1, None, False,
                        tuning_argv("team-a", 4096, 2.5, False))  # fmt: skip
    parsed = parser().parse_args(argv)  # the gateway accepts exactly what serve forwards
    assert (parsed.namespace, parsed.max_body_bytes, parsed.drain_timeout, parsed.no_watch) == (
        "team-a",
        4096,
        2.5,
        True,
    )


def test_the_client_timeout_reaches_the_gateway_and_is_bounded(run_cli: Callable[..., Any]) -> None:
    from runtime.gateway.cli import _check, parser

    argv = gateway_argv("/b.json", "127.0.0.1", 0, 1, None, False,
                        tuning_argv(None, None, None, True, client_timeout=2.5))  # fmt: skip
    assert parser().parse_args(argv).client_timeout == 2.5
    assert parser().parse_args(["/b.json"]).client_timeout == 30.0
    for bad in ("0", "-1", "nan", "1e9"):
        assert "--client-timeout" in (_check(parser().parse_args(["/b.json", "--client-timeout",
                                                                   bad])) or "")  # fmt: skip
    done = run_cli("serve", str(ROOT / "examples" / "gateway"), "--client-timeout", "0")
    assert done.exit_code == 2 and "--client-timeout" in done.output
    argv = gateway_argv("/b.json", "127.0.0.1", 0, 1, None, False,
                        tuning_argv(None, None, None, True, max_connections=7))  # fmt: skip
    assert parser().parse_args(argv).max_connections == 7
    assert "--max-connections" in (_check(parser().parse_args(["/b.json", "--max-connections",
                                                               "-1"])) or "")  # fmt: skip


def test_the_body_memory_bound_reaches_the_gateway_and_fits_a_largest_body(
    run_cli: Callable[..., Any],
) -> None:
    from runtime.gateway.cli import _check, parser

    argv = gateway_argv("/b.json", "127.0.0.1", 0, 1, None, False,
                        tuning_argv(None, None, None, True, max_body_memory=10**8))  # fmt: skip
    assert parser().parse_args(argv).max_body_memory == 10**8
    assert parser().parse_args(["/b.json"]).max_body_memory == 256 * 1024 * 1024
    for bad in (["--max-body-memory", "4095", "--max-body-bytes", "4096"],
                ["--max-body-memory", "-1"], ["--max-body-memory", str(2**60)]):  # fmt: skip
        assert "--max-body-memory" in (_check(parser().parse_args(["/b.json", *bad])) or "")
    assert _check(parser().parse_args(["/b.json", "--max-body-memory", "33554432"])) is None
    assert "--max-body-memory" in (  # one workspace's half must fit a body of the largest size
        _check(parser().parse_args(["/b.json", "--max-body-memory", "33554431"])) or ""
    )
    done = run_cli("serve", str(ROOT / "examples" / "gateway"), "--max-body-memory", "10")
    assert done.exit_code == 2 and "--max-body-memory" in done.output


def test_the_default_connection_cap_follows_the_descriptor_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import resource

    from runtime.gateway import capped_site

    for soft, cap in ((1024, 512), (100, 64), (10**6, 10_000), (resource.RLIM_INFINITY, 10_000)):
        monkeypatch.setattr(resource, "getrlimit", lambda _kind, soft=soft: (soft, soft))
        assert capped_site.default_max_connections() == cap


def test_the_books_and_leasing_options_reach_the_gateway(run_cli: Callable[..., Any]) -> None:
    from runtime.gateway.cli import parser

    tuning = tuning_argv(None, None, None, True, events="ev.jsonl", events_max_bytes=8192,
                         metrics=False, alerts_dead_letter="dead.jsonl", lease_block=0.01)  # fmt: skip
    parsed = parser().parse_args(
        gateway_argv("/b.json", "127.0.0.1", 0, 1, "redis://127.0.0.1:1/0", False, tuning)
    )
    assert (parsed.events, parsed.events_max_bytes, parsed.no_metrics) == ("ev.jsonl", 8192, True)
    assert parsed.alerts_dead_letter == "dead.jsonl"
    assert (parsed.redis_lease_budgets, parsed.redis_lease_block) == (True, 0.01)
    assert "--redis-lease-budgets" not in tuning_argv(None, None, None, True)
    done = run_cli("serve", str(ROOT / "examples" / "gateway"), "--redis-lease-budgets")
    assert done.exit_code == 2 and "needs --redis" in done.output
