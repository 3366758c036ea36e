"""The gallery's snippets, executed against the gateway: every Python, JavaScript and curl
snippet of the `team` workspace (each request form, each SDK) prints the answer of the model
it names; and what `catalogc snippets` prints runs as a developer would run it, one process
per snippet."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from catalog_compiler.tools.gallery import Gateway, Request, build_site, snippets
from catalog_compiler.tools.gallery.snippets import Snippet
from runtime.bundle.load import Bundle
from tests.gallery.snippet_runner import (  # noqa: F401  (node_sdks: a fixture)
    Ran,
    node_sdks,
    run_alone,
    run_each,
    run_node,
    run_python,
)
from tests.gateway.fakes import Fakes, embedding
from tests.gateway.harness import TEAM_KEY, GatewayProcess

ENV = {"CATALOG_API_KEY": TEAM_KEY}
ANY_REPLY = re.compile(r"fake \S+ says hello")


@pytest.fixture(scope="module")
def team_requests(gateway: GatewayProcess, bundle: Path) -> list[Request]:
    site = build_site(Bundle.load(bundle), Gateway(gateway.v1))
    (team,) = [w for w in site.workspaces if w.slug == "team"]
    found = [f.request for g in team.groups for r in g.routes for f in r.forms
             if f.request is not None]  # fmt: skip
    assert {r.form for r in found} == {"model", "provider", "config"}
    assert any(r.embedding for r in found) and any(r.provider == "claude" for r in found)
    assert any(r.mode == "completion" for r in found)  # asked on /v1/completions
    return found


def printed_right(req: Request, out: str) -> bool:
    """A snippet prints the reply text (or an embedding's length). The model and provider
    forms name their model exactly, so the fake's reply names it; a config may route to
    another of its targets."""
    text = out.strip()
    if req.embedding:
        return text == str(len(embedding("")))
    if req.form == "config":
        return bool(ANY_REPLY.fullmatch(text))
    return text == f"fake {req.model} says hello"


def jobs_for(requests: list[Request], gateway: GatewayProcess,
             lang: str) -> list[tuple[Request, Snippet]]:  # fmt: skip
    gw = Gateway(gateway.v1)
    return [(req, s) for req in requests for s in snippets(req, gw, (lang,))]


def check(jobs: list[tuple[Request, Snippet]], results: list[Ran]) -> None:
    failures = [(s.sdk, req.form, req.target, ran.error[-800:] or ran.out)
                for (req, s), ran in zip(jobs, results, strict=True)
                if not (ran.ok and printed_right(req, ran.out))]  # fmt: skip
    assert not failures, json.dumps(failures, indent=1)


@pytest.mark.slow  # two interpreters importing both SDKs (portkey_ai alone takes seconds)
def test_python_snippets_run(team_requests: list[Request], gateway: GatewayProcess,
                             fakes: Fakes, tmp_path: Path) -> None:  # fmt: skip
    jobs = jobs_for(team_requests, gateway, "python")
    assert {s.sdk for _, s in jobs} == {"openai", "portkey-ai"}
    check(jobs, run_python([s.code for _, s in jobs], ENV, tmp_path))


def test_javascript_snippets_run(team_requests: list[Request], gateway: GatewayProcess,
                                 fakes: Fakes, tmp_path: Path, request: pytest.FixtureRequest) -> None:  # fmt: skip
    jobs = jobs_for(team_requests, gateway, "js")
    assert {s.sdk for _, s in jobs} == {"openai", "portkey-ai"}
    sdks = request.getfixturevalue("node_sdks")
    check(jobs, run_node([s.code for _, s in jobs], ENV, tmp_path, sdks))


def test_curl_snippets_run(team_requests: list[Request], gateway: GatewayProcess,
                           fakes: Fakes, tmp_path: Path) -> None:  # fmt: skip
    failures = []
    for req, s in jobs_for(team_requests, gateway, "curl"):
        ran = run_alone(s.code, "curl", ENV, tmp_path)
        try:
            reply = json.loads(ran.out)
            choice = reply["choices"][0] if not req.embedding else {}
            out = (str(len(reply["data"][0]["embedding"])) if req.embedding
                   else choice["text"] if req.mode == "completion"
                   else choice["message"]["content"])  # fmt: skip
        except (ValueError, KeyError, IndexError, TypeError):
            out = ""
        if not (ran.ok and printed_right(req, out)):
            failures.append((req.form, req.target, ran.out[-400:], ran.error[-400:]))
    assert not failures, json.dumps(failures, indent=1)


# -- catalogc snippets, one process per snippet ---------------------------------------------------
def cli_blocks(bundle: Path, gateway: GatewayProcess, lang: str) -> list[str]:
    """`catalogc snippets @backup/backup-chat BUNDLE -w team --form model --lang LANG`,
    split into its snippets at the `==== ... ====` title lines."""
    from click.testing import CliRunner

    from catalog_compiler.cli import cli

    result = CliRunner().invoke(cli, [
        "snippets", "@backup/backup-chat", str(bundle), "-w", "team", "--form", "model",
        "--lang", lang, "--gateway-url", gateway.v1,
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    blocks = re.split(r"^(?:#|//) ==== .* ====\n", result.output, flags=re.M)
    return [b for b in blocks if b.strip()]


@pytest.mark.parametrize("lang", [pytest.param("python", marks=pytest.mark.slow), "js", "curl"])
def test_cli_snippets_run_alone(bundle: Path, gateway: GatewayProcess, fakes: Fakes,
                                tmp_path: Path, lang: str,
                                request: pytest.FixtureRequest) -> None:  # fmt: skip
    sdks = request.getfixturevalue("node_sdks") if lang == "js" else None
    blocks = cli_blocks(bundle, gateway, lang)
    assert len(blocks) == (1 if lang == "curl" else 2)
    for code, ran in zip(blocks, run_each(blocks, lang, ENV, tmp_path, sdks), strict=True):
        assert ran.ok, (code, ran.error)
        out = json.loads(ran.out)["choices"][0]["message"]["content"] if lang == "curl" else ran.out
        assert out.strip() == "fake backup-chat says hello", (code, ran.out)
    assert len(fakes.backup.requests) == len(blocks)
