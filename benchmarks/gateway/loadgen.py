"""Load: `wrk` (Debian package wrk) for throughput and latency, and a raw-socket client for
streaming time-to-first-byte, which wrk cannot see (it times whole responses).

A Target is what one row sends: URL, headers and the non-streaming and streaming bodies.
"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PROMPT = [{"role": "user", "content": "Say something short about foxes."}]


def body(model: str, stream: bool = False) -> bytes:
    payload: dict[str, object] = {"model": model, "messages": PROMPT, "max_tokens": 16}
    if stream:
        payload["stream"] = True
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # the full URL of chat completions
    model: str
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, stream: bool) -> bytes:
        """The raw HTTP/1.1 request (keep-alive)."""
        parts = urlsplit(self.url)
        data = body(self.model, stream)
        head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}",
                "Content-Type: application/json", f"Content-Length: {len(data)}",
                *(f"{k}: {v}" for k, v in self.headers.items())]  # fmt: skip
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_us: float
    p99_us: float
    requests: int
    errors: int  # socket errors, timeouts and non-2xx answers

    def as_dict(self) -> dict[str, float]:
        return {"rps": self.rps, "p50_us": self.p50_us, "p99_us": self.p99_us,
                "requests": self.requests, "errors": self.errors}  # fmt: skip


def _lua(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for ASCII


def wrk_script(target: Target, stream: bool = False) -> str:
    headers = {"Content-Type": "application/json", **target.headers}
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua(body(target.model, stream).decode())}"]
    lines += [f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in headers.items()]
    lines.append("""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests":%d,"duration_us":%d,"p50":%d,"p99":%d,' ..
    '"errors":%d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end""")
    return "\n".join(lines)


def wrk(target: Target, connections: int, seconds: int, stream: bool = False) -> WrkResult:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (Debian package wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(target, stream))
    try:
        out = subprocess.run(
            [binary, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
             "-s", script.name, target.url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        Path(script.name).unlink()
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    data = json.loads(line[4:])
    return WrkResult(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_us=float(data["p50"]),
        p99_us=float(data["p99"]),
        requests=data["requests"],
        errors=data["errors"],
    )


class StreamClient:
    """One keep-alive connection; times the first complete SSE event of each response."""

    def __init__(self, target: Target) -> None:
        parts = urlsplit(target.url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.request = target.request(stream=True)
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=10)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.sock

    def once(self) -> tuple[float, float]:
        """(time to the first event, time to the end of the stream), in microseconds."""
        sock = self._connect()
        start = time.perf_counter()
        sock.sendall(self.request)
        data = b""
        first = None
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                self.close()
                raise ConnectionError("the server closed the connection mid-stream")
            data += chunk
            if first is None:
                head_end = data.find(b"\r\n\r\n")
                event = data.find(b"data:", head_end) if head_end >= 0 else -1
                if event >= 0 and data.find(b"\n\n", event) >= 0:
                    first = time.perf_counter()
                    status = data[: data.find(b"\r\n")]
                    if b" 200" not in status:
                        raise RuntimeError(f"stream answered {status.decode(errors='replace')}")
            if first is not None and _complete(data):
                break
        end = time.perf_counter()
        if b"connection: close" in data[: data.find(b"\r\n\r\n")].lower():
            self.close()
        return (first - start) * 1e6, (end - start) * 1e6

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _complete(data: bytes) -> bool:
    """Has the whole response arrived? Chunked (the last chunk) or Content-Length."""
    head_end = data.find(b"\r\n\r\n")
    head = data[:head_end].lower()
    if b"transfer-encoding: chunked" in head:
        return data.endswith(b"\r\n0\r\n\r\n")
    marker = head.find(b"content-length:")
    if marker >= 0:
        length = int(head[marker + 15 :].split(b"\r\n")[0])
        return len(data) - head_end - 4 >= length
    return b"data: [DONE]" in data


def ttfb(target: Target, count: int = 300, warmup: int = 30) -> tuple[float, float]:
    """Median time to the first SSE event and to the end of the stream, microseconds."""
    client = StreamClient(target)
    try:
        for _ in range(warmup):
            client.once()
        samples = [client.once() for _ in range(count)]
    finally:
        client.close()
    return (statistics.median(s[0] for s in samples),
            statistics.median(s[1] for s in samples))  # fmt: skip


def check(target: Target) -> str | None:
    """One plain and one streaming request: None when both answer 200 with a completion,
    else what went wrong (status line and the start of the body)."""
    parts = urlsplit(target.url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    try:
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(target.request(stream=False))
            data = b""
            while b"\r\n\r\n" not in data or not _complete(data):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        status = data.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 200" not in status or b"chat.completion" not in data:
            answer = data.split(b"\r\n\r\n", 1)[-1][:300].decode(errors="replace")
            return f"{status}: {answer}"
        client = StreamClient(target)
        try:
            client.once()
        finally:
            client.close()
    except (OSError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
