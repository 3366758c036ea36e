"""Resolve: the stage after the link stage. Takes the checked, linked documents (with the
`Gaps` broken ones leave) and locates them (`context.py`); then `build.py` hands on the
bundle body for emit: resolved access (`access.py`), the limit chains of the counters
(`counters.py`), each provider's models with their prices layered (`drafts.py`,
`price_variants.py`), workspaces with their effective aliases (`workspaces.py`,
`aliases.py`) and the compiled routing configs (`routing.py`). Once the runtime has loaded
that bundle, the checks across documents ask the runtime's own index: `semantics.py` (with
`chains.py`, `config_checks.py`, `modes.py`) and `prices.py`."""
