"""catalog-compiler: validate a model catalog written as YAML and compile its routing bundle."""

__version__ = "0.1.0"
