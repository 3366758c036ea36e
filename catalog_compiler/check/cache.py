"""Content-hash cache of per-file results: a file is re-checked only when its bytes change.

Safe by construction: an entry is used only when the file's sha256, its display path and
the compiler itself (a hash of its own sources and registry) are all unchanged; mtimes are
never trusted. Entries live in a few shard files per catalog root, each replaced atomically,
so a one-file edit rewrites one small shard; an unreadable shard is simply ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from functools import cache
from pathlib import Path
from typing import Any

from catalog_compiler.check.files import FileResult
from catalog_compiler.load.fsutil import write_atomic
from catalog_compiler.load.sources import Source

FORMAT = "catalogc-cache/4"
SHARDS = 32


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "catalogc"


@cache
def compiler_fingerprint() -> str:
    """Changes whenever any compiler source or data file changes."""
    package = Path(__file__).resolve().parents[1]  # the whole catalog_compiler package
    digest = hashlib.sha256(FORMAT.encode())
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".json") and path.is_file():
            digest.update(str(path.relative_to(package)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def shard_of(rel: str) -> int:
    return hashlib.blake2b(rel.encode(), digest_size=2).digest()[0] % SHARDS


class ParseCache:
    """`directory=None` keeps the cache in memory only, for a long-lived process."""

    def __init__(self, directory: Path | None, root: Path) -> None:
        digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
        self.dir = directory / digest if directory else None
        self.entries: dict[str, FileResult] = {}
        self.used: dict[str, FileResult] = {}
        self.changed: set[int] = set()  # shards to rewrite
        self._load()

    def _shard_path(self, shard: int) -> Path:
        assert self.dir is not None
        return self.dir / f"{shard:02d}.pickle"

    def _load(self) -> None:
        if self.dir is None or not self.dir.is_dir():
            return
        fingerprint = compiler_fingerprint()
        for shard in range(SHARDS):
            try:
                with open(self._shard_path(shard), "rb") as fh:
                    data: Any = pickle.load(fh)
            except Exception:  # missing or unreadable: those files are checked afresh
                continue
            if (
                isinstance(data, dict)
                and data.get("format") == FORMAT
                and data.get("compiler") == fingerprint
            ):
                self.entries.update(data["entries"])

    def get(self, source: Source) -> FileResult | None:
        entry = self.entries.get(source.rel)
        if entry is None or entry.sha256 != source.sha256 or entry.display != source.display:
            return None
        self.used[source.rel] = entry
        return entry

    def put(self, source: Source, result: FileResult) -> None:
        self.used[source.rel] = result
        self.changed.add(shard_of(source.rel))

    def save(self) -> None:
        """Keep exactly the files seen in this run (and start the next run from them)."""
        self.changed.update(shard_of(rel) for rel in self.entries.keys() - self.used.keys())
        if self.dir is not None and self.changed:
            by_shard: dict[int, dict[str, FileResult]] = {s: {} for s in self.changed}
            for rel, entry in self.used.items():
                shard = shard_of(rel)
                if shard in by_shard:
                    by_shard[shard][rel] = entry
            fingerprint = compiler_fingerprint()
            with contextlib.suppress(OSError):
                self.dir.mkdir(parents=True, exist_ok=True)
                for shard, entries in by_shard.items():
                    payload = {"format": FORMAT, "compiler": fingerprint, "entries": entries}
                    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
                    write_atomic(self._shard_path(shard), data, durable=False)
        self.entries, self.used, self.changed = self.used, {}, set()
