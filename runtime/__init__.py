"""The runtime router: load a compiled catalog bundle and decide, per request, where it goes
and whether its budgets and rate limits allow it. It never imports the compiler.

Exceptions (see runtime/errors.py for the tree): every expected refusal is a RequestError
with an HTTP-style `status`; bundle problems are BundleError; anything else is a bug.
"""

from runtime.bundle import Bundle, Prices
from runtime.errors import (
    AccessDenied,
    BudgetExceeded,
    BundleError,
    BundleFormatError,
    BundleIntegrityError,
    CatalogRuntimeError,
    ConcurrencyExceeded,
    InvalidConfig,
    RateLimited,
    RequestError,
    StoreUnavailable,
    UnknownConfig,
    UnknownModel,
    UnknownProvider,
    UnknownWorkspace,
)
from runtime.limits.base import Reservation, Store
from runtime.limits.memory import MemoryStore
from runtime.money import Estimate, Usage
from runtime.plan import Attempt, Plan
from runtime.router import Router, Ticket

__all__ = [
    "AccessDenied",
    "Attempt",
    "BudgetExceeded",
    "Bundle",
    "BundleError",
    "BundleFormatError",
    "BundleIntegrityError",
    "CatalogRuntimeError",
    "ConcurrencyExceeded",
    "Estimate",
    "InvalidConfig",
    "MemoryStore",
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
]
