"""The gateway: an OpenAI-compatible HTTP server that executes the router's plans against the
upstream providers with every catalog rule enforced (`python -m runtime.gateway BUNDLE`, or
`catalogc serve`). Its server dependencies are the `gateway` extra (aiohttp, uvloop).

Modules, in the order a request meets them: `auth` (who is calling), `forms` (which of the
request forms it uses), `execute` (admit → call → settle, per attempt, with fallback and
retry), `transport` (the upstream HTTP client, and the in-process mock), `replies` (errors
and headers in the shape clients expect), `app` (the routes), `live` (the bundle being
served, swapped whole on reload), `server` and `cli` (processes, signals, reload, drain;
`hup`: a SIGHUP while starting). Under the routes: `capped_site` (the listening socket,
its connection cap) and `connection` (one client connection: requests that are not HTTP,
a client gone mid-stream).
"""

import importlib.util

# what `pip install 'catalog-compiler[gateway]'` brings that the gateway cannot run without
# (uvloop and msgspec are optional: used where available)
EXTRA = ("aiohttp", "prometheus_client")


def missing_extra() -> str | None:
    """The first module of the gateway extra this installation lacks, looked for without
    importing it: prometheus_client must be imported only after `--workers` points
    PROMETHEUS_MULTIPROC_DIR at the workers' shared files (imported before, each worker's
    metrics stayed its own and /metrics lost them)."""
    for name in EXTRA:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None
