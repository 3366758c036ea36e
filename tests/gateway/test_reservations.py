"""What admission reserves must cover what the upstream may bill, or a budget is overspent
by requests it admitted: every completion a body asks for (`n`, `best_of`, a list of
prompts), and input the body names but does not carry (a stored response, a file or an
image by id or URL), which the upstream reads up to the model's context window."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.bundle.money import Estimate
from runtime.gateway.forms import choices, remote_input
from tests.gateway.fakes import Answer, Fakes, Tokens
from tests.gateway.harness import GatewayProcess, compile_catalog, http, sha256, write_catalog

KEY = "sk-test-FAKE-reservations-0000"


def catalog(upstream: str) -> dict[str, str]:
    return {
        "catalog.yaml": "kind: Organization\nversion: 1\nname: Reservations\n",
        "rest.yaml": f"""\
            kind: Integration
            slug: up
            service: openai-compatible
            base_url: {upstream}
            credentials: {{api_key: {{env: TEST_FAKE_OPENAI_KEY}}}}
            models:
              custom:
                - {{name: chat-t, mode: chat, context_window: 128000, max_output_tokens: 4096,
                    pricing: {{input: "2", output: "8"}}}}
                - {{name: instruct, mode: completion, context_window: 16000,
                    max_output_tokens: 4096, pricing: {{input: "1.5", output: "2"}}}}
            ---
            kind: Provider
            slug: p
            integration: up
            ---
            kind: Workspace
            slug: team
            budgets: [{{limit: 0.003, unit: usd, period: monthly}}]
            api_keys: [{{name: k, sha256: "{sha256(KEY)}"}}]
            """,
    }


@pytest.fixture
def gateway(fakes: Fakes, tmp_path: Path) -> Iterator[GatewayProcess]:
    files = catalog(fakes.openai.url)
    bundle = compile_catalog(write_catalog(tmp_path / "catalog", files), tmp_path / "b.json")
    running = GatewayProcess(bundle, tmp_path / "gw.log").start()
    yield running
    running.stop()


def post(gateway: GatewayProcess, path: str, body: dict[str, Any]) -> int:
    status, _, _ = http("POST", gateway.v1 + path, body, {"authorization": f"Bearer {KEY}"})
    return status


@pytest.mark.parametrize(("path", "body"), [
    ("/chat/completions", {"model": "@p/chat-t", "n": 5, "max_tokens": 100,
                           "messages": [{"role": "user", "content": "hi"}]}),
    ("/completions", {"model": "@p/instruct", "best_of": 5, "max_tokens": 300, "prompt": "hi"}),
    ("/completions", {"model": "@p/instruct", "max_tokens": 300, "prompt": ["a", "b", "c", "d",
                                                                              "e", "f"]}),
    ("/responses", {"model": "@p/chat-t", "previous_response_id": "resp_1", "input": "and?",
                    "max_output_tokens": 10}),
    ("/chat/completions", {"model": "@p/chat-t", "max_tokens": 10, "messages": [
        {"role": "user", "content": [{"type": "image_url",
                                      "image_url": {"url": "https://example.com/a.png"}}]}]}),
])  # fmt: skip
def test_a_request_its_budget_cannot_cover_is_refused_before_the_call(
    gateway: GatewayProcess, fakes: Fakes, path: str, body: dict[str, Any]
) -> None:
    """0.003 USD left. Each of these may be billed more (5 x 100 output tokens at 8 USD per
    million are 0.004); each was reserved as one short completion of a short body, admitted,
    and the upstream's bill spent the budget past its limit."""
    fakes.openai.script(Answer(usage=Tokens(input=20_000, output=500)))
    assert post(gateway, path, body) == 412
    assert fakes.openai.requests == []


def test_what_it_can_cover_is_served(gateway: GatewayProcess, fakes: Fakes) -> None:
    fakes.openai.script(Answer(usage=Tokens(input=5, output=90)))
    body = {"model": "@p/chat-t", "n": 2, "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    assert post(gateway, "/chat/completions", body) == 200


@pytest.mark.parametrize(("body", "endpoint", "want"), [
    ({"n": 3}, "chat", 3), ({"n": 3}, "embeddings", 1), ({"n": "3"}, "chat", 1),
    ({"n": True}, "chat", 1), ({"n": 0}, "chat", 1), ({"n": 2, "best_of": 4}, "completions", 4),
    ({"prompt": ["a", "b"], "n": 3}, "completions", 6), ({"prompt": [1, 2, 3]}, "completions", 1),
    ({"prompt": [[1, 2], [3]]}, "completions", 2), ({"n": 10**12}, "chat", 1),
])  # fmt: skip
def test_choices_a_body_asks_for(body: dict[str, Any], endpoint: str, want: int) -> None:
    assert choices(body, endpoint) == want
    assert Estimate(10, 100, want).usage(None).output_tokens == 100 * want


@pytest.mark.parametrize(("body", "endpoint", "remote"), [
    ({"messages": [{"role": "user", "content": "hi"}]}, "chat", False),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}, "chat", False),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]}, "chat", True),
    ({"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-1"}}]}]}, "chat", True),
    ({"input": "hi"}, "responses", False),
    ({"input": "hi", "conversation": "conv_1"}, "responses", True),
    ({"input": "hi", "prompt": {"id": "pmpt_1"}}, "responses", True),
    ({"input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://x/a.png"}]}]}, "responses", True),
    ({"input": [{"role": "user", "content": [
        {"type": "input_file", "file_id": "file-1"}]}]}, "responses", True),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "responses", True),
    ({"input": [{"role": "user", "content": [
        {"type": "input_text", "text": "https://x/a.png"}]}]}, "responses", False),
    # Anthropic's Messages (a review: these were reserved at their body's bytes)
    ({"messages": [{"role": "user", "content": "https://x/a.pdf"}]}, "messages", False),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]}, "messages", False),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "url", "url": "https://x/a.png"}}]}]}, "messages", True),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {
        "type": "url", "url": "https://x/a.pdf"}}]}]}, "messages", True),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {
        "type": "file", "file_id": "file_1"}}]}]}, "messages", True),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
        "content": [{"type": "image", "source": {"type": "url", "url": "https://x"}}]}]}]},
     "messages", True),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {
        "type": "content", "content": [{"type": "image", "source": {"type": "file",
        "file_id": "f"}}]}}]}]}, "messages", True),
    ({"system": [{"type": "text", "text": "be brief"}], "messages": []}, "messages", False),
])  # fmt: skip
def test_input_a_body_names_but_does_not_carry(body: dict[str, Any], endpoint: str,
                                               remote: bool) -> None:  # fmt: skip
    assert remote_input(body, endpoint) is remote
