"""A real redis-server for tests: started on a free loopback port with persistence off,
stopped afterwards. Missing binary: skip locally, fail when CATALOG_REQUIRE_REDIS=1 (CI).
`make_redis(*args)` starts one with extra server arguments (an eviction policy, renamed
commands, an append-only file that survives a kill)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process that a test may kill and start again on the same port."""

    def __init__(self, binary: str, workdir: Path, args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.workdir = workdir
        self.args = args
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--loglevel", "warning",
             *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CATALOG_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is required (CATALOG_REQUIRE_REDIS=1) but not installed")
        pytest.skip("redis-server not installed (Debian package redis-server)")
    return binary


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = redis_binary()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(binary, Path(tmp))
        server.start()
        yield server
        server.kill()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server this test alone may kill and restart."""
    binary = redis_binary()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(binary, Path(tmp))
        server.start()
        yield server
        server.kill()


# An append-only file synced on every write: a killed server comes back with its data.
PERSISTENT = ("--appendonly", "yes", "--appendfsync", "always")


@pytest.fixture
def make_redis() -> Iterator[Callable[..., RedisServer]]:
    """Start servers with extra arguments; all are stopped after the test."""
    binary = redis_binary()
    servers: list[RedisServer] = []
    with tempfile.TemporaryDirectory() as tmp:

        def make(*args: str) -> RedisServer:
            workdir = Path(tmp) / str(len(servers))
            workdir.mkdir()
            server = RedisServer(binary, workdir, args)
            servers.append(server)
            server.start()
            return server

        yield make
        for server in servers:
            server.kill()
