"""`catalogc init`: a small, commented catalog that validates and compiles clean."""

from __future__ import annotations

import json
from pathlib import Path

from catalog_compiler.load.fsutil import write_atomic

SCHEMA_DIR = ".catalogc"  # hidden: never read as catalog files
HEADER = "# yaml-language-server: $schema={schema}\n"

FILES: dict[str, str] = {
    "catalog.yaml": """\
# The root of the catalog. Every *.yaml below this directory is part of it; hidden files
# and directories, and anything listed in .catalogignore, are not.
kind: Organization
version: 1                  # the catalog language version
name: {name}
currency: USD
epoch: "2026-01-01"         # day 0 of `<N>d` budget periods (UTC)
# Limits declared here are pools shared by all traffic of the organization.
budgets:
  - {{limit: 1000, unit: usd, period: monthly, alert_threshold: 0.8}}
rate_limits:
  - {{limit: 600, unit: requests, per: minute}}
# Each workspace gets its own pool with these values unless it declares its own.
workspace_defaults:
  budgets:
    - {{limit: 200, unit: usd, period: monthly}}
""",
    "integrations/openai.yaml": """\
# An integration stores the credentials of one upstream service, once.
kind: Integration
slug: openai-main
service: openai             # openai, anthropic, azure-openai, bedrock, vertex-ai, ...
credentials:
  # Always a reference: {{env: NAME}} or {{file: PATH}}. A literal key is an error.
  api_key: {{env: OPENAI_API_KEY}}
models:
  # Narrow what this integration exposes; `*` is the only wildcard.
  allow: ["gpt-4o", "gpt-4o-mini"]
""",
    "providers/openai.yaml": """\
# A provider is what clients name: "@openai-prod/gpt-4o". Its slug is public: never rename it.
kind: Provider
slug: openai-prod
integration: openai-main
budgets:
  - {{limit: 500, unit: usd, period: monthly}}
""",
    "workspaces/default.yaml": """\
# A workspace is a team: which providers and models it may use, and its own limits.
kind: Workspace
slug: default
name: Default team
providers: ["@openai-prod"]
rate_limits:
  - {{limit: 60, unit: requests, per: minute}}
""",
    "configs/fallback.yaml": """\
# A routing config (Portkey-compatible): try gpt-4o, fall back to gpt-4o-mini on 429/5xx.
kind: Config
slug: default-fallback
workspaces: [default]
config:
  strategy:
    mode: fallback
    on_status_codes: [429, 500, 502, 503, 504]
  targets:
    - provider: "@openai-prod"
      override_params: {{model: gpt-4o}}
    - provider: "@openai-prod"
      override_params: {{model: gpt-4o-mini}}
""",
    ".gitignore": "*.bundle.json\n",
}


class ScaffoldError(Exception):
    pass


def scaffold(root: Path, name: str, force: bool = False) -> list[Path]:
    """Write the starter catalog into `root`; refuses to overwrite unless `force`."""
    from catalog_compiler.emit.schemas import render

    targets = [root / rel for rel in FILES]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:3])
        raise ScaffoldError(f"refusing to overwrite {shown} (use --force)")
    written = []
    schema = root / SCHEMA_DIR / "catalog.schema.json"
    schema.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(schema, render("catalog.schema.json").encode())
    written.append(schema)
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # Quoted: a name is text whatever YAML would make of it raw (`R&D: Platform` a
        # mapping, `Acme #1` cut at the comment, `null` no name); escaped when unprintable.
        body = text.format(name=json.dumps(name, ensure_ascii=not name.isprintable()))
        if rel.endswith(".yaml"):
            depth = rel.count("/")
            body = HEADER.format(schema="../" * depth + f"{SCHEMA_DIR}/catalog.schema.json") + body
        write_atomic(path, body.encode())
        written.append(path)
    return written
