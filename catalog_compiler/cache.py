"""Content-hash cache of per-file results: a file is re-checked only when its bytes change.

Safe by construction: an entry is used only when the file's sha256, its display path and
the compiler itself (a hash of its own sources and registry) are all unchanged; mtimes are
never trusted. One pickle per catalog root, replaced atomically; an unreadable cache is
ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from functools import cache
from pathlib import Path
from typing import Any

from catalog_compiler.filecheck import FileResult
from catalog_compiler.fsutil import write_atomic
from catalog_compiler.sources import Source

FORMAT = "catalogc-cache/3"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "catalogc"


@cache
def compiler_fingerprint() -> str:
    """Changes whenever any compiler source or data file changes."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(FORMAT.encode())
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".json") and path.is_file():
            digest.update(str(path.relative_to(package)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class ParseCache:
    def __init__(self, directory: Path, root: Path) -> None:
        digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
        self.path = directory / f"{digest}.pickle"
        self.entries: dict[str, FileResult] = {}
        self.used: dict[str, FileResult] = {}
        self.dirty = False
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                data: Any = pickle.load(fh)
        except Exception:  # no cache, or one we cannot read: start cold
            return
        if (
            isinstance(data, dict)
            and data.get("format") == FORMAT
            and data.get("compiler") == compiler_fingerprint()
        ):
            self.entries = data["entries"]

    def get(self, source: Source) -> FileResult | None:
        entry = self.entries.get(source.rel)
        if entry is None or entry.sha256 != source.sha256 or entry.display != source.display:
            return None
        self.used[source.rel] = entry
        return entry

    def put(self, source: Source, result: FileResult) -> None:
        self.used[source.rel] = result
        self.dirty = True

    def save(self) -> None:
        """Keep exactly the files seen in this run."""
        if not self.dirty and self.used.keys() == self.entries.keys():
            return
        payload = {"format": FORMAT, "compiler": compiler_fingerprint(), "entries": self.used}
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
            write_atomic(self.path, data, durable=False)
