"""The archive's tables, as the SQL both backends run, and how a records row reads back.

``{blob}`` in the schema is the backend's binary type (``BLOB``, ``BYTEA``). Columns added
after the first archives were written are added to an older database when it is opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safeshare.archive.records import IndexFields

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY,
    case_ref TEXT NOT NULL,
    kind TEXT NOT NULL,
    run_id TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT NOT NULL,
    requesting_agency TEXT NOT NULL,
    holding_agencies TEXT NOT NULL,
    purpose TEXT NOT NULL,
    urgency TEXT NOT NULL,
    outcome TEXT NOT NULL,
    override_used INTEGER NOT NULL,
    escalated INTEGER NOT NULL,
    protocol_version TEXT NOT NULL,
    result {blob},
    result_sha256 TEXT NOT NULL,
    digest TEXT NOT NULL,
    leaf_index INTEGER,
    archived_at TEXT,
    disclosure_kind TEXT NOT NULL DEFAULT '',
    recipient_agencies TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS records_case ON records (case_ref);
CREATE INDEX IF NOT EXISTS records_closed ON records (closed_at);
CREATE TABLE IF NOT EXISTS histories (
    record_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    workflow_type TEXT NOT NULL,
    content {blob} NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (record_id, workflow_id, run_id)
);
CREATE TABLE IF NOT EXISTS leaves (
    leaf_index INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    entry {blob} NOT NULL,
    hash {blob} NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL,
    signed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Statements are built from these constants and "?" placeholders only (S608 where they are
# used): every value is a bound parameter.
RECORD_COLUMNS = (
    "record_id, case_ref, kind, run_id, status, opened_at, closed_at, requesting_agency, "
    "holding_agencies, purpose, urgency, outcome, override_used, escalated, protocol_version, "
    "result, result_sha256, digest, leaf_index, archived_at, disclosure_kind, recipient_agencies"
)
# Columns added after the first archives were written: added to an older file on open.
ADDED_COLUMNS = ("disclosure_kind", "recipient_agencies")


def index_fields(row: Sequence[Any]) -> IndexFields:
    """The index fields of a records row selected as ``RECORD_COLUMNS``."""
    return IndexFields(
        opened_at=str(row[5]),
        closed_at=str(row[6]),
        requesting_agency=str(row[7]),
        holding_agencies=tuple(a for a in str(row[8]).split(",") if a),
        purpose=str(row[9]),
        urgency=str(row[10]),
        outcome=str(row[11]),
        override_used=bool(row[12]),
        escalated=bool(row[13]),
        protocol_version=str(row[14]),
        disclosure_kind=str(row[20] or ""),
        recipient_agencies=tuple(a for a in str(row[21] or "").split(",") if a),
    )
