"""The gateway's parts that need no server: who is calling, which request form, secrets."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime import Bundle, InvalidConfig
from runtime.gateway.auth import KeyIndex, presented_key
from runtime.gateway.forms import max_output, read_form
from runtime.gateway.replies import Failure
from runtime.gateway.secrets import MissingSecrets, load_secrets, read_reference
from tests.runtime.conftest import compile_files

KEY = "ws-key-FAKE-0001"
CATALOG = {
    "catalog.yaml": "kind: Organization\nversion: 1\nname: T\n",
    "i.yaml": """\
kind: Integration
slug: openai-main
service: openai
credentials: {api_key: {env: GW_TEST_FAKE_OPENAI}}
---
kind: Integration
slug: anthropic-main
service: anthropic
credentials: {api_key: {file: SECRET_FILE}}
---
kind: Provider
slug: openai-prod
integration: openai-main
---
kind: Provider
slug: claude
integration: anthropic-main
""",
    "w.yaml": f"""\
kind: Workspace
slug: support
api_keys: [{{name: bot, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}]
""",
}


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    files = dict(CATALOG)
    files["i.yaml"] = files["i.yaml"].replace("SECRET_FILE", str(tmp_path / "anthropic.key"))
    return Bundle.load(compile_files(tmp_path / "cat", files))


def test_a_listed_key_names_its_workspace_in_either_header(bundle: Bundle) -> None:
    keys = KeyIndex(bundle)
    for headers in (
        {"authorization": f"Bearer {KEY}"},
        {"x-portkey-api-key": KEY},
        {"authorization": f"bearer   {KEY} "},
    ):
        caller = keys.caller(headers)
        assert caller is not None and (caller.workspace, caller.key_name) == ("support", "bot")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> KeyIndex:
    keys = KeyIndex(Bundle.load(compile_files(tmp_path_factory.mktemp("keys"), CATALOG)))
    assert len(keys) == 1
    return keys


@given(key=st.text(max_size=600) | st.sampled_from([KEY[:-1], KEY + "1", KEY.upper()]))
def test_no_other_key_is_accepted(index: KeyIndex, key: str) -> None:
    assert index.caller({"x-portkey-api-key": KEY}) is not None
    if key.strip() == KEY:
        return
    assert index.caller({"authorization": f"Bearer {key}"}) is None
    assert index.caller({"x-portkey-api-key": key}) is None


def test_missing_or_malformed_credentials_are_no_caller(bundle: Bundle) -> None:
    keys = KeyIndex(bundle)
    for headers in (
        {},
        {"authorization": KEY},
        {"authorization": f"Basic {KEY}"},
        {"authorization": "Bearer "},
        {"x-portkey-api-key": "x" * 10_000},
    ):
        assert keys.caller(headers) is None
    assert presented_key({"x-portkey-api-key": f" {KEY} "}) == KEY


def test_missing_secrets_fail_start_naming_the_reference_never_a_value(
    bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GW_TEST_FAKE_OPENAI", raising=False)
    with pytest.raises(MissingSecrets) as caught:
        load_secrets(bundle, allow_missing=False)
    text = str(caught.value)
    assert "env:GW_TEST_FAKE_OPENAI (not set)" in text and "anthropic.key" in text
    allowed = load_secrets(bundle, allow_missing=True)
    assert set(allowed.missing) == {"openai-main", "anthropic-main"}
    monkeypatch.setenv("GW_TEST_FAKE_OPENAI", "sk-test-FAKE-0000")
    (tmp_path / "anthropic.key").write_text("sk-ant-test-FAKE\n")
    found = load_secrets(bundle, allow_missing=False)
    assert found.of("openai-main")["api_key"] == "sk-test-FAKE-0000"
    assert found.of("anthropic-main")["api_key"] == "sk-ant-test-FAKE"  # stripped
    assert "FAKE" not in repr(found)


def test_secret_files_are_bounded_and_must_be_text(tmp_path: Path) -> None:
    big, binary, empty = tmp_path / "big", tmp_path / "bin", tmp_path / "empty"
    big.write_bytes(b"a" * 100_000)
    binary.write_bytes(b"\xff\xfe")
    empty.write_text("\n")
    for path, why in (
        (big, "larger"),
        (binary, "UTF-8"),
        (empty, "empty"),
        (tmp_path / "nope", "No such file"),
    ):
        with pytest.raises(LookupError, match=why):
            read_reference(f"file:{path}")
    with pytest.raises(LookupError, match="not an env"):
        read_reference("vault:x")


def test_a_secret_file_that_is_no_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO held start-up (or, on reload, the whole gateway) until someone wrote to it."""
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path, Path("/dev/zero")):
        started = time.monotonic()
        with pytest.raises(LookupError, match=r"not a regular file|Is a directory"):
            read_reference(f"file:{path}")
        assert time.monotonic() - started < 5


def test_a_credential_no_header_can_carry_is_missing_named(
    bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key with a line break inside was read, then dropped unsent at every request."""
    monkeypatch.setenv("GW_TEST_FAKE_OPENAI", "sk-test-FAKE\n-0000")
    (tmp_path / "anthropic.key").write_text("sk-ant-test-FAKE\n")  # a trailing one is fine
    with pytest.raises(MissingSecrets, match=r"env:GW_TEST_FAKE_OPENAI \(holds a line break"):
        load_secrets(bundle, allow_missing=False)
    allowed = load_secrets(bundle, allow_missing=True)
    assert set(allowed.missing) == {"openai-main"} and "FAKE" not in repr(allowed)


def test_request_forms_read_from_headers() -> None:
    form = read_form(
        {"x-portkey-provider": "@openai-prod", "x-portkey-trace-id": "t-1"}, {"model": "gpt-4o"}
    )
    assert (form.model, form.provider, form.config, form.trace_id) == (
        "gpt-4o",
        "@openai-prod",
        None,
        "t-1",
    )
    assert read_form({"x-portkey-virtual-key": "openai-prod"}, {}).provider == "openai-prod"
    for legacy in ("openai-prod", "@openai-prod", " @openai-prod"):  # one provider, either way
        both = {"x-portkey-provider": "@openai-prod", "x-portkey-virtual-key": legacy}
        assert read_form(both, {}).provider == "@openai-prod"
    assert read_form({"x-portkey-config": "support-bot"}, {}).config == "support-bot"
    inline = read_form({"x-portkey-config": '{"provider": "@openai-prod"}'}, {}).config
    assert inline == {"provider": "@openai-prod"}
    meta = read_form({"x-portkey-metadata": '{"tier": "gold"}'}, {}).metadata
    assert meta == {"tier": "gold"}
    assert len(read_form({}, {}).trace_id) == 32  # generated


@pytest.mark.parametrize("headers, body, match", [
    ({"x-portkey-provider": "@a", "x-portkey-virtual-key": "b"}, {}, "different providers"),
    ({"x-portkey-provider": " "}, {}, "empty provider"),
    ({"x-portkey-metadata": "[1]"}, {}, "not a JSON object"),
    ({"x-portkey-metadata": "{" * 10_000}, {}, "longer than"),
    ({"x-portkey-metadata": "[" * 5_000}, {}, "not a JSON object"),
    ({"x-portkey-trace-id": "a b"}, {}, "trace-id"),
    ({}, {"model": 3}, "must be a string"),
])  # fmt: skip
def test_malformed_request_forms_are_400(
    headers: dict[str, str], body: dict[str, object], match: str
) -> None:
    with pytest.raises(Failure, match=match) as caught:
        read_form(headers, body)
    assert caught.value.status == 400


def test_a_bad_inline_config_is_an_invalid_config() -> None:
    for text in ('{"provider": ', '{"a": 1, "a": 2}', "   ", '{"x": NaN}'):
        with pytest.raises(InvalidConfig):
            read_form({"x-portkey-config": text}, {})


def test_max_output_is_checked() -> None:
    assert max_output({"max_tokens": 5}, "chat") == 5
    assert max_output({"max_completion_tokens": 7, "max_tokens": 5}, "chat") == 7
    assert max_output({}, "chat") is None
    assert max_output({"max_tokens": 5}, "embeddings") == 0
    # each endpoint's own field only: a `max_tokens` on /v1/responses caps nothing there
    assert max_output({"max_tokens": 1}, "responses") is None
    assert max_output({"max_output_tokens": 9, "max_tokens": 1}, "responses") == 9
    assert max_output({"max_output_tokens": 9}, "chat") is None
    assert max_output({"max_tokens": 4, "max_completion_tokens": 8}, "completions") == 4
    for bad in (-1, 1.5, True, "3", 10**12):
        with pytest.raises(Failure):
            max_output({"max_tokens": bad}, "chat")


def test_the_relay_lets_the_loop_go_within_a_huge_chunk() -> None:
    """aiohttp hands over what one read decompressed, whole (64 KiB of gzip can be 64 MiB),
    and all of it is there: the relay translated it without letting the loop turn once,
    so every other request waited. Now it lets go every SLICE bytes."""
    import asyncio
    from collections.abc import AsyncIterator

    from runtime.gateway.relay import SLICE, Counted, relay
    from runtime.upstream.base import Call
    from runtime.upstream.openai import OpenAIStream

    huge = b"\n" * (16 * SLICE) + b"data: [DONE]\n\n"
    sent: list[bytes] = []

    class Upstream:
        status = 200

        async def _chunks(self) -> AsyncIterator[bytes]:
            yield huge

        def chunks(self) -> AsyncIterator[bytes]:
            return self._chunks()

        def close(self) -> None:
            pass

    async def write(data: bytes) -> None:
        sent.append(data)

    async def run() -> tuple[str, int]:
        turns = 0

        async def tick() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0)
                turns += 1

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        call = Call(endpoint="chat", body={}, stream=True, base_url="http://x")
        ended = await relay(Upstream(), OpenAIStream(call), Counted(write), 5.0)  # type: ignore[arg-type]
        ticker.cancel()
        return ended, turns

    ended, turns = asyncio.run(run())
    assert ended == "ok" and b"".join(sent) == b"data: [DONE]\n\n"
    assert turns >= 10  # the others ran between the slices


def test_store_trouble_is_said_once_a_second_counting_what_it_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runtime.bundle.errors import StoreUnavailable
    from runtime.gateway import replies

    lines: list[dict[str, object]] = []
    monkeypatch.setattr(replies, "log", lambda event, **fields: lines.append(fields))
    clock = iter([100.0, 100.2, 100.9, 101.1, 101.5, 103.0])
    monkeypatch.setattr(replies.time, "monotonic", lambda: next(clock))
    trouble = replies._Trouble(every=1.0)
    for n in range(6):
        trouble.said(StoreUnavailable(f"the limits store at redis://***@h/0 is full ({n})"))
    assert [(line["cause"][-3:], line["held_back"]) for line in lines] == [  # type: ignore[index]
        ("(0)", 0),
        ("(3)", 2),
        ("(5)", 1),
    ]
