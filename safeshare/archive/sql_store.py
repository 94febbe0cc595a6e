"""The archive in SQL, shared by the SQLite and PostgreSQL backends (``SqlArchiveStore``).

Both run the same SQL (``schema``, and the statements here); a backend supplies its
connection, its placeholder style, its blob type and how it takes the writer's lock. Every
method is synchronous and short; async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from safeshare.archive import merkle
from safeshare.archive.errors import ArchiveConflict, ArchiveError, ReadBackMismatch
from safeshare.archive.records import (
    ARCHIVED,
    CASE,
    PURGED,
    WRITTEN,
    ArchiveRecord,
    History,
    IndexFields,
    sha256_hex,
    tombstone_entry,
)
from safeshare.archive.schema import ADDED_COLUMNS, RECORD_COLUMNS, SCHEMA, index_fields
from safeshare.archive.store import ArchiveCounts, ArchiveStore, Leaf, PutOutcome, StoredRecord


class SqlArchiveStore(ArchiveStore):
    """The archive in SQL shared by the backends; subclasses connect and lock."""

    blob_type = "BLOB"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    # -- what a backend provides ----------------------------------------------------------

    @abstractmethod
    @contextmanager
    def _transaction(self, exclusive: bool = False) -> Iterator[Any]:
        """A cursor inside one transaction (``exclusive``: the single writer's lock), which
        commits on exit and rolls back on error; connection failures are
        ``ArchiveUnavailable``."""

    def _sql(self, statement: str) -> str:
        """The statement in this backend's placeholder style (written with ``?``)."""
        return statement

    def _blob(self, value: Any) -> bytes:
        return bytes(value) if value is not None else b""

    def create_schema(self) -> None:
        """Create the tables if they are not there."""
        with self._transaction() as cursor:
            for statement in SCHEMA.format(blob=self.blob_type).split(";"):
                if statement.strip():
                    cursor.execute(statement)
            present = self._columns(cursor, "records")
            for column in ADDED_COLUMNS:
                if column not in present:
                    cursor.execute(
                        f"ALTER TABLE records ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"
                    )

    def _columns(self, cursor: Any, table: str) -> set[str]:
        """The column names of ``table``."""
        cursor.execute(
            self._sql(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ?"
            ),
            (table,),
        )
        return {str(row[0]) for row in cursor.fetchall()}

    # -- writing --------------------------------------------------------------------------

    def put(self, record: ArchiveRecord) -> PutOutcome:
        digest = record.digest
        with self._lock, self._transaction(exclusive=True) as cursor:
            cursor.execute(
                self._sql("SELECT digest, status FROM records WHERE record_id = ?"),
                (record.record_id,),
            )
            row = cursor.fetchone()
            if row is not None and row[0] != digest and row[1] == WRITTEN:
                # Written but never confirmed (the history changed before the read back, or
                # the archiver died): it was never counted, so this write replaces it.
                cursor.execute(
                    self._sql("DELETE FROM histories WHERE record_id = ?"), (record.record_id,)
                )
                cursor.execute(
                    self._sql("DELETE FROM records WHERE record_id = ?"), (record.record_id,)
                )
                row = None
            if row is not None:
                if row[0] != digest:
                    raise ArchiveConflict(
                        f"{record.record_id} is archived already with other content "
                        f"(digest {row[0][:12]}, now {digest[:12]}): not overwritten"
                    )
                return PutOutcome(stored=False, status=str(row[1]))
            index = record.index
            cursor.execute(
                self._sql(
                    f"INSERT INTO records ({RECORD_COLUMNS}) VALUES "  # noqa: S608
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)"
                ),
                (
                    record.record_id, record.case_ref, record.kind, record.run_id, WRITTEN,
                    index.opened_at, index.closed_at, index.requesting_agency,
                    ",".join(index.holding_agencies), index.purpose, index.urgency,
                    index.outcome, int(index.override_used), int(index.escalated),
                    index.protocol_version, record.result, sha256_hex(record.result), digest,
                    index.disclosure_kind, ",".join(index.recipient_agencies),
                ),
            )  # fmt: skip
            for history in record.histories:
                cursor.execute(
                    self._sql(
                        "INSERT INTO histories (record_id, workflow_id, run_id, workflow_type, "
                        "content, sha256) VALUES (?, ?, ?, ?, ?, ?)"
                    ),
                    (
                        record.record_id, history.workflow_id, history.run_id,
                        history.workflow_type, history.content, history.sha256,
                    ),
                )  # fmt: skip
        return PutOutcome(stored=True, status=WRITTEN)

    def confirm(self, record_id: str, expected_digest: str) -> int:
        with self._lock, self._transaction(exclusive=True) as cursor:
            stored = self._read(cursor, record_id)
            if stored is None:
                raise ReadBackMismatch(f"{record_id} was not found when read back")
            if stored.status == ARCHIVED and stored.leaf_index is not None:
                return stored.leaf_index
            # 👉 The digest is recomputed from what was read back, not taken from the row.
            read_back = stored.record.digest
            if read_back != expected_digest or stored.digest != expected_digest:
                raise ReadBackMismatch(
                    f"{record_id} read back with digest {read_back[:12]}, "
                    f"expected {expected_digest[:12]}: not counted archived"
                )
            leaf_index = self._append_leaf(cursor, record_id, "record", stored.record.entry())
            cursor.execute(
                self._sql(
                    "UPDATE records SET status = ?, leaf_index = ?, archived_at = ? "
                    "WHERE record_id = ?"
                ),
                (ARCHIVED, leaf_index, _now(), record_id),
            )
        return leaf_index

    def _append_leaf(self, cursor: Any, record_id: str, kind: str, entry: bytes) -> int:
        cursor.execute("SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM leaves")
        leaf_index = int(cursor.fetchone()[0])
        cursor.execute(
            self._sql(
                "INSERT INTO leaves (leaf_index, record_id, kind, entry, hash) "
                "VALUES (?, ?, ?, ?, ?)"
            ),
            (leaf_index, record_id, kind, entry, merkle.leaf_hash(entry)),
        )
        return leaf_index

    def purge(self, record_id: str, by: str, reason: str, at: dt.datetime) -> int:
        with self._lock, self._transaction(exclusive=True) as cursor:
            stored = self._read(cursor, record_id)
            if stored is None or stored.status != ARCHIVED or stored.leaf_index is None:
                raise ArchiveError(f"{record_id} is not an archived record")
            entry = tombstone_entry(
                record_id, stored.record.case_ref, stored.digest, stored.leaf_index, by,
                at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), reason,
            )  # fmt: skip
            leaf_index = self._append_leaf(cursor, record_id, "tombstone", entry)
            cursor.execute(self._sql("DELETE FROM histories WHERE record_id = ?"), (record_id,))
            cursor.execute(
                self._sql("UPDATE records SET status = ?, result = NULL WHERE record_id = ?"),
                (PURGED, record_id),
            )
        return leaf_index

    def add_checkpoint(self, size: int, note: str) -> None:
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql("SELECT 1 FROM checkpoints WHERE size = ?"), (size,))
            if cursor.fetchone() is None:
                cursor.execute(
                    self._sql("INSERT INTO checkpoints (size, note, signed_at) VALUES (?, ?, ?)"),
                    (size, note, _now()),
                )

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql("DELETE FROM meta WHERE key = ?"), (key,))
            cursor.execute(self._sql("INSERT INTO meta (key, value) VALUES (?, ?)"), (key, value))

    # -- reading --------------------------------------------------------------------------

    def get(self, record_id: str) -> StoredRecord | None:
        with self._lock, self._transaction() as cursor:
            return self._read(cursor, record_id)

    def records_of_case(self, case_ref: str) -> list[StoredRecord]:
        with self._lock, self._transaction() as cursor:
            cursor.execute(
                self._sql("SELECT record_id FROM records WHERE case_ref = ? ORDER BY record_id"),
                (case_ref,),
            )
            ids = [str(row[0]) for row in cursor.fetchall()]
            return [r for record_id in ids if (r := self._read(cursor, record_id))]

    def all_records(self) -> list[StoredRecord]:
        with self._lock, self._transaction() as cursor:
            cursor.execute("SELECT record_id FROM records ORDER BY record_id")
            ids = [str(row[0]) for row in cursor.fetchall()]
            return [r for record_id in ids if (r := self._read(cursor, record_id))]

    def index(
        self,
        *,
        closed_before: str | None = None,
        closed_since: str | None = None,
        kind: str | None = None,
        status: str | None = None,
    ) -> list[tuple[str, IndexFields, str]]:
        clauses, values = [], []
        for column, op, value in (
            ("closed_at", "<", closed_before), ("closed_at", ">=", closed_since),
            ("kind", "=", kind), ("status", "=", status),
        ):  # fmt: skip
            if value is not None:
                clauses.append(f"{column} {op} ?")
                values.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock, self._transaction() as cursor:
            cursor.execute(
                self._sql(f"SELECT {RECORD_COLUMNS} FROM records{where} ORDER BY closed_at"),  # noqa: S608
                tuple(values),
            )
            return [(str(row[0]), index_fields(row), str(row[4])) for row in cursor.fetchall()]

    def cases_of_agency(
        self, agency_id: str, below_leaf: int, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, IndexFields]]:
        named = f"%,{agency_id},%"
        clauses = [
            "kind = ?", "status = ?", "leaf_index < ?",
            "(requesting_agency = ? OR ',' || holding_agencies || ',' LIKE ? "
            "OR ',' || recipient_agencies || ',' LIKE ?)",
        ]  # fmt: skip
        values: list[Any] = [CASE, ARCHIVED, below_leaf, agency_id, named, named]
        if after is not None:
            clauses.append("(closed_at < ? OR (closed_at = ? AND record_id < ?))")
            values += [after[0], after[0], after[1]]
        values.append(limit)
        with self._lock, self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    f"SELECT {RECORD_COLUMNS} FROM records WHERE {' AND '.join(clauses)} "  # noqa: S608
                    "ORDER BY closed_at DESC, record_id DESC LIMIT ?"
                ),
                tuple(values),
            )
            return [(str(row[0]), index_fields(row)) for row in cursor.fetchall()]

    def logged_below(self, record_ids: Sequence[str], below_leaf: int) -> set[str]:
        found: set[str] = set()
        with self._lock, self._transaction() as cursor:
            for start in range(0, len(record_ids), 500):
                chunk = list(record_ids[start : start + 500])
                marks = ", ".join("?" for _ in chunk)
                cursor.execute(
                    self._sql(
                        "SELECT record_id FROM records WHERE leaf_index < ? "  # noqa: S608
                        f"AND record_id IN ({marks})"
                    ),
                    (below_leaf, *chunk),
                )
                found.update(str(r[0]) for r in cursor.fetchall())
        return found

    def known(self, record_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._lock, self._transaction() as cursor:
            for start in range(0, len(record_ids), 500):
                chunk = list(record_ids[start : start + 500])
                marks = ", ".join("?" for _ in chunk)
                cursor.execute(
                    self._sql(
                        f"SELECT record_id, status FROM records WHERE record_id IN ({marks})"  # noqa: S608
                    ),
                    tuple(chunk),
                )
                found.update({str(r[0]): str(r[1]) for r in cursor.fetchall()})
        return found

    def leaves(self) -> list[Leaf]:
        with self._lock, self._transaction() as cursor:
            cursor.execute(
                "SELECT leaf_index, record_id, kind, entry, hash FROM leaves ORDER BY leaf_index"
            )
            return [
                Leaf(int(r[0]), str(r[1]), str(r[2]), self._blob(r[3]), self._blob(r[4]))
                for r in cursor.fetchall()
            ]

    def checkpoints(self) -> list[tuple[int, str]]:
        with self._lock, self._transaction() as cursor:
            cursor.execute("SELECT size, note FROM checkpoints ORDER BY size")
            return [(int(r[0]), str(r[1])) for r in cursor.fetchall()]

    def counts(self) -> ArchiveCounts:
        with self._lock, self._transaction() as cursor:
            cursor.execute("SELECT status, COUNT(*) FROM records GROUP BY status")
            by_status = {str(r[0]): int(r[1]) for r in cursor.fetchall()}
            cursor.execute("SELECT COUNT(*) FROM leaves")
            leaves = int(cursor.fetchone()[0])
        return ArchiveCounts(
            by_status.get(ARCHIVED, 0), by_status.get(WRITTEN, 0), by_status.get(PURGED, 0), leaves
        )

    def log_size(self) -> int:
        with self._lock, self._transaction() as cursor:
            cursor.execute("SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM leaves")
            return int(cursor.fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql("SELECT value FROM meta WHERE key = ?"), (key,))
            row = cursor.fetchone()
        return None if row is None else str(row[0])

    def _read(self, cursor: Any, record_id: str) -> StoredRecord | None:
        cursor.execute(
            self._sql(f"SELECT {RECORD_COLUMNS} FROM records WHERE record_id = ?"),  # noqa: S608
            (record_id,),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        cursor.execute(
            self._sql(
                "SELECT workflow_id, run_id, workflow_type, content, sha256 FROM histories "
                "WHERE record_id = ? ORDER BY workflow_id, run_id"
            ),
            (record_id,),
        )
        rows = cursor.fetchall()
        histories = [History(str(h[0]), str(h[1]), str(h[2]), self._blob(h[3])) for h in rows]
        record = ArchiveRecord(
            record_id=str(row[0]),
            case_ref=str(row[1]),
            kind=str(row[2]),
            run_id=str(row[3]),
            index=index_fields(row),
            histories=histories,
            result=self._blob(row[15]),
            history_digests=[(str(h[0]), str(h[1]), str(h[2]), str(h[4])) for h in rows],
        )
        return StoredRecord(
            record=record,
            status=str(row[4]),
            digest=str(row[17]),
            leaf_index=None if row[18] is None else int(row[18]),
            archived_at=None if row[19] is None else str(row[19]),
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
