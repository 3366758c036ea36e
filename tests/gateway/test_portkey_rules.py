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


def call(client: openai.OpenAI, config: dict[str, Any],
         trace: str | None = None) -> tuple[int, Any, dict[str, str]]:  # fmt: skip
    """(status, JSON body, headers) of one chat completion under an inline config."""
    raw = client.chat.completions.with_raw_response
    headers = {"x-portkey-config": json.dumps(config)}
    if trace is not None:
        headers["x-portkey-trace-id"] = trace
    try:
        resp = raw.create(model="gpt-4o-mini", messages=user(), extra_headers=headers)
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


def test_an_empty_status_list_retries_nothing(fakes: Fakes, client: Any) -> None:
    """Portkey reads `on_status_codes ?? defaults`: an empty list retries on no status. It
    was taken as absent here, and a 503 was tried three times."""
    fakes.openai.script(Answer.error(503), Answer.error(503))
    config = {"provider": OPENAI, "retry": {"attempts": 2, "on_status_codes": []}}
    status, _, headers = call(client, config)
    assert status == 503 and len(fakes.openai.requests) == 1
    assert headers["x-portkey-retry-attempt-count"] == "0"


def test_the_gateways_own_refusal_is_answered_not_retried(gateway: Any, fakes: Fakes) -> None:
    """A rate limit of the catalog's (429) under a config that retries 429: it was retried
    with backoff (and, honouring its Retry-After, a client held for up to a minute); Portkey
    answers its own refusals at once. Only an upstream's status retries."""
    from tests.gateway.harness import LIMITED_KEY, openai_client, trace_id

    config = {"provider": "@throttled", "override_params": {"model": "gpt-4o-mini"},
              "retry": {"attempts": 3, "on_status_codes": [429]}}  # fmt: skip
    with openai_client(gateway, key=LIMITED_KEY, max_retries=0) as limited:
        for _ in range(2):  # the hour's one request, if no other test took it
            trace = trace_id()
            status, _, headers = call(limited, config, trace)
        assert status == 429 and headers["x-portkey-retry-attempt-count"] == "0"
    assert gateway.request_line(trace)["attempts"] == 1


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


def test_the_request_timeout_header_wins_over_the_config(fakes: Fakes, client: Any) -> None:
    fakes.openai.script(Answer(latency=2.0))
    raw = client.chat.completions.with_raw_response
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as err:
        raw.create(model=OPENAI, messages=user(),
                   extra_headers={"x-portkey-request-timeout": "300",
                                  "x-portkey-config": json.dumps({"request_timeout": 60000})})  # fmt: skip
    assert err.value.status_code == 408 and time.monotonic() - started < 1.8
    body = err.value.response.json()
    assert body["error"]["type"] == "timeout_error" and body["error"]["code"] is None
    assert "300ms" in body["error"]["message"]
    for bad in ("0", "-5", "1.5", "soon", "99999999"):
        with pytest.raises(openai.BadRequestError):
            raw.create(model=OPENAI, messages=user(),
                       extra_headers={"x-portkey-request-timeout": bad})  # fmt: skip


def test_a_conditional_without_default_routes_or_refuses(fakes: Fakes, client: Any) -> None:
    """Accepted as Portkey accepts it; a request that matches no condition is a 400."""
    config = {"strategy": {"mode": "conditional",
                           "conditions": [{"query": {"metadata.tier": "pro"}, "then": "a"}]},
              "targets": [{"name": "a", "provider": BACKUP}]}  # fmt: skip
    raw = client.chat.completions.with_raw_response
    headers = {"x-portkey-config": json.dumps(config), "x-portkey-metadata": '{"tier": "pro"}'}
    resp = raw.create(model="any", messages=user(), extra_headers=headers)
    assert resp.status_code == 200 and resp.headers["x-portkey-cache-status"] == "DISABLED"
    headers["x-portkey-metadata"] = '{"tier": "free"}'
    with pytest.raises(openai.BadRequestError) as err:
        raw.create(model="any", messages=user(), extra_headers=headers)
    assert "no `default`" in err.value.response.json()["error"]["message"]
    assert len(fakes.backup.requests) == 1


def test_forward_headers_pass_named_client_headers_only(fakes: Fakes, client: Any) -> None:
    """A config's `forward_headers` (or the request's `x-portkey-forward-headers`, which wins)
    passes those client headers upstream as they are; no other client header goes, and a
    credential header never does."""
    config = {"provider": OPENAI, "forward_headers": ["X-Request-Id", "x-team", "authorization"]}
    raw = client.chat.completions.with_raw_response
    sent = {"x-portkey-config": json.dumps(config), "x-request-id": "req-1", "x-team": "blue",
            "x-other": "no"}  # fmt: skip
    with pytest.raises(openai.BadRequestError):  # an inline config may not name a credential
        raw.create(model="m", messages=user(), extra_headers=sent)
    config["forward_headers"] = ["X-Request-Id", "x-team"]
    sent["x-portkey-config"] = json.dumps(config)
    raw.create(model="m", messages=user(), extra_headers=sent)
    (got,) = fakes.openai.requests
    assert (got.headers.get("x-request-id"), got.headers.get("x-team")) == ("req-1", "blue")
    assert "x-other" not in got.headers
    assert got.headers["authorization"] != f"Bearer {client.api_key}"  # the catalog's key
    fakes.reset()
    raw.create(model="m", messages=user(),
               extra_headers={**sent, "x-portkey-forward-headers": "x-other"})  # fmt: skip
    (got,) = fakes.openai.requests
    assert got.headers.get("x-other") == "no" and "x-team" not in got.headers
    # trace context goes only as validated; the billed OpenAI organization and project are
    # the catalog's (a review found both forwarded as the client sent them)
    for bad in (
        "authorization",
        "x-portkey-api-key",
        "host",
        "x-a, cookie",
        "bad name",
        "traceparent",
        "TraceState",
        "openai-organization",
        "x-a, openai-project",
    ):
        with pytest.raises(openai.BadRequestError):
            raw.create(model=OPENAI, messages=user(),
                       extra_headers={"x-portkey-forward-headers": bad, "traceparent": "junk",
                                      "openai-organization": "org-FAKE"})  # fmt: skip
    assert len(fakes.openai.requests) == 1
    # named by a config, they are left out, as credential and framing headers are
    fakes.reset()
    config["forward_headers"] = ["x-team", "openai-organization", "tracestate"]
    raw.create(model="m", messages=user(), extra_headers={
        **sent, "x-portkey-config": json.dumps(config), "openai-organization": "org-FAKE",
        "tracestate": "x" * 5000})  # fmt: skip
    (got,) = fakes.openai.requests
    assert got.headers.get("x-team") == "blue"
    assert "openai-organization" not in got.headers and "tracestate" not in got.headers


def test_headers_that_move_a_provider_are_refused(fakes: Fakes, client: Any) -> None:
    """Portkey reads a custom host and cloud resource headers; the catalog decides those
    here, so they are refused (400), never silently ignored or obeyed."""
    raw = client.chat.completions.with_raw_response
    for name, value in (("x-portkey-custom-host", "http://127.0.0.1:9/v1"),
                        ("x-portkey-azure-resource-name", "elsewhere"),
                        ("X-Portkey-Aws-Region", "us-east-1"),
                        ("x-portkey-vertex-project-id", "other")):  # fmt: skip
        with pytest.raises(openai.BadRequestError) as err:
            raw.create(model=OPENAI, messages=user(), extra_headers={name: value})
        assert name.lower() in err.value.response.json()["error"]["message"]
    assert fakes.openai.requests == []
