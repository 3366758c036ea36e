"""The other endpoints: embeddings, legacy completions, responses (whole and streamed),
the model list a workspace may use, health and readiness, and what a malformed request gets."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from runtime.bundle.errors import RequestError
from runtime.routing.router import Router
from tests.gateway.fakes import Answer, Fakes, Tokens, embedding
from tests.gateway.harness import (
    OTHER_KEY,
    PROMPT,
    TEAM_KEY,
    GatewayProcess,
    expected_cost,
    http,
    openai_client,
    trace_id,
)


@pytest.mark.parametrize("encoding", ["base64", "float"])
def test_embeddings(gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI, bundle: Path,
                    encoding: str) -> None:  # fmt: skip
    """The SDK asks for base64 unless told otherwise; either way the vectors come through."""
    used = Tokens(input=17, output=0)
    fakes.openai.script(Answer(usage=used))
    trace = trace_id()
    extra = {} if encoding == "base64" else {"encoding_format": "float"}
    raw = client.embeddings.with_raw_response.create(
        model="@openai-main/text-embedding-3-small", input=[PROMPT, "second"],
        extra_headers={"x-portkey-trace-id": trace}, **extra,  # type: ignore[arg-type]
    )  # fmt: skip
    reply = raw.parse()
    assert [d.embedding for d in reply.data] == [embedding(json.dumps(PROMPT)),
                                                 embedding(json.dumps("second"))]  # fmt: skip
    (rec,) = fakes.openai.requests
    assert rec.path == "/v1/embeddings" and rec.json["model"] == "text-embedding-3-small"
    assert rec.json["encoding_format"] == encoding
    cost = expected_cost(bundle, "openai-main", "text-embedding-3-small", used)
    assert Decimal(raw.headers["x-catalog-cost-usd"]) == cost
    assert Decimal(gateway.request_line(trace)["cost_usd"]) == cost


def test_completions(fakes: Fakes, client: openai.OpenAI, bundle: Path) -> None:
    used = Tokens(input=5, output=3)
    fakes.backup.script(Answer(usage=used))
    raw = client.completions.with_raw_response.create(model="@backup/backup-instruct",
                                                      prompt="Once upon", max_tokens=10)  # fmt: skip
    assert raw.parse().choices[0].text == "fake backup-instruct says hello"
    (rec,) = fakes.backup.requests
    assert rec.path == "/v1/completions" and rec.json["prompt"] == "Once upon"
    assert Decimal(raw.headers["x-catalog-cost-usd"]) == expected_cost(
        bundle, "backup", "backup-instruct", used)  # fmt: skip


def test_completions_stream(fakes: Fakes, client: openai.OpenAI) -> None:
    chunks = list(client.completions.create(model="@backup/backup-instruct", prompt="Once",
                                            stream=True))  # fmt: skip
    assert "".join(c.choices[0].text for c in chunks if c.choices) == (
        "fake backup-instruct says hello")  # fmt: skip
    assert fakes.backup.requests[0].json["stream"] is True


def test_responses(gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI,
                   bundle: Path) -> None:  # fmt: skip
    used = Tokens(input=30, output=6, cache_read=10)
    fakes.openai.script(Answer(usage=used))
    trace = trace_id()
    raw = client.responses.with_raw_response.create(
        model="@openai-main/gpt-4o-mini", input=PROMPT,
        extra_headers={"x-portkey-trace-id": trace},
    )  # fmt: skip
    assert raw.parse().output_text == "fake gpt-4o-mini says hello"
    (rec,) = fakes.openai.requests
    assert rec.path == "/v1/responses" and rec.json["model"] == "gpt-4o-mini"
    cost = expected_cost(bundle, "openai-main", "gpt-4o-mini", used)
    assert Decimal(raw.headers["x-catalog-cost-usd"]) == cost


def test_responses_stream(gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI,
                          bundle: Path) -> None:  # fmt: skip
    used = Tokens(input=12, output=5)
    fakes.openai.script(Answer(usage=used))
    trace = trace_id()
    with client.responses.stream(model="@openai-main/gpt-4o-mini", input=PROMPT,
                                 extra_headers={"x-portkey-trace-id": trace}) as events:  # fmt: skip
        final = events.get_final_response()
    assert final.output_text == "fake gpt-4o-mini says hello"
    line = gateway.request_line(trace)
    assert line["status"] == 200
    assert Decimal(line["cost_usd"]) == expected_cost(bundle, "openai-main", "gpt-4o-mini", used)


# -- /v1/models -------------------------------------------------------------------------------
def usable(bundle: Path, workspace: str) -> set[str]:
    """Every `@provider/model` of the bundle the router lets `workspace` use."""
    router = Router.load(bundle)
    data = json.loads(bundle.read_text())
    found = set()
    for slug, provider in data["providers"].items():
        for model in provider["models"]:
            try:
                router.resolve(workspace, f"@{slug}/{model}")
            except RequestError:
                continue
            found.add(f"@{slug}/{model}")
    return found


@pytest.mark.parametrize(("key", "workspace"), [(TEAM_KEY, "team"), (OTHER_KEY, "other")])
def test_models_lists_exactly_what_the_workspace_may_use(gateway: GatewayProcess, bundle: Path,
                                                         key: str, workspace: str) -> None:  # fmt: skip
    with openai_client(gateway, key=key) as c:
        listed = [m.id for m in c.models.list()]
    assert len(listed) == len(set(listed))
    assert set(listed) == usable(bundle, workspace)
    if workspace == "other":
        assert set(listed) == {"@backup/backup-chat", "@backup/backup-instruct"}
    else:
        assert "@openai-main/gpt-4o-mini" in listed and "@openai-main/gpt-4.1-mini" not in listed


def test_models_list_shape(gateway: GatewayProcess) -> None:
    status, _, data = http("GET", gateway.v1 + "/models", headers={"x-portkey-api-key": OTHER_KEY})
    assert status == 200
    body = json.loads(data)
    assert body["object"] == "list"
    assert all(m["object"] == "model" and m["id"].startswith("@") for m in body["data"])


def test_a_responses_stream_event_may_be_as_large_as_a_whole_answer(
    gateway: GatewayProcess, fakes: Fakes, client: openai.OpenAI, bundle: Path
) -> None:
    """`response.completed` repeats the whole answer: an image generation's base64 result
    of a few MB cut the stream (4 MiB an event) after the upstream had done, and billed,
    the work, and the request was charged an estimate (a review)."""
    used = Tokens(input=10, output=1000)
    text = "i" * 6_000_000
    fakes.openai.script(Answer(usage=used, text=text))
    trace = trace_id()
    with client.responses.stream(model="@openai-main/gpt-4o-mini", input=PROMPT,
                                 extra_headers={"x-portkey-trace-id": trace}) as events:  # fmt: skip
        final = events.get_final_response()
    assert final.output_text == text
    line = gateway.request_line(trace)
    assert line["status"] == 200 and line["stream"] == "ok"
    assert Decimal(line["cost_usd"]) == expected_cost(bundle, "openai-main", "gpt-4o-mini", used)


def test_each_listed_model_is_retrieved_and_no_other(gateway: GatewayProcess) -> None:
    """`models.retrieve` (the openai and portkey SDKs) answered 404 `unknown_endpoint` for
    an id `models.list` had just given (a review)."""
    with openai_client(gateway, key=TEAM_KEY) as c:
        listed = {m.id: m for m in c.models.list()}
        for ident, listed_model in listed.items():  # the SDK sends `/` as %2F
            assert c.models.retrieve(ident) == listed_model
        for other in ("@backup/backup-chat-x", "@openai-main/gpt-4.1-mini", "../healthz"):
            with pytest.raises(openai.NotFoundError) as caught:
                c.models.retrieve(other)
            assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]
    with openai_client(gateway, key=OTHER_KEY) as c, pytest.raises(openai.NotFoundError):
        c.models.retrieve("@openai-main/gpt-4o-mini")  # another workspace's model
    raw = http("GET", gateway.v1 + "/models/@openai-main/gpt-4o-mini",
               headers={"x-portkey-api-key": TEAM_KEY})  # fmt: skip
    assert raw[0] == 200 and json.loads(raw[2])["id"] == "@openai-main/gpt-4o-mini"
    assert http("GET", gateway.v1 + "/models/@openai-main/gpt-4o-mini")[0] == 401
    assert http("POST", gateway.v1 + "/models/x", {}, {"x-portkey-api-key": TEAM_KEY})[0] == 405
    assert http("GET", gateway.v1 + "/models/", None, {"x-portkey-api-key": TEAM_KEY})[0] == 404


# -- health -------------------------------------------------------------------------------------
def test_health_and_readiness(gateway: GatewayProcess, bundle: Path) -> None:
    status, _, data = http("GET", gateway.origin + "/healthz")
    assert status == 200 and json.loads(data) == {"status": "ok"}
    status, _, data = http("GET", gateway.origin + "/readyz")
    ready = json.loads(data)
    assert status == 200 and ready["status"] == "ready" and ready["store"] == "memory"
    assert ready["digest"] == json.loads(bundle.read_text())["digest"]
    assert gateway.listening["digest"] == ready["digest"]


# -- malformed requests ---------------------------------------------------------------------------
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"model": 5, "messages": []}',
                                  b'{"model": "@backup/backup-chat", "stream": "yes"}'])  # fmt: skip
def test_malformed_bodies_are_400(gateway: GatewayProcess, fakes: Fakes, body: bytes) -> None:
    status, _, data = http("POST", gateway.v1 + "/chat/completions", body,
                           {"x-portkey-api-key": TEAM_KEY})  # fmt: skip
    assert status == 400, data
    assert json.loads(data)["error"]["message"]
    assert not any(f.requests for f in fakes.all())


def test_oversized_body_is_413(gateway: GatewayProcess, fakes: Fakes) -> None:
    body = json.dumps({"model": "@backup/backup-chat",
                       "messages": [{"role": "user", "content": "x" * (17 * 1024 * 1024)}]})  # fmt: skip
    try:
        status, _, _ = http("POST", gateway.v1 + "/chat/completions", body.encode(),
                            {"x-portkey-api-key": TEAM_KEY})  # fmt: skip
    except ConnectionError:  # the server may answer early and close while we still send
        status = 413
    assert status == 413
    assert fakes.backup.requests == []


def test_bad_metadata_header_is_400(client: openai.OpenAI, fakes: Fakes) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="anything", messages=[{"role": "user", "content": PROMPT}],
            extra_headers={"x-portkey-config": "by-region", "x-portkey-metadata": "{nope"},
        )  # fmt: skip
    assert not any(f.requests for f in fakes.all())
