"""Peak memory of one gateway process under many concurrent large request bodies, with the
bound on bodies held at once (`--max-body-memory`) at its default and effectively off.

    python -m benchmarks.bench_body_memory [--clients 64] [--mb 15] [--latency-ms 3000]

Each client sends one chat request of `--mb` megabytes at the same moment to the in-process
mock service, which answers after `--latency-ms` (so the requests overlap, as a caller
flooding the gateway would make them). The mock's echo repeats the body in its answer, so
a served body costs more memory here than with a real upstream: compare the rows, not the
absolute peak. Prints, per setting: answers by status, wall time, and the process's peak
resident memory (VmHWM).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import http.client
import json
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.gateway.procs import Server, free_port
from benchmarks.gateway.rows import PY, _env, compile_files

KEY = "catalogc-bench-FAKE-0000"  # obviously fake; only its sha256 is in the catalog
OFF = 2**50  # --max-body-memory that never refuses


def catalog() -> dict[str, str]:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    return {
        "catalog.yaml": "kind: Organization\nversion: 1\nname: Body memory benchmark\n",
        "mock.yaml": f"""kind: Integration
slug: local
service: mock
---
kind: Provider
slug: mock
integration: local
---
kind: Workspace
slug: bench
api_keys:
  - {{name: bench, sha256: "{digest}"}}
""",
    }


def compile_bundle(work: Path) -> Path:
    return compile_files(catalog(), work)


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def flood(port: int, clients: int, body: bytes, latency_ms: int) -> collections.Counter[str]:
    """`clients` concurrent requests; their answers by status and code."""
    answers: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}",
               "x-mock-latency-ms": str(latency_ms)}  # fmt: skip

    def one() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            conn.request("POST", "/v1/chat/completions", body, headers)
            answer = conn.getresponse()
            data = answer.read()
            code = "" if answer.status == 200 else json.loads(data)["error"].get("code") or ""
            what = f"{answer.status} {code}".strip()
        except OSError as exc:
            what = type(exc).__name__
        finally:
            conn.close()
        with lock:
            answers[what] += 1

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def run(bundle: Path, work: Path, limit: int | None, args: argparse.Namespace) -> str:
    port = free_port()
    argv = [PY, "-m", "runtime.gateway", str(bundle), "--port", str(port)]
    if limit is not None:
        argv += ["--max-body-memory", str(limit)]
    name = "default" if limit is None else "off" if limit == OFF else str(limit)
    server = Server(f"gateway-{name}", argv, port, work, None, _env()).start()
    words = args.mb * 1024 * 1024 // 2  # "x " per word: the mock counts words as tokens
    body = json.dumps({"model": "@mock/echo",
                       "messages": [{"role": "user", "content": "x " * words}]}).encode()  # fmt: skip
    try:
        start = time.monotonic()
        answers = flood(port, args.clients, body, args.latency_ms)
        seconds = time.monotonic() - start
        assert server.proc is not None
        peak = peak_rss(server.proc.pid)
    finally:
        server.stop()
    shown = ", ".join(f"{n} × {what}" for what, n in sorted(answers.items()))
    return f"| {name} | {shown} | {seconds:.1f} s | {peak / 2**20:,.0f} MiB |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--mb", type=int, default=15, help="megabytes per body")
    parser.add_argument("--latency-ms", type=int, default=3000)
    parser.add_argument("--limit", type=int, action="append",
                        help="--max-body-memory values to run besides the default and off")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = compile_bundle(work)
        print(f"{args.clients} clients × {args.mb} MB bodies, mock answering after "
              f"{args.latency_ms} ms\n")  # fmt: skip
        print("| --max-body-memory | answers | wall | peak RSS |\n|---|---|---:|---:|")
        for limit in (None, *(args.limit or ()), OFF):
            print(run(bundle, work, limit, args), flush=True)


if __name__ == "__main__":
    main()
