"""With `--allow-missing-secrets`, a credential that cannot be read at a reload is said as at
start: a `credentials_missing` line, and `/readyz` lists what is missing (names of
integrations, providers and references, never a value). It was only `reloaded`, and 503s."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.runtime.conftest import compile_files
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import AUTH, CREDENTIAL, _wait, catalog, chat


def test_a_credential_lost_at_a_reload_is_logged_and_shown_by_readyz(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(CREDENTIAL)
    files = catalog()
    files["i.yaml"] = files["i.yaml"].replace("{env: GW_OPS_FAKE_KEY}", f"{{file: {secret}}}")
    path = tmp_path / "b.json"
    path.write_bytes(compile_files(tmp_path / "cat", files))
    gw = Gateway(path, "--allow-missing-secrets")
    try:
        assert not gw.events("credentials_missing")
        assert "credentials_missing" not in json.loads(gw.request("GET", "/readyz")[2])
        secret.unlink()
        gw.signal(signal.SIGHUP)
        _wait(lambda: gw.events("reloaded") and gw.events("credentials_missing"))
        (line,) = gw.events("credentials_missing")
        assert line["integration"] == "openai-main" and line["reference"] == f"file:{secret}"
        assert line["providers"] == ["openai-prod"]
        status, _, body = gw.request("GET", "/readyz")
        ready = json.loads(body)
        assert status == 200 and ready["status"] == "ready"
        assert ready["credentials_missing"] == [
            {
                "integration": "openai-main",
                "reference": f"file:{secret}",
                "providers": ["openai-prod"],
            }
        ]
        status, _, body = gw.request(
            "POST", "/v1/chat/completions", chat("@openai-prod/local-model"), AUTH
        )
        assert status == 503 and b"credentials_unavailable" in body
        secret.write_text(CREDENTIAL)  # back: the next reload lists nothing
        gw.signal(signal.SIGHUP)
        _wait(lambda: len(gw.events("reloaded")) == 2)
        assert "credentials_missing" not in json.loads(gw.request("GET", "/readyz")[2])
        assert len(gw.events("credentials_missing")) == 1
    finally:
        gw.stop()
    assert CREDENTIAL not in gw.text()
