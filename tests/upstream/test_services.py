"""The service table: every catalog service has an adapter of its wire format, or a 501."""

from __future__ import annotations

import pytest

from catalog_compiler.services import SERVICES as CATALOG_SERVICES
from runtime.upstream import SERVICES, adapter_for
from runtime.upstream.base import Unsupported

OPENAI_FAMILY = ["openai", "azure-openai", "groq", "together", "fireworks", "deepseek", "mistral",
                 "openrouter", "xai", "perplexity", "cerebras", "ollama", "vllm",
                 "openai-compatible", "mock"]  # fmt: skip


@pytest.mark.parametrize("service", OPENAI_FAMILY)
def test_openai_family(service: str) -> None:
    assert adapter_for(service).family == "openai"


def test_anthropic() -> None:
    assert adapter_for("anthropic").family == "anthropic"


@pytest.mark.parametrize("service", ["bedrock", "vertex-ai", "google", "cohere"])
def test_services_without_an_adapter_are_501(service: str) -> None:
    with pytest.raises(Unsupported) as caught:
        adapter_for(service)
    assert caught.value.status == 501
    assert caught.value.message.startswith(f"service `{service}` has no gateway adapter yet")


@pytest.mark.parametrize("service", ["nope", "", "x" * 10_000, "a\nb"])
def test_unknown_ids_are_501_with_a_short_message(service: str) -> None:
    with pytest.raises(Unsupported) as caught:
        adapter_for(service)
    assert caught.value.status == 501 and len(caught.value.message) < 500
    assert "\n" not in caught.value.message


def test_every_catalog_service_of_a_served_wire_format_has_its_adapter() -> None:
    for service in CATALOG_SERVICES.values():
        if service.api in ("openai", "anthropic"):
            assert adapter_for(service.id).family == service.api, service.id
        else:
            with pytest.raises(Unsupported):
                adapter_for(service.id)
    assert set(SERVICES) - set(CATALOG_SERVICES) <= {"mock"}
