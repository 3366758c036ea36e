"""A request is judged and priced by one bundle: a key revoked by a reload while the
request's body was still arriving is refused (it was served under the new bundle, by a key
that bundle does not know), and a usage event names the bundle that priced the request,
not the one serving when the event was written (review, 2026-12-03)."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import threading
import time
from pathlib import Path

from tests.runtime.conftest import compile_files
from tests.runtime.gateway_proc import Gateway
from tests.runtime.test_gateway_server import AUTH, CREDENTIAL, KEY, _wait, catalog, chat

OTHER = "gw-ops-key-FAKE-0002"


def _rekeyed() -> dict[str, str]:
    """The same catalog, with the workspace's key replaced by another."""
    files = catalog()
    files["w.yaml"] = files["w.yaml"].replace(hashlib.sha256(KEY.encode()).hexdigest(),
                                              hashlib.sha256(OTHER.encode()).hexdigest())  # fmt: skip
    return files


def _reload(gw: Gateway, bundle: Path, data: bytes) -> None:
    seen = len(gw.events("reloaded"))
    staged = bundle.with_suffix(".staged")
    staged.write_bytes(data)
    staged.replace(bundle)
    gw.signal(signal.SIGHUP)
    _wait(lambda: len(gw.events("reloaded")) > seen)


def test_a_key_revoked_while_its_body_arrives_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    bundle.write_bytes(compile_files(tmp_path / "cat", catalog()))
    gw = Gateway(bundle, env={"GW_OPS_FAKE_KEY": CREDENTIAL})
    try:
        body = json.dumps(chat()).encode()
        host, port = gw.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: "
                          f"Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: "
                          f"{len(body)}\r\n\r\n").encode() + body[:5])  # fmt: skip
            time.sleep(0.3)  # authenticated, reading its body
            _reload(gw, bundle, compile_files(tmp_path / "cat2", _rekeyed()))
            sock.sendall(body[5:])
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert gw.request("POST", "/v1/chat/completions", chat(),
                          {"authorization": f"Bearer {OTHER}"})[0] == 200  # fmt: skip
    finally:
        gw.stop()


def test_a_usage_event_names_the_bundle_that_priced_it(tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    bundle.write_bytes(compile_files(tmp_path / "cat", catalog()))
    events = tmp_path / "events.jsonl"
    gw = Gateway(bundle, "--events", str(events), env={"GW_OPS_FAKE_KEY": CREDENTIAL})
    try:
        first = json.loads(gw.request("GET", "/readyz")[2])["digest"]
        streamed: list[int] = []

        def stream() -> None:
            headers = {**AUTH, "x-mock-chunk-ms": "300", "x-portkey-trace-id": "across"}
            streamed.append(gw.request("POST", "/v1/chat/completions", chat(stream=True),
                                       headers, timeout=20)[0])  # fmt: skip

        t = threading.Thread(target=stream)
        t.start()
        time.sleep(0.5)  # the stream has begun, priced by the first bundle
        _reload(gw, bundle, compile_files(tmp_path / "cat2", catalog(extra_model=", echo-large")))
        t.join(20)
        assert streamed == [200]
        second = json.loads(gw.request("GET", "/readyz")[2])["digest"]
        assert second != first
        _wait(lambda: events.exists() and "across" in events.read_text())
        event = next(e for e in map(json.loads, events.read_text().splitlines())
                     if e["trace_id"] == "across")  # fmt: skip
        assert event["bundle"] == first
    finally:
        gw.stop()
