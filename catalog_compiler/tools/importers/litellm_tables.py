"""What LiteLLM's proxy config names mean in the catalog: flat tables of parameter names,
default credential variables and hints for settings that have another home."""

from __future__ import annotations

import re

ENV_PREFIX = "os.environ/"
EPOCH = "2026-01-01"  # day 0 of `<N>d` budget periods, when the import needs one
# litellm_params -> credential field of our service (kept only where the service has it)
CREDENTIAL_PARAMS = {
    "api_key": "api_key",
    "aws_access_key_id": "aws_access_key_id",
    "aws_secret_access_key": "aws_secret_access_key",
    "aws_session_token": "aws_session_token",
    "vertex_credentials": "service_account_json",
    "organization": "organization",
}
# litellm_params -> setting of our service
SETTING_PARAMS = {
    "api_version": "api_version",
    "aws_region_name": "region",
    "vertex_project": "project",
    "vertex_location": "region",
}
# Where LiteLLM reads a credential from when the config gives none.
LITELLM_DEFAULT_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "azure-openai": "AZURE_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "cohere": "COHERE_API_KEY",
    "groq": "GROQ_API_KEY",
    "together": "TOGETHERAI_API_KEY",
    "fireworks": "FIREWORKS_AI_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "xai": "XAI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
    "cerebras": "CEREBRAS_API_KEY",
    "google": "GEMINI_API_KEY",
}
# Request parameters a deployment fixes; they become the provider's `default_params`.
GENERATION_PARAMS = frozenset(
    {
        "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "n",
        "presence_penalty", "frequency_penalty", "reasoning_effort", "logit_bias", "top_k",
    }
)  # fmt: skip
COST_PARAMS = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write",
}
# litellm_params read elsewhere (provider, credentials, settings, limits, prices).
HANDLED_PARAMS = frozenset(
    {
        "model", "api_base", "base_url", "rpm", "tpm", "max_parallel_requests", "max_budget",
        "budget_duration", "weight", "custom_llm_provider", "input_cost_per_request",
        *CREDENTIAL_PARAMS, *SETTING_PARAMS, *GENERATION_PARAMS, *COST_PARAMS,
    }
)  # fmt: skip
MODEL_INFO_USED = frozenset(
    {"id", "mode", "base_model", "max_input_tokens", "max_output_tokens", *COST_PARAMS}
)
AZURE_BASE = re.compile(r"https://([a-z0-9][a-z0-9-]*)\.openai\.azure\.com(/.*)?\Z")
DURATION = re.compile(r"\s*([0-9]+)\s*(s|m|min|h|hr|d|w|mo)\s*\Z")
# Hints for settings that have a home elsewhere in the catalog or none at all.
HINTS = {
    "fallbacks": "write a routing Config with `strategy: {mode: fallback}`",
    "context_window_fallbacks": "write a routing Config with `strategy: {mode: fallback}`",
    "content_policy_fallbacks": "write a routing Config with `strategy: {mode: fallback}`",
    "default_fallbacks": "write a routing Config with `strategy: {mode: fallback}`",
    "num_retries": "routing Configs retry with `retry: {attempts: N}`",
    "max_retries": "routing Configs retry with `retry: {attempts: N}`",
    "request_timeout": "routing Configs take `request_timeout` (milliseconds)",
    "timeout": "routing Configs take `request_timeout` (milliseconds)",
    "routing_strategy": "Configs load-balance by weight only",
    "model_group_alias": "the catalog has no model aliases; use a Config per alias",
    "cache": "routing Configs take `cache: {mode: simple}`",
    "cache_params": "routing Configs take `cache: {mode: simple}`",
    "guardrails": "routing Configs carry Portkey guardrails (`input_guardrails` …)",
    "master_key": "gateway keys are stored as sha256 in a Workspace's `api_keys`",
    "success_callback": "logging callbacks are not part of the catalog",
    "failure_callback": "logging callbacks are not part of the catalog",
    "callbacks": "logging callbacks are not part of the catalog",
}
