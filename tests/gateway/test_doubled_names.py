"""A provider slug written with a doubled `@` (`@@backup`) in any place a request may name
one is an unknown provider (404), never an internal error: one layer took one `@` off and
another took a second (review, 2026-12-03)."""

from __future__ import annotations

import json

import pytest

from tests.gateway.fakes import Fakes
from tests.gateway.harness import TEAM_KEY, GatewayProcess, http, user

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
