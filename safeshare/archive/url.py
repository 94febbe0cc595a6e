"""The archive a URL names: ``open_archive(url)`` opens it with its backend, and
``default_archive_url()`` is the one readers use when none is named.

- ``sqlite:///path/archive.db`` (or a plain path): a SQLite file, the embedded default;
- ``postgresql://user@host:port/db``: a PostgreSQL database (psycopg 3).
"""

from __future__ import annotations

import os
from pathlib import Path

from safeshare.archive.errors import ArchiveError
from safeshare.archive.sql_store import SqlArchiveStore
from safeshare.archive.store import ArchiveStore

DEFAULT_ARCHIVE_PATH = ".safeshare/archive.db"
ARCHIVE_URL_ENV = "SAFESHARE_ARCHIVE_URL"


def default_archive_url() -> str | None:
    """The archive readers use when none is named: ``SAFESHARE_ARCHIVE_URL``, else the dev
    stack's file if it exists here, else None (read Temporal only)."""
    if url := os.environ.get(ARCHIVE_URL_ENV):
        return url
    path = Path(DEFAULT_ARCHIVE_PATH)
    return f"sqlite:///{path.resolve()}" if path.exists() else None


def open_archive(url: str) -> ArchiveStore:
    """The archive at ``url`` (``sqlite:///path``, a plain path, or ``postgresql://...``),
    its tables created if missing.

    Raises:
        ArchiveUnavailable: it cannot be opened.
        ArchiveError: a URL of no known kind.
    """
    # 👉 Each backend is imported only when its kind is opened (psycopg only for PostgreSQL).
    if url.startswith(("postgresql://", "postgres://")):
        from safeshare.archive.postgres import PostgresArchiveStore

        store: SqlArchiveStore = PostgresArchiveStore(url)
    elif url.startswith("sqlite:") or "://" not in url:
        from safeshare.archive.sqlite import SqliteArchiveStore

        store = SqliteArchiveStore(url)
    else:
        raise ArchiveError(
            f"unknown archive URL {url.split('://')[0]}://: use sqlite or postgresql"
        )
    store.create_schema()
    return store
