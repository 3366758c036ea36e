"""Portkey's retry and fallback rules as the gateway executes them (issue 12, point 1), with
inline configs over real sockets: default retry statuses, listed 2xx statuses, both spellings
of `use_retry_after_header(s)`, the cap on Retry-After waiting, fallback up a nested tree,
and the `x-portkey-retry-attempt-count` 0 / n / -1 convention."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest

from tests.gateway.fakes import Answer, Fakes
from tests.gateway.harness import user

OPENAI = "@openai-main/gpt-4o-mini"
BACKUP = "@backup/backup-chat"


def call(client: openai.OpenAI, config: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON body, headers) of one chat completion under an inline config."""
    raw = client.chat.completions.with_raw_response
    try:
        resp = raw.create(model="gpt-4o-mini", messages=user(),
                          extra_headers={"x-portkey-config": json.dumps(config)})  # fmt: skip
        return resp.status_code, json.loads(resp.text), dict(resp.headers)
    except openai.APIStatusError as err:
        return err.status_code, err.response.json(), dict(err.response.headers)


@pytest.fixture
def client(gateway: Any) -> Any:
    from tests.gateway.harness import openai_client

    with openai_client(gateway, max_retries=0) as c:
        yield c


def test_retry_without_status_list_retries_portkeys_defaults(fakes: Fakes, client: Any) -> None:
    """[429, 500, 502, 503, 504]; a 400 or a 408 is not retried."""
    config = {"provider": OPENAI, "retry": {"attempts": 3}}
    fakes.openai.script(Answer.error(429, retry_after=0), Answer.error(502), Answer.error(504))
    status, _, headers = call(client, config)
    assert status == 200 and len(fakes.openai.requests) == 4
    assert headers["x-portkey-retry-attempt-count"] == "3"
    fakes.reset()
    fakes.openai.script(Answer.error(400), Answer.error(400))
    status, _, headers = call(client, config)
    assert status == 400 and len(fakes.openai.requests) == 1
    assert headers["x-portkey-retry-attempt-count"] == "0"


def test_exhausted_retries_are_counted_minus_one(fakes: Fakes, client: Any) -> None:
    fakes.openai.script(*[Answer.error(503)] * 3)
    status, _, headers = call(client, {"provider": OPENAI, "retry": {"attempts": 2}})
    assert status == 503 and len(fakes.openai.requests) == 3
    assert headers["x-portkey-retry-attempt-count"] == "-1"
    # retries that end on a status they do not retry count as made
    fakes.reset()
    fakes.openai.script(Answer.error(503), Answer.error(400))
    status, _, headers = call(client, {"provider": OPENAI, "retry": {"attempts": 2}})
    assert status == 400 and headers["x-portkey-retry-attempt-count"] == "1"


def test_a_listed_2xx_status_is_retried_and_falls_back(fakes: Fakes, client: Any) -> None:
    guardrail = Answer(status=246)
    fakes.openai.script(guardrail, guardrail)
    config = {"provider": OPENAI, "retry": {"attempts": 1, "on_status_codes": [246]}}
    status, _, headers = call(client, config)
    assert status == 246 and len(fakes.openai.requests) == 2
    assert headers["x-portkey-retry-attempt-count"] == "-1"
    fakes.reset()
    fakes.openai.script(guardrail)
    config = {"strategy": {"mode": "fallback", "on_status_codes": [246]},
              "targets": [{"provider": OPENAI}, {"provider": BACKUP}]}  # fmt: skip
    status, body, headers = call(client, config)
    assert status == 200 and body["model"] == "backup-chat"
    assert headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    fakes.reset()
    fakes.openai.script(guardrail)  # not listed: a 2xx is the answer
    config["strategy"] = {"mode": "fallback"}
    status, _, headers = call(client, config)
    assert status == 246 and fakes.backup.requests == []
    assert headers["x-portkey-last-used-option-index"] == "config.targets[0]"


@pytest.mark.parametrize("spelling", ["use_retry_after_header", "use_retry_after_headers"])
def test_both_spellings_honour_retry_after(fakes: Fakes, client: Any, spelling: str) -> None:
    fakes.openai.script(Answer.error(429, retry_after=1))
    config = {
        "provider": OPENAI,
        "retry": {"attempts": 1, "on_status_codes": [429], spelling: True},
    }
    status, _, headers = call(client, config)
    assert status == 200 and headers["x-portkey-retry-attempt-count"] == "1"
    first, second = fakes.openai.requests
    assert second.at - first.at >= 0.9


def test_a_retry_after_past_the_cap_is_not_waited_for(fakes: Fakes, client: Any) -> None:
    """Portkey caps Retry-After waiting at 60 s per request: a longer wait is not retried."""
    fakes.openai.script(Answer.error(429, retry_after=120))
    config = {"provider": OPENAI,
              "retry": {"attempts": 3, "on_status_codes": [429], "use_retry_after_header": True}}  # fmt: skip
    started = time.monotonic()
    status, _, headers = call(client, config)
    assert time.monotonic() - started < 10
    assert status == 429 and len(fakes.openai.requests) == 1
    assert headers["x-portkey-retry-attempt-count"] == "-1"


def test_a_nested_group_that_stops_hands_its_answer_to_its_parent(
    fakes: Fakes, client: Any
) -> None:
    """The inner group moves on only on 429; its 500 goes up to the outer group, which
    moves on from any non-2xx (Portkey's tryTargetsRecursively)."""
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {
                "strategy": {"mode": "fallback", "on_status_codes": [429]},
                "targets": [{"provider": OPENAI}, {"provider": OPENAI}],
            },
            {"provider": BACKUP},
        ],
    }
    fakes.openai.script(Answer.error(500))
    status, body, headers = call(client, config)
    assert status == 200 and body["model"] == "backup-chat"
    assert len(fakes.openai.requests) == 1 and len(fakes.backup.requests) == 1
    assert headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    fakes.reset()
    fakes.openai.script(Answer.error(429, retry_after=0))
    status, body, headers = call(client, config)
    assert status == 200 and body["model"] == "gpt-4o-mini"
    assert headers["x-portkey-last-used-option-index"] == "config.targets[0].targets[1]"
    assert len(fakes.openai.requests) == 2 and fakes.backup.requests == []
