"""Load: the first two stages, discover and parse. Takes a directory (the catalog root, found
from `catalog.yaml`) and hands on `Source`s (each file's bytes, hash and display path, read
once and only inside the catalog: `sources.py`) and, per file, plain YAML data with a
position tree beside it (`yamlparse.py`, `positions.py`); `fsutil.py` is how the compiler
touches the file system at all (bounded reads, guarded atomic writes), so every later stage
imports it from here and none of it imports upward."""
