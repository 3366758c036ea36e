"""`python -m runtime.gateway BUNDLE [options]`: the gateway without the compiler."""

import importlib.util
import sys

from runtime.gateway import hup

hup.catch()  # before the imports below (half a second): a SIGHUP meanwhile is a reload


def _missing(name: str) -> bool:
    """Whether a module is absent, without importing it: prometheus_client must be imported
    after `--workers` points PROMETHEUS_MULTIPROC_DIR at the workers' shared files (imported
    here, each worker's metrics stayed its own and /metrics lost them all)."""
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


# the server's dependencies are an extra: a missing one is said, not a traceback (or, for
# prometheus_client, imported only once serving began, an error and a process that hung)
for _name in ("aiohttp", "prometheus_client"):
    if _missing(_name):
        print(f"runtime.gateway: the gateway needs `{_name}`: install the gateway extra: "
              "pip install 'catalog-compiler[gateway]'", file=sys.stderr)  # fmt: skip
        raise SystemExit(2)

from runtime.gateway.cli import main  # noqa: E402

raise SystemExit(main())
