"""`python -m runtime.gateway BUNDLE [options]`: the gateway without the compiler."""

from runtime.gateway import hup

hup.catch()  # before the imports below (half a second): a SIGHUP meanwhile is a reload

from runtime.gateway.cli import main  # noqa: E402

raise SystemExit(main())
