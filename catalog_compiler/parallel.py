"""Per-file checks on several cores: forked workers send back the small part of each result.

Only used where it is safe and pays off: a single-threaded process (the CLI), POSIX fork,
and enough files. A worker that fails is never fatal: its files are checked here instead.
The heavy part (YAML data, typed models) stays in the worker; a later stage that needs it
re-checks that file (see FileResult).
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from catalog_compiler.filecheck import FileResult, check_file

if TYPE_CHECKING:
    from catalog_compiler.progress import Progress
    from catalog_compiler.registry import Registry
    from catalog_compiler.sources import Source

MIN_FILES_PER_JOB = 250


def usable_jobs(requested: int, files: int) -> int:
    if requested <= 1 or not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    return max(1, min(requested, files // MIN_FILES_PER_JOB))


def check_all(
    sources: list[Source], registry: Registry, jobs: int, progress: Progress
) -> Iterator[tuple[int, FileResult]]:
    """(index, result) for every source; indexes refer to `sources`."""
    jobs = usable_jobs(jobs, len(sources))
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
