"""The client's answer goes out before the gateway writes its books (access-log line,
metrics, usage event): a slow book-keeping step must not be in the client's wait, and
the books are still written, once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from runtime.gateway.books import Record
from tests.gateway.fakes import Answer, Fakes
from tests.gateway.harness import PROMPT, TEAM_KEY
from tests.gateway.in_process import InProcess

SLOW_BOOKS = 0.5  # seconds the books take here, blocking the loop


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    statuses: list[int] = []
    original = Record.write

    def slow(record: Record, status: int) -> None:
        time.sleep(SLOW_BOOKS)
        statuses.append(status)
        original(record, status)

    monkeypatch.setattr(Record, "write", slow)
    yield statuses


@pytest.mark.parametrize("upstream", [200, 503])
def test_the_answer_does_not_wait_for_the_books(
    in_process: InProcess, fakes: Fakes, written: list[int], upstream: int
) -> None:
    fakes.openai.script(Answer() if upstream == 200 else Answer.error(upstream))
    body = json.dumps({"model": "@openai-main/gpt-4o-mini",
                       "messages": [{"role": "user", "content": PROMPT}]}).encode()  # fmt: skip
    started = time.monotonic()
    status = in_process.post("/v1/chat/completions", body,
                             {"Authorization": f"Bearer {TEAM_KEY}"})  # fmt: skip
    waited = time.monotonic() - started
    assert status == upstream
    assert waited < SLOW_BOOKS, f"the answer took {waited:.3f} s: it waited for the books"
    deadline = time.monotonic() + 5
    while not written and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written == [upstream]
