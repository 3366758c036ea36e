"""One client floods the gateway with connections it does not use; how many of another
client's requests are served meanwhile?

    python -m benchmarks.bench_connection_flood [--max-connections 64] [--requests 200]
        [--mode idle|unread|trickle]

The gateway (memory store, the in-process mock, `--max-connections` small so the flood
reaches it at once) is started; a flooding thread opens connections as fast as it can and
keeps up to 500 open (closing the oldest half when it has 500). On each it sends, by
`--mode`: nothing (idle); a request without a key announcing a 1 MB body it never sends
(unread: answered 401 at once, then aiohttp waits up to 10 s for the body); or a request
with the workspace's key and the first byte of its body (trickle). Meanwhile a caller sends
`--requests` chat requests one after another, each on a new connection, as a client whose
keep-alive connection was closed would. Prints the caller's answers by status (or the error
its socket raised) and how many connections the flood opened.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import socket
import tempfile
import threading
from pathlib import Path

from benchmarks.bench_body_memory import KEY, compile_bundle
from benchmarks.gateway.procs import Server, free_port
from benchmarks.gateway.rows import PY, _env

HOLD = 500  # connections the flood keeps open at most


def opening(mode: str) -> bytes:
    """What the flood sends on each connection."""
    if mode == "idle":
        return b""
    auth = f"Authorization: Bearer {KEY}\r\n" if mode == "trickle" else ""
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n{auth}Content-Type: "
            "application/json\r\nContent-Length: 1000000\r\n\r\n{").encode()  # fmt: skip


def flood(port: int, stop: threading.Event, opened: list[int], mode: str) -> None:
    held: list[socket.socket] = []
    first = opening(mode)
    while not stop.is_set():
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            if first:
                sock.sendall(first)
            held.append(sock)
            opened[0] += 1
        except OSError:
            stop.wait(0.01)
        if len(held) >= HOLD:
            for sock in held[: HOLD // 2]:
                sock.close()
            del held[: HOLD // 2]
    for sock in held:
        sock.close()


def call(port: int) -> str:
    body = json.dumps({"model": "@mock/echo", "messages": [{"role": "user", "content": "hi"}]})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/chat/completions", body,
                     {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})  # fmt: skip
        answer = conn.getresponse()
        data = answer.read()
        if answer.status == 200:
            return "200"
        return f"{answer.status} {json.loads(data)['error'].get('code')}"
    except OSError as exc:
        return type(exc).__name__
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-connections", type=int, default=64)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--mode", choices=["idle", "unread", "trickle"], default="idle")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_port()
        argv = [PY, "-m", "runtime.gateway", str(compile_bundle(work)), "--port", str(port),
                "--max-connections", str(args.max_connections)]  # fmt: skip
        server = Server("gateway", argv, port, work, None, _env()).start()
        stop, opened = threading.Event(), [0]
        flooder = threading.Thread(target=flood, args=(port, stop, opened, args.mode))
        try:
            flooder.start()
            stop.wait(1.0)  # the flood reaches the cap
            answers = collections.Counter(call(port) for _ in range(args.requests))
        finally:
            stop.set()
            flooder.join()
            server.stop()
    shown = ", ".join(f"{n} × {what}" for what, n in sorted(answers.items()))
    print(f"--max-connections {args.max_connections}, flood {args.mode}: the caller's "
          f"{args.requests} requests: {shown}; the flood opened {opened[0]:,} connections")  # fmt: skip


if __name__ == "__main__":
    main()
