"""The bundle layer: takes the compiled bundle file (the only contract
with the compiler), reads it within bounds, verifies its format and digest, checks every
member, and hands on a frozen, indexed `Bundle`, together with the vocabulary a bundle is
written in (prices, money, periods, hosts, access rules, aliases, config syntax) and the
runtime's exceptions (errors.py, the base of everything). It imports nothing above it. The
loader's public names (runtime/bundle/load.py `__all__`) are importable from here too, on
first use: a small module of this layer (errors, suggest) must not pay for the whole loader,
which the compiler's checks never need.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    # importlib, not `from runtime.bundle import load`: that would ask this hook for `load`
    load = importlib.import_module("runtime.bundle.load")
    if name in load.__all__:
        return getattr(load, name)
    raise AttributeError(f"module 'runtime.bundle' has no attribute {name!r}")
