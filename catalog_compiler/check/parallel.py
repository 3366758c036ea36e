"""Per-file checks on several cores: forked workers send back the small part of each result.

Only used where it is safe and pays off: a single-threaded process (the CLI), POSIX fork,
and enough files. A worker that fails is never fatal: its files are checked here instead.
The heavy part (YAML data, typed models) stays in the worker; a later stage that needs it
re-checks that file (see FileResult).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from catalog_compiler.check.files import FileResult, check_file

if TYPE_CHECKING:
    from catalog_compiler.diagnostics.progress import Progress
    from catalog_compiler.load.sources import Source
    from catalog_compiler.registry import Registry

MIN_FILES_PER_JOB = 250


def usable_jobs(requested: int, files: int) -> int:
    if requested <= 1 or not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    return max(1, min(requested, files // MIN_FILES_PER_JOB))


class WarmWorker:
    """A process forked at start-up that imports the checkers (pydantic and the typed models,
    ~130 ms) while this one loads the cache and reads the files, then checks the few files
    that changed. Re-validating after an edit thus costs max(import, cache load), not the sum.
    Unused (nothing changed, or too many files for one worker), it is killed."""

    def __init__(self, registry: Registry) -> None:
        self.pid = 0
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return
        to_child, self._to_child = os.pipe()
        self._from_child, to_parent = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(self._to_child)
            os.close(self._from_child)
            _serve(registry, to_child, to_parent)
        os.close(to_child)
        os.close(to_parent)
        self.pid = pid

    def check(self, sources: list[Source]) -> list[FileResult] | None:
        """The results of `sources` (None if the worker failed: check them here instead)."""
        if not self.pid:
            return None
        pid, self.pid = self.pid, 0
        try:
            with os.fdopen(self._to_child, "wb") as out:
                out.write(pickle.dumps(sources, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:  # the worker died early
            os.close(self._from_child)
            os.waitpid(pid, 0)
            return None
        return _collect(pid, self._from_child)

    def stop(self) -> None:
        """Kill the worker if it was not used (idempotent)."""
        if not self.pid:
            return
        pid, self.pid = self.pid, 0
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.close(self._to_child)
        os.close(self._from_child)
        os.waitpid(pid, 0)


def _serve(registry: Registry, from_parent: int, to_parent: int) -> None:
    status = 1
    try:
        import catalog_compiler.check.local  # noqa: F401  (the slow part, done in parallel)

        with os.fdopen(from_parent, "rb") as pipe:
            sources: list[Source] = pickle.loads(pipe.read())
        results = [check_file(source, registry) for source in sources]
        with os.fdopen(to_parent, "wb") as out:
            out.write(pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL))
        status = 0
    finally:
        os._exit(status)


def check_all(
    sources: list[Source],
    registry: Registry,
    jobs: int,
    progress: Progress,
    warm: WarmWorker | None = None,
) -> Iterator[tuple[int, FileResult]]:
    """(index, result) for every source; indexes refer to `sources`."""
    jobs = usable_jobs(jobs, len(sources))
    if warm is not None:
        results = warm.check(sources) if jobs == 1 and sources else None
        warm.stop()
        if results is not None and len(results) == len(sources):
            for i, result in enumerate(results):
                yield i, result
                progress.advance()
            return
    if jobs == 1:
        for i, source in enumerate(sources):
            yield i, check_file(source, registry)
            progress.advance()
        return
    import catalog_compiler.check.local  # noqa: F401  (loaded once, inherited by workers)

    workers = [_fork(sources[k::jobs], registry) for k in range(1, jobs)]
    for i in range(0, len(sources), jobs):  # this process takes every jobs-th file
        yield i, check_file(sources[i], registry)
        progress.advance()
    for k, (pid, fd) in enumerate(workers, start=1):
        chunk = list(range(k, len(sources), jobs))
        results = _collect(pid, fd)
        for j, i in enumerate(chunk):
            result = results[j] if results is not None else check_file(sources[i], registry)
            yield i, result
            progress.advance()


def _fork(chunk: list[Source], registry: Registry) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # worker: check, send the small parts, exit without cleanup handlers
        status = 1
        try:
            os.close(read_fd)
            results = [check_file(source, registry) for source in chunk]
            data = pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_fd, "wb") as out:
                out.write(data)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    return pid, read_fd


def _collect(pid: int, fd: int) -> list[FileResult] | None:
    with os.fdopen(fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return None
    try:
        results: list[FileResult] = pickle.loads(data)
    except Exception:
        return None
    return results
