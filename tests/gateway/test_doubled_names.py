"""Names a request gets wrong. A provider slug written with a doubled `@` (`@@backup`) in any place a request may name
one is an unknown provider (404), never an internal error: one layer took one `@` off and
another took a second (review, 2026-12-03). And a "did you mean" names only what the caller's workspace may
use."""

from __future__ import annotations

import json

import pytest

from tests.gateway.fakes import Fakes
from tests.gateway.harness import OTHER_KEY, TEAM_KEY, GatewayProcess, http, user

AUTH = {"Authorization": f"Bearer {TEAM_KEY}"}
FORMS = {
    "model string": ("chat/completions", {"model": "@@backup/backup-chat"}, {}),
    "provider header": ("chat/completions", {"model": "backup-chat"},
                        {"x-portkey-provider": "@@backup"}),
    "virtual key": ("chat/completions", {"model": "backup-chat"},
                    {"x-portkey-virtual-key": "@@backup"}),
    "inline config": ("chat/completions", {"model": "backup-chat"},
                      {"x-portkey-config": json.dumps({"provider": "@@backup"})}),
    "embeddings": ("embeddings", {"model": "@@backup/backup-chat", "input": "hi"}, {}),
    "messages": ("messages", {"model": "@@claude/claude-haiku-4-5-20251001",
                              "max_tokens": 8}, {}),
}  # fmt: skip


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_doubled_at_is_an_unknown_provider(gateway: GatewayProcess, fakes: Fakes,
                                             form: str) -> None:  # fmt: skip
    path, body, headers = FORMS[form]
    status, _, data = http("POST", f"{gateway.v1}/{path}", {**body, "messages": user()},
                           {**AUTH, **headers})  # fmt: skip
    assert status == 404, data
    assert b"internal_error" not in data
    assert fakes.backup.requests == [] and fakes.anthropic.requests == []


def _message(gw: GatewayProcess, key: str, model: str,
             headers: dict[str, str] | None = None) -> tuple[int, str]:  # fmt: skip
    status, _, data = http("POST", f"{gw.v1}/chat/completions",
                           {"model": model, "messages": user()},
                           {"Authorization": f"Bearer {key}", **(headers or {})})  # fmt: skip
    return status, json.loads(data)["error"]["message"]


def test_did_you_mean_names_only_what_the_workspace_may_use(gateway: GatewayProcess) -> None:
    """`other` may use `@backup` only: it was offered `limited`'s private `@throttled`,
    `team`'s config, and the model list of a provider it may not use (review, 2026-12-03)."""
    status, said = _message(gateway, OTHER_KEY, "@throttle/m")
    assert status == 404 and "throttled" not in said
    status, said = _message(gateway, TEAM_KEY, "@backupp/backup-chat")  # its own: suggested
    assert status == 404 and "did you mean `@backup`" in said
    status, said = _message(gateway, OTHER_KEY, "@openai-main/gpt-4o-mini-x")
    assert status == 404 and "did you mean" not in said
    status, said = _message(gateway, TEAM_KEY, "@openai-main/gpt-4o-mini-x")
    assert status == 404 and "did you mean" in said
    status, said = _message(gateway, OTHER_KEY, "backup-chat", {"x-portkey-config": "team-defaul"})
    assert status == 404 and "team-default" not in said
    status, said = _message(gateway, TEAM_KEY, "backup-chat", {"x-portkey-config": "team-defaul"})
    assert status == 404 and "team-default" in said
