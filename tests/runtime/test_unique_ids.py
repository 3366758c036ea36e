"""Ids stay unique across a fork: `--workers` forks its workers after the imports, and every
worker handed out the same trace ids (a review: each id four times over four workers), and a
router built before a fork would have handed out the same request ids."""

from __future__ import annotations

import json
import os

from runtime.gateway.forms import new_trace_id
from runtime.routing.unique import Ids


def ids_in_a_child(make: list[tuple[str, Ids]]) -> dict[str, list[str]]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids, then gone without running the parent's cleanup
        try:
            os.write(write, json.dumps({n: [i.next() for _ in range(3)] for n, i in make}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        got = json.loads(pipe.read())
    os.waitpid(pid, 0)
    return got  # type: ignore[no-any-return]


def test_a_forked_child_draws_ids_of_its_own() -> None:
    trace, request = Ids(20, digits=12), Ids(16, separator="-")
    mine = {
        "trace": [trace.next() for _ in range(3)],
        "request": [request.next() for _ in range(3)],
    }
    theirs = ids_in_a_child([("trace", trace), ("request", request)])
    for name in mine:
        assert not set(mine[name]) & set(theirs[name])
        assert len({i[:16] for i in mine[name] + theirs[name]}) == 2  # one prefix each


def test_the_gateway_s_trace_ids_differ_across_a_fork() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, new_trace_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    parent = new_trace_id()
    assert len(child) == len(parent) == 32 and child[:20] != parent[:20]
