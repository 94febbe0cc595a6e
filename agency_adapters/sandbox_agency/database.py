"""The sandbox agency's database: one SQLite file (WAL mode) behind one connection.

Queries are tiny and local, so the servicer calls the store's methods directly on the event
loop; one connection on one thread keeps SQLite's transactions simple and correct.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS children (
    child_key TEXT PRIMARY KEY,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    nhs_number TEXT NOT NULL,
    postcode TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consents (
    child_key TEXT PRIMARY KEY REFERENCES children(child_key),
    status INTEGER NOT NULL,
    given_by_relationship TEXT NOT NULL,
    parental_responsibility INTEGER NOT NULL,
    purposes TEXT NOT NULL,
    recipient_agency_ids TEXT NOT NULL,
    categories TEXT NOT NULL,
    valid_from TEXT,
    valid_until TEXT,
    verification TEXT NOT NULL,
    views_expressed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    item_id TEXT PRIMARY KEY,
    child_key TEXT NOT NULL REFERENCES children(child_key),
    category INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    source TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    case_ref TEXT NOT NULL,
    holding_agency_id TEXT NOT NULL,
    content_digest TEXT NOT NULL,
    item_count INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS delivered_items (
    delivery_id TEXT NOT NULL REFERENCES deliveries(delivery_id),
    item_id TEXT NOT NULL,
    category INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    source TEXT NOT NULL,
    recorded_at TEXT,
    content TEXT NOT NULL,
    UNIQUE (delivery_id, item_id)
);
CREATE TABLE IF NOT EXISTS delivered_bases (
    delivery_id TEXT NOT NULL REFERENCES deliveries(delivery_id),
    item_id TEXT NOT NULL,
    basis BLOB NOT NULL,
    UNIQUE (delivery_id, item_id)
);
CREATE TABLE IF NOT EXISTS delivered_caveats (
    delivery_id TEXT NOT NULL REFERENCES deliveries(delivery_id),
    item_id TEXT NOT NULL,
    caveat INTEGER NOT NULL,
    UNIQUE (delivery_id, item_id, caveat)
);
CREATE TABLE IF NOT EXISTS notifications (
    notification_id TEXT PRIMARY KEY,
    case_ref TEXT NOT NULL,
    kind INTEGER NOT NULL,
    practitioner_role TEXT NOT NULL,
    practitioner_user_id TEXT NOT NULL,
    step TEXT NOT NULL,
    due_at TEXT,
    text TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS withdrawals (
    notice_id TEXT PRIMARY KEY,
    case_ref TEXT NOT NULL,
    holding_agency_id TEXT NOT NULL,
    delivery_ids TEXT NOT NULL,
    withdrawn_at TEXT,
    deliveries_known INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
"""


class Database:
    """The connection, the schema, and one way to write: an explicit immediate transaction."""

    def __init__(self, db_path: Path) -> None:
        """Open (and create if needed) the database at ``db_path``."""
        db_path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (see _transaction), never implicit.
        self._conn = sqlite3.connect(db_path, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so check-then-insert cannot interleave
        # with another writer on the same file.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
