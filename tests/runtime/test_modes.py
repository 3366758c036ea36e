"""`Router.resolve(..., endpoint=...)`: the mode rule of runtime/routing/modes.py, for every mode and
endpoint, and where a compiled model's mode comes from."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runtime import ModeMismatch, Router
from runtime.bundle.errors import InvalidRequest
from runtime.routing.modes import ENDPOINT_MODES, ENDPOINT_PATHS, MODES
from tests.runtime.conftest import OPENAI_PROVIDER

CUSTOMS = "\n".join(f"      - {{name: m-{mode}, mode: {mode}}}" for mode in MODES)
FILES = {
    "catalog.yaml": "kind: Organization\nversion: 1\nname: Modes\n",
    "workspaces.yaml": "kind: Workspace\nslug: team\n",
    "providers.yaml": OPENAI_PROVIDER,
    "local.yaml": f"""\
kind: Integration
slug: local
service: openai-compatible
base_url: http://127.0.0.1:9/v1
credentials: {{api_key: {{env: LOCAL_KEY}}}}
models:
  custom:
{CUSTOMS}
      - {{name: plain}}
---
kind: Provider
slug: local
integration: local
---
kind: Model
name: text-embedding-3-large
integration: openai-main
pricing: {{input: "0.2"}}
---
kind: Model
name: ft-embedder
integration: openai-main
base_model: text-embedding-3-small
""",
}


@pytest.fixture
def router(make_router: Callable[..., Router]) -> Router:
    return make_router(FILES)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINT_MODES))
@pytest.mark.parametrize("mode", MODES)
def test_an_endpoint_serves_exactly_its_modes(router: Router, endpoint: str, mode: str) -> None:
    model = f"@local/m-{mode}"
    assert router.resolve("team", model).attempts[0].mode == mode  # no endpoint: no rule
    if mode in ENDPOINT_MODES[endpoint]:
        assert router.resolve("team", model, endpoint=endpoint).attempts[0].mode == mode
        return
    with pytest.raises(ModeMismatch) as caught:
        router.resolve("team", model, endpoint=endpoint)
    err = caught.value
    assert err.status == 400 and err.mode == mode and err.endpoint == ENDPOINT_PATHS[endpoint]
    assert f"`{model}`" in err.message and ENDPOINT_PATHS[endpoint] in err.message
    served = [ENDPOINT_PATHS[e] for e, modes in ENDPOINT_MODES.items() if mode in modes]
    assert all(path in err.message for path in served)
    assert bool(served) != ("no endpoint" in err.message)


def test_a_mode_comes_from_the_declaration_the_base_model_or_the_registry(router: Router) -> None:
    mode = {m: router.resolve("team", m).attempts[0].mode for m in (
        "@openai-prod/ft-embedder", "@local/plain", "@openai-prod/text-embedding-3-large",
        "@openai-prod/gpt-4o",
    )}  # fmt: skip
    assert mode == {
        "@openai-prod/ft-embedder": "embedding",  # its base_model's
        "@local/plain": "chat",  # nothing says otherwise
        "@openai-prod/text-embedding-3-large": "embedding",  # an override keeps the registry's
        "@openai-prod/gpt-4o": "chat",
    }


def test_a_config_with_one_wrong_mode_target_is_refused_whatever_the_order(
    router: Router,
) -> None:
    for order in ((0, 1), (1, 0)):
        names = ("m-chat", "m-embedding")
        config = {"strategy": {"mode": "fallback"}, "targets": [
            {"provider": "@local", "override_params": {"model": names[i]}} for i in order
        ]}  # fmt: skip
        with pytest.raises(ModeMismatch, match="m-embedding"):
            router.resolve("team", config=config, endpoint="chat")
        assert len(router.resolve("team", config=config).attempts) == 2


def test_an_unknown_endpoint_is_a_request_error(router: Router) -> None:
    with pytest.raises(InvalidRequest, match="endpoint"):
        router.resolve("team", "@local/m-chat", endpoint="images")
