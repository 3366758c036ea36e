"""The examples every `--help` ends with (clig.dev: show, don't tell)."""

from __future__ import annotations


def examples(*commands: str) -> str:
    """An epilog of example command lines, printed after the options, never rewrapped."""
    lines = "\n".join(f"  $ {command}" for command in commands)
    return f"Examples:\n\n\b\n{lines}"


TOP = examples(
    "catalogc validate catalog --strict", "catalogc compile catalog -o catalog.bundle.json"
)
INIT = examples('catalogc init catalog --name "Acme Corp" && catalogc validate catalog')
VALIDATE = examples(
    "catalogc validate catalog", "catalogc validate catalog --format sarif > catalogc.sarif"
)
COMPILE = examples(
    "catalogc compile examples/acme -o acme.bundle.json",
    "catalogc compile catalog -o - | jq .digest",
)
EXPLAIN = examples(
    "catalogc explain catalog -w support -m @openai-prod/gpt-4o",
    "catalogc explain acme.bundle.json -w research --format json",
)
DIFF = examples(
    "catalogc diff old.bundle.json new.bundle.json",
    "catalogc diff --git origin/main.. --format markdown --fail-on-breaking -- catalog",
)
DOCS = examples("catalogc docs catalog -o site && open site/index.html")
SNIPPETS = examples(
    "catalogc snippets @openai-prod/gpt-4o catalog --lang js",
    "catalogc snippets @openai-prod/gpt-4o acme.bundle.json -w support --form config",
)
SERVE = examples(
    "catalogc serve examples/gateway --port 8787",
    "catalogc serve catalog.bundle.json --host 0.0.0.0 --workers 4 --redis redis://localhost:6379/0",
)
SCHEMA = examples("catalogc schema catalog.schema.json", "catalogc schema --write schema/")
IMPORT = examples(
    "catalogc import litellm-config config.yaml -o catalog",
    "catalogc import litellm-prices model_prices_and_context_window.json -o prices",
)
IMPORT_LITELLM_PRICES = examples(
    "catalogc import litellm-prices model_prices_and_context_window.json -o prices"
)
IMPORT_PORTKEY_PRICES = examples("catalogc import portkey-prices portkey/pricing -o prices")
IMPORT_LITELLM_CONFIG = examples(
    "catalogc import litellm-config config.yaml -o catalog && catalogc validate catalog"
)
USAGE = examples(
    "catalogc usage --bundle catalog.bundle.json --redis redis://redis:6379/0",
    "catalogc usage --gateway http://127.0.0.1:8787 --format csv",
)
