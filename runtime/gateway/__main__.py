"""`python -m runtime.gateway BUNDLE [options]`: the gateway without the compiler."""

import sys

from runtime.gateway import hup, missing_extra

hup.catch()  # before the imports below (half a second): a SIGHUP meanwhile is a reload

# the server's dependencies are an extra: a missing one is said, not a traceback (or, for
# prometheus_client, imported only once serving began, an error and a process that hung)
_absent = missing_extra()
if _absent is not None:
    print(f"runtime.gateway: the gateway needs `{_absent}`: install the gateway extra: "
          "pip install 'catalog-compiler[gateway]'", file=sys.stderr)  # fmt: skip
    raise SystemExit(2)

from runtime.gateway.cli import main  # noqa: E402

raise SystemExit(main())
