"""Content-hash parse cache: a file is re-parsed only when its bytes change.

Safe by construction: the key is the file's sha256 (plus its display path and the cache
format), so an edited file is always re-read; mtimes are never trusted. One pickle per
catalog root, replaced atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from catalog_compiler.diagnostics import Diagnostic
from catalog_compiler.sources import Source
from catalog_compiler.yamlparse import Document

FORMAT = "catalogc-parse-cache/2"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "catalogc"


class ParseCache:
    def __init__(self, directory: Path, root: Path) -> None:
        digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
        self.path = directory / f"{digest}.pickle"
        self.entries: dict[str, tuple[str, str, list[Document], list[Diagnostic]]] = {}
        self.used: dict[str, tuple[str, str, list[Document], list[Diagnostic]]] = {}
        self.dirty = False
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                data: Any = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
                ValueError, TypeError):  # fmt: skip
            return  # no cache or an unreadable one: start cold
        if isinstance(data, dict) and data.get("format") == FORMAT:
            self.entries = data["entries"]

    def get(self, source: Source) -> tuple[list[Document], list[Diagnostic]] | None:
        entry = self.entries.get(source.rel)
        if entry is None or entry[0] != source.sha256 or entry[1] != source.display:
            return None
        self.used[source.rel] = entry
        return entry[2], entry[3]

    def put(self, source: Source, docs: list[Document], diags: list[Diagnostic]) -> None:
        self.used[source.rel] = (source.sha256, source.display, docs, diags)
        self.dirty = True

    def save(self) -> None:
        """Keep exactly the files seen in this run; written atomically, errors ignored."""
        if not self.dirty and len(self.used) == len(self.entries):
            return
        payload = {"format": FORMAT, "entries": self.used}
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
