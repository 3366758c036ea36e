"""Check: the per-file checks and the link stage. Takes one `Source` at a time and hands on a
`FileResult` (`files.py`): secrets (`secrets.py`), structure into typed documents
(`schema.py`), one-document rules (`local.py`) and the `Facts` the link stage needs
(`facts.py`); results are cached by content hash (`cache.py`) and computed on several cores
(`parallel.py`), both here because they hold `FileResult`s. Then `link.py` takes every
file's facts and hands on an `Index` with references resolved and slugs unique, and
`gaps.py` records what broken documents leave unknown so later checks skip exactly that."""
