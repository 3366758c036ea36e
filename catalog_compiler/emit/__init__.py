"""Emit: the shapes the compiler writes out. Takes the typed models (`model/`) and hands on
the JSON Schemas of the catalog's documents and of the bundle (`schemas.py`,
`bundle_schema.py`) that editors, other routers and the tests check against; the bundle
itself is sealed by `compiler.py` with the runtime's canonical form."""
