"""The upstream services an Integration can use: wire format, auth, credential fields.

`base_url` may hold `{setting}` placeholders filled from the integration's `settings`.
A service without a default `base_url` is self-hosted: the integration must give one.
Settings are text; `whole_settings` are those whose text must be a whole number in a range.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WholeSetting:
    """A setting written as the text of a whole number in `lo..hi` (settings are text)."""

    name: str
    lo: int
    hi: int
    unit: str
    example: str


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    title: str
    api: str  # wire format: openai | anthropic | google | bedrock | cohere
    # bearer | x-api-key | api-key | x-goog-api-key | aws-sigv4 | google-service-account | none
    auth: str
    base_url: str | None
    credentials: tuple[str, ...] = ("api_key",)  # required
    optional_credentials: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()  # required
    optional_settings: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other spellings users bring from Portkey or LiteLLM
    whole_settings: tuple[WholeSetting, ...] = ()  # settings whose text is a whole number


_OPENAI_LIKE = "openai"
MOCK_BASE_URL = "http://mock.invalid/v1"
MOCK_MAX_DELAY_MS = 60_000  # the mock's own bound (runtime/upstream/mock.py): a minute
# The mock's controls: the delay before answering and between stream chunks, the error
# status to answer (with an OpenAI error body), the `Retry-After` sent with it, and the
# number of stream chunks after which the stream is cut. Each range lies within what the
# mock accepts at run time (a test holds them together), so a bundle that compiles never
# has the mock refuse its own settings; `status` is narrower: only an error makes sense.
MOCK_SETTINGS = (
    WholeSetting("latency_ms", 0, MOCK_MAX_DELAY_MS, "milliseconds", "250"),
    WholeSetting("chunk_ms", 0, MOCK_MAX_DELAY_MS, "milliseconds", "20"),
    WholeSetting("status", 400, 599, "an HTTP error status", "503"),
    WholeSetting("retry_after", 0, 86_400, "seconds", "2"),
    WholeSetting("cut_after", 0, 1_000_000, "stream chunks", "3"),
)

SERVICES: dict[str, Service] = {
    s.id: s
    for s in [
        Service("openai", "OpenAI", _OPENAI_LIKE, "bearer", "https://api.openai.com/v1",
                optional_credentials=("organization", "project"), aliases=("open-ai",)),
        Service("anthropic", "Anthropic", "anthropic", "x-api-key", "https://api.anthropic.com/v1"),
        Service("azure-openai", "Azure OpenAI", _OPENAI_LIKE, "api-key",
                "https://{resource_name}.openai.azure.com/openai",
                settings=("resource_name",), optional_settings=("api_version",),
                aliases=("azure", "azure-ai")),
        Service("bedrock", "AWS Bedrock", "bedrock", "aws-sigv4",
                "https://bedrock-runtime.{region}.amazonaws.com",
                credentials=("aws_access_key_id", "aws_secret_access_key"),
                optional_credentials=("aws_session_token",), settings=("region",),
                aliases=("aws-bedrock", "amazon-bedrock")),
        Service("vertex-ai", "Google Vertex AI", "google", "google-service-account",
                "https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/{region}",
                credentials=("service_account_json",), settings=("project", "region"),
                aliases=("vertex", "vertex_ai", "google-vertex")),
        Service("google", "Google AI Studio (Gemini API)", "google", "x-goog-api-key",
                "https://generativelanguage.googleapis.com/v1beta", aliases=("gemini",)),
        Service("mistral", "Mistral AI", _OPENAI_LIKE, "bearer", "https://api.mistral.ai/v1",
                aliases=("mistral-ai",)),
        Service("cohere", "Cohere", "cohere", "bearer", "https://api.cohere.com/v2"),
        Service("groq", "Groq", _OPENAI_LIKE, "bearer", "https://api.groq.com/openai/v1"),
        Service("together", "Together AI", _OPENAI_LIKE, "bearer", "https://api.together.xyz/v1",
                aliases=("together-ai", "together_ai")),
        Service("fireworks", "Fireworks AI", _OPENAI_LIKE, "bearer",
                "https://api.fireworks.ai/inference/v1", aliases=("fireworks-ai", "fireworks_ai")),
        Service("deepseek", "DeepSeek", _OPENAI_LIKE, "bearer", "https://api.deepseek.com/v1"),
        Service("openrouter", "OpenRouter", _OPENAI_LIKE, "bearer", "https://openrouter.ai/api/v1"),
        Service("xai", "xAI", _OPENAI_LIKE, "bearer", "https://api.x.ai/v1",
                aliases=("x-ai", "grok")),
        Service("perplexity", "Perplexity", _OPENAI_LIKE, "bearer", "https://api.perplexity.ai",
                aliases=("perplexity-ai",)),
        Service("cerebras", "Cerebras", _OPENAI_LIKE, "bearer", "https://api.cerebras.ai/v1"),
        Service("ollama", "Ollama (self-hosted)", _OPENAI_LIKE, "none", "http://localhost:11434/v1",
                credentials=(), optional_credentials=("api_key",)),
        Service("vllm", "vLLM (self-hosted)", _OPENAI_LIKE, "bearer", None,
                credentials=(), optional_credentials=("api_key",)),
        Service("openai-compatible", "Any OpenAI-compatible server", _OPENAI_LIKE, "bearer", None,
                credentials=(), optional_credentials=("api_key",),
                aliases=("openai_compatible", "custom", "openai-like")),
        # Answered in-process by the gateway (runtime/upstream): `.invalid` never resolves
        # (RFC 6761), so a request that reached the network by mistake fails, never leaks.
        Service("mock", "Mock (in-process, deterministic; for demos, tests, benchmarks)",
                _OPENAI_LIKE, "none", MOCK_BASE_URL, credentials=(),
                optional_settings=tuple(w.name for w in MOCK_SETTINGS),
                whole_settings=MOCK_SETTINGS),
    ]
}  # fmt: skip

ALIASES: dict[str, str] = {alias: s.id for s in SERVICES.values() for alias in s.aliases}


def base_url_for(service: Service, settings: dict[str, str], override: str | None) -> str | None:
    """The upstream base URL: an explicit override, or the service's template filled in."""
    if override:
        return override
    if service.base_url is None:
        return None
    url = service.base_url
    for key, value in settings.items():
        url = url.replace("{" + key + "}", value)
    return url
