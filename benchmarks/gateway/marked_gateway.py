"""`python -m runtime.gateway`, with a time mark at the start and end of each stage of a
request; at exit, writes every request's marks to the file named by BENCH_MARKS_OUT (JSON).

    BENCH_MARKS_OUT=marks.json python -m benchmarks.gateway.marked_gateway BUNDLE --port N

For benchmarks/bench_first_byte.py. The wrappers cost ~1 µs a stage: fine for stages that
take tens of microseconds, which is what it looks at.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import os
import runpy
import sys
import time
from typing import Any

from aiohttp import web

import runtime.gateway.app as app
import runtime.gateway.auth as auth
import runtime.gateway.transport as transport
import runtime.routing.router as router

# (object, attribute, stage): in the order a request meets them
STAGES: list[tuple[Any, str, str]] = [
    (app, "serve", "handler"),
    (auth.KeyIndex, "caller", "authenticate"),
    (app, "_body", "read and parse the body"),
    (app, "read_form", "read the request form"),
    (router.Router, "resolve", "resolve"),
    (router.Router, "aadmit", "admit"),
    (transport.Transport, "send", "upstream call, to its headers"),
    (web.StreamResponse, "prepare", "client response headers"),
    (web.StreamResponse, "write", "client write"),
]
_marks: list[tuple[str, float]] = []


def _wrap(owner: Any, attribute: str, stage: str) -> None:
    inner = getattr(owner, attribute)
    clock, marks = time.perf_counter, _marks

    if inspect.iscoroutinefunction(inner):

        @functools.wraps(inner)
        async def marked(*args: Any, **kwargs: Any) -> Any:
            marks.append((stage + ">", clock()))
            try:
                return await inner(*args, **kwargs)
            finally:
                marks.append((stage + "<", clock()))

    else:

        @functools.wraps(inner)
        def marked(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            marks.append((stage + ">", clock()))
            try:
                return inner(*args, **kwargs)
            finally:
                marks.append((stage + "<", clock()))

    setattr(owner, attribute, marked)


def requests() -> list[dict[str, float]]:
    """Per request (requests one at a time): each mark's first time, µs after the handler's start."""
    found: list[dict[str, float]] = []
    start = 0.0
    for name, at in _marks:
        if name == "handler>":
            start = at
            found.append({})
        elif found and name not in found[-1]:
            found[-1][name] = (at - start) * 1e6
    return found


def _dump() -> None:
    out = os.environ.get("BENCH_MARKS_OUT")
    if out:
        with open(out, "w") as handle:
            json.dump(requests(), handle)


def main() -> None:
    for owner, attribute, stage in STAGES:
        _wrap(owner, attribute, stage)
    atexit.register(_dump)
    sys.argv = ["runtime.gateway", *sys.argv[1:]]
    runpy.run_module("runtime.gateway", run_name="__main__")


if __name__ == "__main__":
    main()
