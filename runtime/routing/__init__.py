"""The routing layer: takes a loaded `Bundle` and a request (workspace,
provider or alias, model, inline config, endpoint) and hands on a `Plan`: the attempts to
make, the request body of each, the limit chain to admit and the prices to charge; it also
reads counters' usage back. It reads the bundle layer and the limits' types (runtime.limits),
never the upstream adapters or the gateway.
"""
