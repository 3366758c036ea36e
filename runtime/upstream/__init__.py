"""Upstream adapters, one module per API family; SERVICES maps a catalog service to one.

Adding a service of a known family is one row here; a new family is one module (an
Adapter, runtime/upstream/base.py) and its rows.
"""

from __future__ import annotations

from collections.abc import Mapping

from runtime.upstream.anthropic import AnthropicAdapter
from runtime.upstream.base import Adapter, Unsupported
from runtime.upstream.openai import OpenAIAdapter

_OPENAI = OpenAIAdapter()

SERVICES: Mapping[str, Adapter] = {
    "openai": _OPENAI,
    "azure-openai": OpenAIAdapter(azure=True),
    "groq": _OPENAI,
    "together": _OPENAI,
    "fireworks": _OPENAI,
    "deepseek": _OPENAI,
    # Mistral refuses `stream_options` (422) and always reports usage in its last chunk
    "mistral": OpenAIAdapter(stream_options=False),
    "openrouter": _OPENAI,
    "xai": _OPENAI,
    "perplexity": _OPENAI,
    "cerebras": _OPENAI,
    "ollama": _OPENAI,
    "vllm": _OPENAI,
    "openai-compatible": _OPENAI,
    "mock": _OPENAI,  # answered in process by runtime/upstream/mock.py, OpenAI's wire format
    "anthropic": AnthropicAdapter(),
}

# Catalog services that exist but have no adapter yet (their own wire formats).
PLANNED = ("bedrock", "vertex-ai", "google", "cohere")


def adapter_for(service: str) -> Adapter:
    """The adapter of a catalog service; Unsupported (501) for one without an adapter."""
    adapter = SERVICES.get(service)
    if adapter is not None:
        return adapter
    shown = service if len(service) <= 64 and service.isprintable() else "(unprintable id)"
    if service in PLANNED:
        reason = "its API is not OpenAI- or Anthropic-compatible"
    else:
        reason = "it is not a service this gateway knows"
    raise Unsupported(
        f"service `{shown}` has no gateway adapter yet ({reason}); the gateway serves "
        f"{', '.join(sorted(SERVICES))}",
        status=501,
    )
