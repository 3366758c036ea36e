"""The gateway suite's process harness (tests/gateway/harness.py), started at construction,
with the small vocabulary the operations tests use."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.gateway.harness import GatewayProcess, http


class Gateway(GatewayProcess):
    def __init__(self, bundle: Path, *args: str, env: dict[str, str] | None = None) -> None:
        log = bundle.parent / f"gateway-{time.monotonic_ns()}.log"
        super().__init__(bundle, log, args, env)
        self.start()

    @property
    def url(self) -> str:
        return self.origin

    def text(self) -> str:
        return self.log_text()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [line for line in self.lines() if kind is None or line.get("event") == kind]

    def awaited(self, kind: str, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        """The `kind` lines once there are `count` of them (or all at the timeout): a request's
        line is written after its answer has gone, so it may trail the client's read."""
        deadline = time.monotonic() + timeout
        while len(found := self.events(kind)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return found

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
        raw: bytes | None = None, timeout: float = 10,
    ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        return http(method, self.origin + path, raw if raw is not None else body, headers,
                    timeout)  # fmt: skip

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)
