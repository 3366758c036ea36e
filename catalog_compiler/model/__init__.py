"""Typed documents of the catalog language; JSON Schemas in schema/ are generated from them."""

from catalog_compiler.model.documents import (
    KINDS,
    AnyDocument,
    Config,
    Integration,
    Model,
    Organization,
    Provider,
    Workspace,
)
from catalog_compiler.model.routing import RoutingConfig, Target

__all__ = [
    "KINDS",
    "AnyDocument",
    "Config",
    "Integration",
    "Model",
    "Organization",
    "Provider",
    "RoutingConfig",
    "Target",
    "Workspace",
]
