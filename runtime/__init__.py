"""The runtime router: load a compiled catalog bundle and decide, per request, where it goes
and whether its budgets and rate limits allow it. It never imports the compiler.

Exceptions (see runtime/errors.py for the tree): every expected refusal is a RequestError
with an HTTP-style `status`; bundle problems are BundleError; anything else is a bug.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.bundle import Bundle, Prices
    from runtime.counters_usage import CounterUsage
    from runtime.errors import (
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
    from runtime.inline import parse_config
    from runtime.limits.base import Reservation, Store
    from runtime.limits.memory import MemoryStore
    from runtime.money import Estimate, Usage
    from runtime.plan import Attempt, Plan
    from runtime.router import Router
    from runtime.ticket import Ticket

# Names are imported on first use: the compiler imports small runtime modules (suggest,
# configs) and must not pay for the whole router when it does.
_WHERE = {
    "AccessDenied": "runtime.errors",
    "Attempt": "runtime.plan",
    "BudgetExceeded": "runtime.errors",
    "Bundle": "runtime.bundle",
    "BundleContentError": "runtime.errors",
    "BundleError": "runtime.errors",
    "BundleFormatError": "runtime.errors",
    "BundleIntegrityError": "runtime.errors",
    "BundleReadError": "runtime.errors",
    "CatalogRuntimeError": "runtime.errors",
    "ConcurrencyExceeded": "runtime.errors",
    "Estimate": "runtime.money",
    "InvalidConfig": "runtime.errors",
    "InvalidRequest": "runtime.errors",
    "MemoryStore": "runtime.limits.memory",
    "ModeMismatch": "runtime.errors",
    "Plan": "runtime.plan",
    "Prices": "runtime.bundle",
    "RateLimited": "runtime.errors",
    "RequestError": "runtime.errors",
    "Reservation": "runtime.limits.base",
    "Router": "runtime.router",
    "Store": "runtime.limits.base",
    "StoreUnavailable": "runtime.errors",
    "Ticket": "runtime.ticket",
    "UnknownConfig": "runtime.errors",
    "UnknownModel": "runtime.errors",
    "UnknownProvider": "runtime.errors",
    "UnknownWorkspace": "runtime.errors",
    "Usage": "runtime.money",
    "CounterUsage": "runtime.counters_usage",
    "parse_config": "runtime.inline",
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
