"""The one-shard ceiling benchmark (benchmarks/scaling/ceiling.py) sends admissions and
settlements it builds itself from the store's private helpers, so a change to the store can
silently break it (it did once, unnoticed for a whole issue). Against a real redis-server:
its templated commands are admitted and settled as the store's own, and charge the budget
the same."""

from __future__ import annotations

import socket
import uuid

from benchmarks.scaling.ceiling import CHAINS, COST, REFUND, Commands, _read, script_times
from runtime.limits.redis_store import RedisStore
from tests.redis_server import RedisServer


def test_templated_commands_admit_and_settle_like_the_store(redis_server: RedisServer) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    for chain in CHAINS:
        ns = f"ceil-test-{uuid.uuid4().hex[:6]}"
        store = RedisStore(url, namespace=ns, settled_ttl=120)
        spec = chain.spec()
        commands = Commands(store, spec, "ceiltst-")  # 8 + 12 digits: the placeholder's 20
        with socket.create_connection(("127.0.0.1", redis_server.port)) as sock:
            for _ in range(3):
                admit, settle = commands.pair()
                sock.sendall(admit + settle)
                _read(sock, b":0\r\n:1\r\n")  # admitted, then settled: what the load expects
        if spec.budgets:  # three settled requests, each charged its settled cost
            window = store.plan(spec, store._day()).windows[0]
            spent = store.spent(spec.budgets[0].key, window)
            assert spent == 3 * (COST - REFUND)
        store.close()


def test_script_times_run(redis_server: RedisServer) -> None:
    admit_us, settle_us = script_times(f"redis://127.0.0.1:{redis_server.port}/0", CHAINS[-1],
                                       n=20)  # fmt: skip
    assert admit_us > 0 and settle_us > 0
