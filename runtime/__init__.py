"""The runtime router: load a compiled catalog bundle and decide, per request, where it goes
and whether its budgets and rate limits allow it. It never imports the compiler.

Exceptions (see runtime/bundle/errors.py for the tree): every expected refusal is a RequestError
with an HTTP-style `status`; bundle problems are BundleError; anything else is a bug.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.bundle.errors import (
        AccessDenied,
        BudgetExceeded,
        BundleContentError,
        BundleError,
        BundleFormatError,
        BundleIntegrityError,
        BundleReadError,
        CatalogRuntimeError,
        ConcurrencyExceeded,
        InvalidConfig,
        InvalidRequest,
        RateLimited,
        RequestError,
        StoreUnavailable,
        UnknownConfig,
        UnknownModel,
        UnknownProvider,
        UnknownWorkspace,
    )
    from runtime.bundle.load import Bundle, Prices
    from runtime.bundle.money import Estimate, Usage
    from runtime.limits.base import Reservation, Store
    from runtime.limits.memory import MemoryStore
    from runtime.routing.counters_usage import CounterUsage
    from runtime.routing.inline import parse_config
    from runtime.routing.plan import Attempt, Plan
    from runtime.routing.router import Router
    from runtime.routing.ticket import Ticket

# Names are imported on first use: the compiler imports small runtime modules (suggest,
# configs) and must not pay for the whole router when it does.
_WHERE = {
    "AccessDenied": "runtime.bundle.errors",
    "Attempt": "runtime.routing.plan",
    "BudgetExceeded": "runtime.bundle.errors",
    "Bundle": "runtime.bundle.load",
    "BundleContentError": "runtime.bundle.errors",
    "BundleError": "runtime.bundle.errors",
    "BundleFormatError": "runtime.bundle.errors",
    "BundleIntegrityError": "runtime.bundle.errors",
    "BundleReadError": "runtime.bundle.errors",
    "CatalogRuntimeError": "runtime.bundle.errors",
    "ConcurrencyExceeded": "runtime.bundle.errors",
    "Estimate": "runtime.bundle.money",
    "InvalidConfig": "runtime.bundle.errors",
    "InvalidRequest": "runtime.bundle.errors",
    "MemoryStore": "runtime.limits.memory",
    "ModeMismatch": "runtime.bundle.errors",
    "Plan": "runtime.routing.plan",
    "Prices": "runtime.bundle.load",
    "RateLimited": "runtime.bundle.errors",
    "RequestError": "runtime.bundle.errors",
    "Reservation": "runtime.limits.base",
    "Router": "runtime.routing.router",
    "Store": "runtime.limits.base",
    "StoreUnavailable": "runtime.bundle.errors",
    "Ticket": "runtime.routing.ticket",
    "UnknownConfig": "runtime.bundle.errors",
    "UnknownModel": "runtime.bundle.errors",
    "UnknownProvider": "runtime.bundle.errors",
    "UnknownWorkspace": "runtime.bundle.errors",
    "Usage": "runtime.bundle.money",
    "CounterUsage": "runtime.routing.counters_usage",
    "parse_config": "runtime.routing.inline",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AccessDenied",
    "Attempt",
    "BudgetExceeded",
    "Bundle",
    "BundleContentError",
    "BundleError",
    "BundleFormatError",
    "BundleIntegrityError",
    "BundleReadError",
    "CatalogRuntimeError",
    "ConcurrencyExceeded",
    "CounterUsage",
    "Estimate",
    "InvalidConfig",
    "InvalidRequest",
    "MemoryStore",
    "ModeMismatch",
    "Plan",
    "Prices",
    "RateLimited",
    "RequestError",
    "Reservation",
    "Router",
    "Store",
    "StoreUnavailable",
    "Ticket",
    "UnknownConfig",
    "UnknownModel",
    "UnknownProvider",
    "UnknownWorkspace",
    "Usage",
    "parse_config",
]
