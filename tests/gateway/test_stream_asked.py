"""Whether an answer streams is the client's choice, never a config's (review, 2026-12-03:
an inline config's `override_params: {"stream": true}` under a request that did not stream
had the upstream stream, and bill, a whole answer that the gateway then read as one JSON
body: a 502 to the client and only the input charged). The compiler refuses such a config
(E0515, tests/cases/config-sets-stream), an inline one is refused, and a bundle compiled
before that still sends each upstream the client's own form."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from runtime.bundle.canonical import seal
from tests.gateway.fakes import Answer, Fakes, Tokens
from tests.gateway.harness import TEAM_KEY, GatewayProcess, expected_cost, http, user

AUTH = {"authorization": f"Bearer {TEAM_KEY}"}
USED = Tokens(input=13, output=800)


@pytest.mark.parametrize("field", ["override_params", "default_params"])
@pytest.mark.parametrize("value", [True, False, "yes"])
def test_an_inline_config_that_sets_stream_is_refused(
    gateway: GatewayProcess, fakes: Fakes, field: str, value: object
) -> None:
    config = json.dumps({"provider": "@openai-main", field: {"stream": value}})
    body = {"model": "gpt-4o-mini", "messages": user()}
    status, _, raw = http("POST", gateway.v1 + "/chat/completions", body,
                          {**AUTH, "x-portkey-config": config})  # fmt: skip
    assert status == 400, raw
    assert f"{field}.stream" in json.loads(raw)["error"]["message"]
    assert not fakes.openai.requests


@pytest.mark.parametrize("stream", [True, "yes", False])
def test_a_bundle_config_that_sets_stream_is_sent_the_client_s_form(
    fakes: Fakes, bundle: Path, tmp_path: Path, stream: object
) -> None:
    data = {k: v for k, v in json.loads(bundle.read_bytes()).items() if k != "digest"}
    data["configs"]["team-default"]["tree"]["params"]["override"]["stream"] = stream
    doctored = tmp_path / "doctored.bundle.json"
    doctored.write_bytes(seal(data))
    gw = GatewayProcess(doctored, tmp_path / "gateway.log").start()
    try:
        fakes.backup.script(Answer(usage=USED))
        body = {"model": "anything", "messages": user()}  # the workspace's default config
        status, headers, raw = http("POST", gw.v1 + "/chat/completions", body, AUTH)
    finally:
        gw.stop()
    assert status == 200, raw
    sent = json.loads(fakes.backup.requests[-1].body)
    assert sent.get("stream", False) is False
    assert json.loads(raw)["object"] == "chat.completion"
    cost = expected_cost(bundle, "backup", "backup-chat", USED)
    assert Decimal(headers["x-catalog-cost-usd"]) == cost  # the whole answer, not the input
