"""Pathological catalog files: how long `catalogc validate` takes to refuse (or accept) each,
and how much it prints.

    python -m benchmarks.bench_hostile_yaml [--only NAME,...] [--timeout 120]

Each input is one file beside a minimal catalog.yaml, checked by a real `catalogc validate
--no-cache` process (wall clock, start-up included: ~0.3 s on the reference machine) with a
timeout. Prints a markdown table (input, size, seconds, exit, codes, bytes printed).
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ORG = "kind: Organization\nversion: 1\nname: Bench\n"
KB160 = 160 * 1024
MB = 1024 * 1024


def _block_map(depth: int) -> str:
    return "".join(" " * i + f"k{i}:\n" for i in range(depth)) + " " * depth + "v\n"


INPUTS: dict[str, Callable[[], str]] = {
    "160 KB of `[`": lambda: "[" * KB160,
    "160 KB of `{`": lambda: "{" * KB160,
    "160 KB of `[{` mixed": lambda: "[{" * (KB160 // 2),
    "160 KB of `[` one per line": lambda: "[\n" * (KB160 // 2),
    "160 KB of `k: {`": lambda: "k: {" * (KB160 // 4),
    "160 KB of `- ` (block sequence)": lambda: "- " * (KB160 // 2) + "x\n",
    "block mappings 560 deep (160 KB)": lambda: _block_map(560),
    "`[` x 64 then 100k items": lambda: "[" * 60 + "1, " * 100_000 + "]" * 60 + "\n",
    "8 MB plain scalar line": lambda: "kind: Workspace\nslug: s\nname: " + "x" * (8 * MB - 40),
    "8 MB unclosed flow line": lambda: "kind: Workspace\nslug: [" + "y" * (8 * MB - 40),
    "8 MB quoted scalar": lambda: 'kind: Workspace\nslug: s\nname: "' + "z" * (8 * MB - 40) + '"',
    "1 MB explicit key": lambda: "kind: Workspace\nslug: s\n? " + "k" * MB + "\n: 1\n",
    "1 MB key, duplicated": lambda: ("? " + "k" * MB + "\n: 1\n") * 2,
    "100k tiny documents": lambda: "".join(
        f"---\nkind: Workspace\nslug: w{i}\nname: W\n" for i in range(100_000)
    ),
    "2M empty documents (8 MB of `---`)": lambda: "---\n" * (2 * MB),
    "100k documents with an error each": lambda: "".join(
        f"---\nkind: Workspace\nslug: w{i}\nnmae: W\n" for i in range(100_000)
    ),
    "100k anchors and aliases": lambda: (
        "x:\n"
        + "".join(f"  - &a{i} v{i}\n" for i in range(50_000))
        + "".join(f"  - *a{i}\n" for i in range(50_000))
    ),
    "100k duplicate keys": lambda: "kind: Workspace\nslug: s\nname: n\n" + "d: 1\n" * 100_000,
    "100k unknown fields": lambda: (
        "kind: Workspace\nslug: s\nname: n\n" + "".join(f"f{i}: 1\n" for i in range(100_000))
    ),
    "1M-item flow sequence": lambda: "x: [" + "1," * 1_000_000 + "1]\n",
    "8M newlines": lambda: "\n" * (8 * MB - 1),
    "8 MB of comments": lambda: ("# " + "c" * 77 + "\n") * (8 * MB // 80),
    "100k control characters": lambda: "kind: Workspace\nslug: s\n" + "\x07" * 100_000,
}


def run(name: str, text: str, timeout: float) -> tuple[str, ...]:
    with tempfile.TemporaryDirectory(prefix="catalogc-hostile-") as tmp:
        root = Path(tmp)
        (root / "catalog.yaml").write_text(ORG)
        (root / "probe.yaml").write_bytes(text.encode())
        cmd = [sys.executable, "-m", "catalog_compiler", "validate", str(root), "--no-cache"]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return (name, _size(text), f"> {timeout:.0f}", "timeout", "", "")
        elapsed = time.perf_counter() - start
        out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        found = collections.Counter(re.findall(r"\[([EW][0-9]{4})\]", out))
        codes = ", ".join(f"{c}×{n}" if n > 1 else c for c, n in sorted(found.items()))
        if "internal error" in out or "Traceback" in out:
            codes += " INTERNAL ERROR"
        return (name, _size(text), f"{elapsed:.2f}", str(proc.returncode), codes,
                f"{len(out):,}")  # fmt: skip


def _size(text: str) -> str:
    n = len(text.encode())
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.0f} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated substrings of input names")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    print("| input | size | seconds | exit | codes | printed (bytes) |")
    print("|---|---:|---:|---:|---|---:|")
    for name, make in INPUTS.items():
        if wanted and not any(w in name for w in wanted):
            continue
        print("| " + " | ".join(run(name, make(), args.timeout)) + " |", flush=True)


if __name__ == "__main__":
    main()
