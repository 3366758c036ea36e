"""Upstream adapters, one module per API family; SERVICES maps a catalog service to one."""
