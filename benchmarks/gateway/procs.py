"""Server processes for the gateway benchmark: start pinned to CPUs, wait until they answer,
stop the whole process group (workers included)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pin_self(cpus: str | None) -> None:
    """Pin this process (the load generators it starts inherit it) to `cpus` ("0", "0-1")."""
    if cpus is not None:
        os.sched_setaffinity(0, cpu_set(cpus))


def cpu_set(cpus: str) -> set[int]:
    chosen: set[int] = set()
    for part in cpus.split(","):
        low, _, high = part.partition("-")
        chosen.update(range(int(low), int(high or low) + 1))
    return chosen


class Server:
    """One server (or a master and its workers) in its own process group; stderr to a file."""

    def __init__(self, name: str, argv: Sequence[str], port: int, workdir: Path,
                 cpus: str | None = None, env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / f"{name}.log"
        prefix = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
        self.argv = [*prefix, *argv]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Server:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log, env=self.env,
                                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start:\n{self.tail()}")
            time.sleep(0.05)
        return self

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        group = self.proc.pid  # start_new_session: the group is ours alone
        for sig in (signal.SIGTERM, signal.SIGKILL):  # KILL: workers that outlived a master
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
        self.proc.wait()
        self.proc = None


TICK = os.sysconf("SC_CLK_TCK")


def _group_pids(group: int) -> list[Path]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # after "pid (comm)": state ppid pgrp ...
            found.append(entry)
    return found


def group_cpu_seconds(group: int) -> float:
    """User + system CPU time of the live processes of one process group (all threads)."""
    total = 0
    for entry in _group_pids(group):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICK


def group_run_delay(group: int) -> float:
    """Seconds the threads of one process group spent runnable but waiting for a CPU
    (/proc/PID/task/TID/schedstat): the time other work took from them."""
    total = 0
    for entry in _group_pids(group):
        for task in (entry / "task").glob("*/schedstat"):
            try:
                total += int(task.read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def busy_fraction(seconds: float = 0.5) -> float:
    """How busy all CPUs were over `seconds` (0..1), from /proc/stat."""

    def sample() -> tuple[int, int]:
        values = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(limit: float = 0.15, timeout: float = 60.0) -> float:
    """Wait (at most `timeout`) until other work leaves the CPUs at most `limit` busy; the
    benchmark's own servers are idle between points. Returns the last busy fraction seen."""
    deadline = time.monotonic() + timeout
    busy = busy_fraction()
    while busy > limit and time.monotonic() < deadline:
        busy = busy_fraction(1.0)
    return busy


class ForeignLoad:
    """CPU used by processes that are not ours while a point runs, in cores (0..ncpu):
    all busy time from /proc/stat minus our process groups (this one, which holds
    redis-server, and each server's) and our reaped children (wrk)."""

    def __init__(self, groups: Sequence[int]) -> None:
        self.groups = [os.getpgid(0), *groups]

    def _snapshot(self) -> tuple[float, float, float]:
        values = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        busy = (sum(values[:8]) - values[3] - values[4]) / TICK  # all but idle and iowait
        ours = sum(group_cpu_seconds(g) for g in self.groups)
        times = os.times()
        return busy, ours + times.children_user + times.children_system, time.monotonic()

    def __enter__(self) -> ForeignLoad:
        self.start = self._snapshot()
        self.cores = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._snapshot()
        elapsed = max(1e-9, end[2] - self.start[2])
        self.cores = max(0.0, (end[0] - self.start[0]) - (end[1] - self.start[1])) / elapsed


CALIBRATE = (
    "import time\nt = time.perf_counter()\nsum(range(10**7))\nprint(time.perf_counter() - t)"
)


def calibrate(cpus: str | None) -> float:
    """Milliseconds of a fixed pure-Python loop on `cpus`: how fast the machine was then (a
    shared VM's speed drifts through the day; compare runs by this)."""
    prefix = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
    out = subprocess.run([*prefix, sys.executable, "-c", CALIBRATE], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return float(out) * 1000
