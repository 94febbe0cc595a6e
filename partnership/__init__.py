"""The partnership: its registry of signatory agencies (``registry.toml``) and the loader that
reads it (:mod:`partnership.registry`)."""
