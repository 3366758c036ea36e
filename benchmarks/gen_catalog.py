"""Generate a synthetic, valid catalog of N documents (one per file), deterministically.

    python benchmarks/gen_catalog.py --docs 5000 --out /tmp/cat5000

Shape (per N): ~2% integrations, 20% providers, 25% workspaces, 20% models, the rest
routing configs; every reference resolves, so the catalog validates and compiles clean.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

SERVICES = [
    ("openai", "api_key", ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o4-mini"]),
    ("anthropic", "api_key", ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]),
    ("mistral", "api_key", ["mistral-large-latest", "mistral-small-latest"]),
    ("groq", "api_key", ["llama-3.3-70b-versatile"]),
]

ORG = """\
kind: Organization
version: 1
name: Synthetic Org {n}
epoch: "2026-01-01"
budgets:
  - {{limit: 1000000, unit: usd, period: monthly, alert_threshold: 0.8}}
rate_limits:
  - {{limit: 100000, unit: requests, per: minute}}
workspace_defaults:
  budgets:
    - {{limit: 500, unit: usd, period: monthly}}
"""

INTEGRATION = """\
kind: Integration
slug: int-{i}
name: Integration {i}
service: {service}
credentials:
  {cred}: {{env: INT_{i}_KEY}}
budgets:
  - {{limit: {budget}, unit: usd, period: monthly}}
rate_limits:
  - {{limit: 5000, unit: requests, per: minute}}
  - {{limit: 2000000, unit: tokens, per: minute}}
provider_defaults:
  rate_limits:
    - {{limit: 1000, unit: requests, per: minute}}
"""

PROVIDER = """\
kind: Provider
slug: prov-{i}
integration: int-{integ}
description: "Provider {i} for team traffic"
budgets:
  - {{limit: {budget}, unit: usd, period: monthly, alert_threshold: 0.9}}
  - {{limit: 50000000, unit: tokens, period: daily}}
rate_limits:
  - {{limit: 600, unit: requests, per: minute, burst: 100}}
models:
  allow: [{allow}]
"""

WORKSPACE = """\
kind: Workspace
slug: ws-{i}
name: Workspace {i}
providers: [{providers}]
budgets:
  - {{limit: {budget}, unit: usd, period: monthly}}
rate_limits:
  - {{limit: 120, unit: requests, per: minute}}
concurrency: 20
models:
  deny: ["*-preview"]
"""

MODEL = """\
kind: Model
name: ft:{base}:synthetic:m{i}
integration: int-{integ}
base_model: {base}
context_window: 128000
max_output_tokens: 16384
pricing:
  input: "{inp}"
  output: "{out}"
"""

CONFIG = """\
kind: Config
slug: cfg-{i}
workspaces: [{workspaces}]
config:
  strategy:
    mode: fallback
    on_status_codes: [429, 500, 503]
  retry: {{attempts: 2, on_status_codes: [429]}}
  request_timeout: 30000
  targets:
    - provider: "@prov-{p1}"
      override_params: {{model: {m1}, max_tokens: 1024}}
    - provider: "@prov-{p2}"
      override_params: {{model: {m2}}}
"""


def generate(n: int, out: Path, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    for sub in ("integrations", "providers", "workspaces", "models", "configs"):
        (out / sub).mkdir(parents=True)
    n_int = max(4, n // 50)
    n_prov = max(4, n // 5)
    n_ws = max(2, n // 4)
    n_model = n // 5
    n_cfg = max(1, n - 1 - n_int - n_prov - n_ws - n_model)
    (out / "catalog.yaml").write_text(ORG.format(n=n))
    service_of = [SERVICES[i % len(SERVICES)] for i in range(n_int)]
    for i, (service, cred, _models) in enumerate(service_of):
        text = INTEGRATION.format(i=i, service=service, cred=cred, budget=50000 + i)
        (out / "integrations" / f"int-{i}.yaml").write_text(text)
    prov_integ = [i % n_int for i in range(n_prov)]
    for i in range(n_prov):
        models = service_of[prov_integ[i]][2]
        allow = ", ".join(f'"{m}*"' for m in models)
        text = PROVIDER.format(i=i, integ=prov_integ[i], budget=5000 + i % 100, allow=allow)
        (out / "providers" / f"prov-{i}.yaml").write_text(text)
    ws_providers = []
    for i in range(n_ws):
        chosen = sorted(rng.sample(range(n_prov), 3))
        ws_providers.append(chosen)
        providers = ", ".join(f'"@prov-{p}"' for p in chosen)
        text = WORKSPACE.format(i=i, providers=providers, budget=100 + i % 400)
        (out / "workspaces" / f"ws-{i}.yaml").write_text(text)
    openai_integs = [i for i in range(n_int) if service_of[i][0] == "openai"]
    for i in range(n_model):
        integ = openai_integs[i % len(openai_integs)]
        base = ["gpt-4o-mini", "gpt-4.1-mini"][i % 2]
        text = MODEL.format(i=i, integ=integ, base=base, inp="0.30", out="1.20")
        (out / "models" / f"m-{i}.yaml").write_text(text)
    for i in range(n_cfg):
        ws = rng.randrange(n_ws)
        p1, p2 = ws_providers[ws][0], ws_providers[ws][1]
        m1 = service_of[prov_integ[p1]][2][0]
        m2 = service_of[prov_integ[p2]][2][0]
        text = CONFIG.format(i=i, workspaces=f"ws-{ws}", p1=p1, p2=p2, m1=m1, m2=m2)
        (out / "configs" / f"cfg-{i}.yaml").write_text(text)
    return {
        "documents": 1 + n_int + n_prov + n_ws + n_model + n_cfg,
        "integrations": n_int,
        "providers": n_prov,
        "workspaces": n_ws,
        "models": n_model,
        "configs": n_cfg,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(generate(args.docs, args.out, args.seed))


if __name__ == "__main__":
    main()
