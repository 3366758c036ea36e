"""`python -m runtime.gateway BUNDLE [options]`: the gateway without the compiler."""

from runtime.gateway.cli import main

raise SystemExit(main())
