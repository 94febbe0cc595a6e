"""The partnership: its registry of signatory agencies (``registry.toml``), what the registry
says (:mod:`partnership.registry`), its typed schema (:mod:`partnership.schema`) and reading
the file (:mod:`partnership.registry_file`)."""
