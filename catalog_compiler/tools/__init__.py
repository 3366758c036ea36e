"""Tools built on the compiled bundle (and, for importers and scaffold, on the catalog format):
`explain` (why a workspace may use a model, at what price), `diff` (what a change does to
clients), `chargeback` (usage events summed exactly), `gallery/` (the static site of models
and snippets), `importers/` (LiteLLM and Portkey tables and configs into catalog YAML) and
`scaffold/` (`catalogc init`). They take a `Compiled` result, a bundle or input files and
hand on text, JSON, HTML or YAML to the CLI; nothing in the pipeline imports them."""
