"""`python -m runtime.gateway BUNDLE [options]`: the gateway without the compiler."""

import sys

from runtime.gateway import hup

hup.catch()  # before the imports below (half a second): a SIGHUP meanwhile is a reload

try:
    from runtime.gateway.cli import main
except ImportError as exc:  # the server's dependencies are an extra: say so, not a traceback
    if (exc.name or "").partition(".")[0] != "aiohttp":
        raise
    print("runtime.gateway: the gateway needs `aiohttp`: install the gateway extra: "
          "pip install 'catalog-compiler[gateway]'", file=sys.stderr)  # fmt: skip
    raise SystemExit(2) from None

raise SystemExit(main())
