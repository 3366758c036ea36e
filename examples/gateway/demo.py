"""Call the gateway of the README's quick start with the `openai` SDK, in every request form.

    catalogc serve examples/gateway --port 8787 &
    python3 examples/gateway/demo.py

Everything answers from the in-process mock service: no keys, no network.
"""

from __future__ import annotations

import json
import os
import sys

import openai

BASE_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8787/v1")
KEY = "demo-key-not-secret"  # workspace `demo`; the catalog holds only its sha256


def client(**headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=BASE_URL, api_key=KEY, default_headers=headers, max_retries=0)


def show(form: str, **kwargs: object) -> None:
    headers = kwargs.pop("headers", {})
    raw = client(**headers).chat.completions.with_raw_response.create(
        messages=[{"role": "user", "content": "hello from the quick start"}], **kwargs
    )
    reply = raw.parse()
    print(
        f"{form:<34} -> {reply.choices[0].message.content!r}  "
        f"via {raw.headers.get('x-portkey-provider')}, "
        f"cost ${raw.headers.get('x-catalog-cost-usd')}"
    )


def main() -> int:
    show("model: @provider/model", model="@mock-fast/echo")
    show(
        "x-portkey-provider + bare model",
        model="echo",
        headers={"x-portkey-provider": "@mock-fast"},
    )
    show(
        "x-portkey-config: slug (fallback)",
        model="echo",
        headers={"x-portkey-config": "demo-fallback"},
    )
    inline = json.dumps({"provider": "@mock-fast", "override_params": {"model": "echo-large"}})
    show("x-portkey-config: inline JSON", model="echo", headers={"x-portkey-config": inline})
    show("workspace default_config", model="echo")
    # The demo workspace may make 10 upstream calls a minute (a fallback that tries two
    # providers makes two): keep going until the gateway says 429.
    for n in range(1, 20):
        try:
            client().chat.completions.create(
                model="@mock-fast/echo", messages=[{"role": "user", "content": "again"}]
            )
        except openai.RateLimitError as exc:
            retry = exc.response.headers.get("retry-after")
            message = exc.response.json()["error"]["message"]
            print(f"{n} more calls later: 429 {message} (Retry-After: {retry} s)")
            return 0
    print("no 429 was seen", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
