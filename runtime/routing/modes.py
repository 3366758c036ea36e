"""Model modes and the endpoints that serve them: the one rule the gateway and library
users share (`Router.resolve(..., endpoint=...)`).

A model's mode says which API shape it answers (LiteLLM's `mode`): a chat model answers
chat messages, a completion model a bare prompt, an embedding model vectors. The gateway
forwards a request's body unchanged in shape, so an endpoint takes only the modes whose
upstream call accepts that body:
- `chat` (/v1/chat/completions) and `messages` (/v1/messages, translated to chat): chat;
- `completions` (/v1/completions): completion only. OpenAI refuses chat models there
  ("This is a chat model and not supported in the v1/completions endpoint"); a self-hosted
  server that takes both declares its model `mode: completion`;
- `responses` (/v1/responses): chat and responses (OpenAI's Responses API takes both);
- `embeddings` (/v1/embeddings): embedding.
image, audio and rerank models are served by no endpoint of this gateway yet.
"""

from __future__ import annotations

from collections.abc import Mapping

from runtime.bundle.errors import InvalidRequest, ModeMismatch
from runtime.routing.plan import Plan

MODES = ("audio", "chat", "completion", "embedding", "image", "rerank", "responses")

ENDPOINT_MODES: Mapping[str, frozenset[str]] = {
    "chat": frozenset({"chat"}),
    "completions": frozenset({"completion"}),
    "embeddings": frozenset({"embedding"}),
    "responses": frozenset({"chat", "responses"}),
    "messages": frozenset({"chat"}),
}
ENDPOINT_PATHS: Mapping[str, str] = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
    "responses": "/v1/responses",
    "messages": "/v1/messages",
}


def serving(mode: str) -> tuple[str, ...]:
    """The paths of the endpoints that serve `mode`, in a fixed order."""
    return tuple(ENDPOINT_PATHS[e] for e, modes in ENDPOINT_MODES.items() if mode in modes)


def check_plan(plan: Plan, endpoint: str) -> None:
    """Refuse the whole request when any attempt of the plan has a mode `endpoint` does
    not serve: skipping it would hide a misconfigured fallback until the good targets fail,
    and taking it would send the upstream a call it cannot answer. An attempt of unknown
    mode (a raw service in an inline config, which the catalog does not describe) passes."""
    modes = ENDPOINT_MODES.get(endpoint)
    if modes is None:
        raise InvalidRequest("endpoint", f"is one of {', '.join(sorted(ENDPOINT_MODES))}")
    for attempt in plan.attempts:
        if attempt.mode is not None and attempt.mode not in modes:
            raise ModeMismatch(attempt.target, attempt.mode, ENDPOINT_PATHS[endpoint],
                               serving(attempt.mode), attempt.service)  # fmt: skip
