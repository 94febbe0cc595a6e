"""The sandbox agency's records: one SQLite file (WAL mode) behind one connection.

Queries are tiny and local, so the servicer calls these methods directly on the event loop;
one connection on one thread keeps SQLite's transactions simple and correct.
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb

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


class StoreError(Exception):
    """The sandbox store refused a write."""


class DuplicateItemError(StoreError):
    """A delivery names the same item id twice."""


@dataclass(frozen=True)
class Child:
    """A child known to the sandbox agency (fictional)."""

    key: str
    """A short, stable handle for the scenario, e.g. "consent-given"."""
    given_name: str
    family_name: str
    date_of_birth: str
    """ISO 8601, YYYY-MM-DD."""
    nhs_number: str
    """10 digits, in the NHS test range (999...)."""
    postcode: str


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery as the sandbox stored it."""

    delivery_id: str
    case_ref: str
    holding_agency_id: str
    content_digest: str
    item_count: int
    received_at: datetime


class SubjectMismatch(Exception):
    """A subject's NHS number is known here, but the name or date of birth is another child's."""


def _name(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _same_child(child: Child, subject: pb.Subject) -> bool:
    return (
        _name(child.given_name) == _name(subject.given_name)
        and _name(child.family_name) == _name(subject.family_name)
        and child.date_of_birth == subject.date_of_birth.strip()
    )


class SandboxStore:
    """The sandbox agency's children, consents, records and received deliveries."""

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

    # -- seeding -------------------------------------------------------------------------

    def is_empty(self) -> bool:
        """Whether no child has been stored yet."""
        return self._conn.execute("SELECT 1 FROM children LIMIT 1").fetchone() is None

    def add_children(
        self,
        children: Iterable[Child],
        consents: Mapping[str, pb.ConsentRecord],
        records: Mapping[str, Sequence[pb.RecordItem]],
    ) -> None:
        """Store children with their consent records and record items, in one transaction.

        Args:
            children: the children.
            consents: consent record by child key (absent: none recorded).
            records: record items by child key.
        """
        with self._transaction() as conn:
            for child in children:
                conn.execute(
                    "INSERT INTO children VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        child.key,
                        child.given_name,
                        child.family_name,
                        child.date_of_birth,
                        child.nhs_number,
                        child.postcode,
                    ),
                )
                if (consent := consents.get(child.key)) is not None:
                    conn.execute(
                        "INSERT INTO consents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            child.key,
                            consent.status,
                            consent.given_by_relationship,
                            int(consent.parental_responsibility),
                            json.dumps(list(consent.purposes)),
                            json.dumps(list(consent.recipient_agency_ids)),
                            json.dumps(list(consent.categories)),
                            _iso(consent.valid_from) if consent.HasField("valid_from") else None,
                            _iso(consent.valid_until) if consent.HasField("valid_until") else None,
                            consent.verification,
                            consent.views_expressed,
                        ),
                    )
                for item in records.get(child.key, ()):
                    conn.execute(
                        "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            item.item_id,
                            child.key,
                            item.category,
                            item.kind,
                            item.source,
                            _iso(item.recorded_at),
                            item.content,
                        ),
                    )

    # -- reading -------------------------------------------------------------------------

    def children(self) -> list[Child]:
        """Every child, in insertion order."""
        rows = self._conn.execute("SELECT * FROM children ORDER BY rowid").fetchall()
        return [_child(row) for row in rows]

    def find_child(self, subjects: Iterable[pb.Subject]) -> Child | None:
        """The child among ``subjects`` that this agency knows, if any.

        Each ``SUBJECT_ROLE_CHILD`` subject with an NHS number is matched on the NHS number AND
        the given and family name AND the date of birth: an NHS number alone is one typo (or
        one copied value) away from another child's records. Names compare case-insensitively,
        trimmed, with inner whitespace collapsed and Unicode normalised (NFKC). A subject
        without an NHS number is matched on name and date of birth.

        Raises:
            SubjectMismatch: an NHS number this agency knows, given with another child's name
                or date of birth.
        """
        for subject in subjects:
            if subject.role != pb.SUBJECT_ROLE_CHILD:
                continue
            if subject.nhs_number:
                row = self._conn.execute(
                    "SELECT * FROM children WHERE nhs_number = ?", (subject.nhs_number,)
                ).fetchone()
                if row is None:
                    continue
                child = _child(row)
                if not _same_child(child, subject):
                    raise SubjectMismatch(
                        "the NHS number is known here for a child with another name or date "
                        "of birth: check the subject's details"
                    )
                return child
            for row in self._conn.execute(
                "SELECT * FROM children WHERE date_of_birth = ?", (subject.date_of_birth,)
            ).fetchall():
                child = _child(row)
                if _same_child(child, subject):
                    return child
        return None

    def consent_for(self, child: Child) -> pb.ConsentRecord | None:
        """The consent record held for ``child``, or None when none is recorded."""
        row = self._conn.execute(
            "SELECT * FROM consents WHERE child_key = ?", (child.key,)
        ).fetchone()
        if row is None:
            return None
        consent = pb.ConsentRecord(
            status=row["status"],
            given_by_relationship=row["given_by_relationship"],
            parental_responsibility=bool(row["parental_responsibility"]),
            purposes=json.loads(row["purposes"]),
            recipient_agency_ids=json.loads(row["recipient_agency_ids"]),
            categories=json.loads(row["categories"]),
            verification=row["verification"],
            views_expressed=row["views_expressed"],
            # One record per child here, never edited: its id follows the child's, version 1.
            record_id=f"consent-{child.key}",
            version=1,
        )
        if row["valid_from"]:
            consent.valid_from.CopyFrom(_timestamp(row["valid_from"]))
        if row["valid_until"]:
            consent.valid_until.CopyFrom(_timestamp(row["valid_until"]))
        return consent

    def records_for(
        self, child: Child, categories: Iterable[pb.InformationCategory.ValueType]
    ) -> list[pb.RecordItem]:
        """The record items about ``child`` in ``categories``, in the order recorded."""
        wanted = sorted(set(categories))
        if not wanted:
            return []
        marks = ", ".join("?" for _ in wanted)
        rows = self._conn.execute(
            f"SELECT * FROM records WHERE child_key = ? AND category IN ({marks})"  # noqa: S608
            " ORDER BY rowid",
            (child.key, *wanted),
        ).fetchall()
        return [_record_item(row) for row in rows]

    def held_categories(self) -> set[pb.InformationCategory.ValueType]:
        """The categories this agency holds any record in."""
        rows = self._conn.execute("SELECT DISTINCT category FROM records").fetchall()
        return {pb.InformationCategory.ValueType(row["category"]) for row in rows}

    # -- deliveries ----------------------------------------------------------------------

    def receive_delivery(
        self, request: agency_pb.ReceiveDeliveryRequest, *, now: datetime | None = None
    ) -> tuple[pb.DeliveryReceipt, bool]:
        """Store a delivery once: a repeat of its ``delivery_id`` stores nothing.

        The digest is trusted here; the servicer checks it first.

        Args:
            request: the delivery.
            now: when it is received (defaults to the clock), for tests.

        Returns:
            The receipt, the first one for a repeat, and whether this was a repeat
            (also set as ``receipt.duplicate``).

        Raises:
            DuplicateItemError: the delivery names one item id twice; nothing is stored.
        """
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT * FROM deliveries WHERE delivery_id = ?", (request.delivery_id,)
            ).fetchone()
            if row is not None:
                return _receipt(_delivery(row), duplicate=True), True
            received_at = (now or datetime.now(UTC)).astimezone(UTC)
            conn.execute(
                "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?)",
                (
                    request.delivery_id,
                    request.case_ref,
                    request.holding_agency_id,
                    request.content_digest,
                    len(request.items),
                    received_at.isoformat(),
                ),
            )
            try:
                conn.executemany(
                    "INSERT INTO delivered_items VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            request.delivery_id,
                            item.item_id,
                            item.category,
                            item.kind,
                            item.source,
                            # Kept unset when the sender left it unset: stored as sent.
                            _iso(item.recorded_at) if item.HasField("recorded_at") else None,
                            item.content,
                        )
                        for item in request.items
                    ],
                )
                # The basis each item was shared on is kept with it (serialised SharingBasis).
                conn.executemany(
                    "INSERT INTO delivered_bases VALUES (?, ?, ?)",
                    [
                        (request.delivery_id, b.item_id, b.basis.SerializeToString())
                        for b in request.item_bases
                    ],
                )
            except sqlite3.IntegrityError as err:
                raise DuplicateItemError("a delivery names the same item id twice") from err
            # Each item's handling caveats, stored with it (a disclosure's, e.g. "DSL only").
            conn.executemany(
                "INSERT OR IGNORE INTO delivered_caveats VALUES (?, ?, ?)",
                [
                    (request.delivery_id, item.item_id, caveat)
                    for item in request.items
                    for caveat in item.caveats
                ],
            )
            stored = DeliveryRow(
                delivery_id=request.delivery_id,
                case_ref=request.case_ref,
                holding_agency_id=request.holding_agency_id,
                content_digest=request.content_digest,
                item_count=len(request.items),
                received_at=received_at,
            )
        return _receipt(stored, duplicate=False), False

    def deliveries(self) -> list[DeliveryRow]:
        """Every delivery received, oldest first."""
        rows = self._conn.execute("SELECT * FROM deliveries ORDER BY rowid").fetchall()
        return [_delivery(row) for row in rows]

    def delivered_items(self, delivery_id: str | None = None) -> list[pb.RecordItem]:
        """The items received, of one delivery or of all, in the order received."""
        if delivery_id is None:
            rows = self._conn.execute("SELECT * FROM delivered_items ORDER BY rowid").fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM delivered_items WHERE delivery_id = ? ORDER BY rowid",
                (delivery_id,),
            ).fetchall()
        items = [_record_item(row) for row in rows]
        caveats = self._conn.execute(
            "SELECT delivery_id, item_id, caveat FROM delivered_caveats ORDER BY rowid"
        ).fetchall()
        by_item: dict[tuple[str, str], list[int]] = {}
        for caveat in caveats:
            key = (caveat["delivery_id"], caveat["item_id"])
            by_item.setdefault(key, []).append(caveat["caveat"])
        for row, item in zip(rows, items, strict=True):
            item.caveats.extend(
                pb.HandlingCaveat.ValueType(c)
                for c in by_item.get((row["delivery_id"], item.item_id), [])
            )
        return items

    def delivered_bases(self, delivery_id: str | None = None) -> dict[str, pb.SharingBasis]:
        """The basis of each item received (by item id), of one delivery or of all."""
        query, args = "SELECT * FROM delivered_bases ORDER BY rowid", ()
        if delivery_id is not None:
            query = "SELECT * FROM delivered_bases WHERE delivery_id = ? ORDER BY rowid"
            args = (delivery_id,)  # type: ignore[assignment]
        found = {}
        for row in self._conn.execute(query, args).fetchall():
            basis = pb.SharingBasis()
            basis.ParseFromString(row["basis"])
            found[row["item_id"]] = basis
        return found

    # -- notifications and consent withdrawals ---------------------------------------------

    def receive_notification(
        self, request: agency_pb.NotifyPractitionerRequest, *, now: datetime | None = None
    ) -> agency_pb.NotifyPractitionerResponse:
        """Store a practitioner notification once; a repeat of its id stores nothing.

        Returns:
            The response, with the first receive time and ``duplicate`` for a repeat.
        """
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT received_at FROM notifications WHERE notification_id = ?",
                (request.notification_id,),
            ).fetchone()
            if row is not None:
                return agency_pb.NotifyPractitionerResponse(
                    notification_id=request.notification_id,
                    duplicate=True,
                    received_at=_timestamp(row["received_at"]),
                )
            received_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
            conn.execute(
                "INSERT INTO notifications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.notification_id,
                    request.case_ref,
                    request.kind,
                    request.practitioner_role,
                    request.practitioner_user_id,
                    request.step,
                    _iso(request.due_at) if request.HasField("due_at") else None,
                    request.text,
                    received_at,
                ),
            )
        return agency_pb.NotifyPractitionerResponse(
            notification_id=request.notification_id, received_at=_timestamp(received_at)
        )

    def notifications(self) -> list[agency_pb.NotifyPractitionerRequest]:
        """Every notification received, oldest first, as it was sent."""
        rows = self._conn.execute("SELECT * FROM notifications ORDER BY rowid").fetchall()
        found = []
        for row in rows:
            request = agency_pb.NotifyPractitionerRequest(
                notification_id=row["notification_id"],
                case_ref=row["case_ref"],
                kind=row["kind"],
                practitioner_role=row["practitioner_role"],
                practitioner_user_id=row["practitioner_user_id"],
                step=row["step"],
                text=row["text"],
            )
            if row["due_at"]:
                request.due_at.CopyFrom(_timestamp(row["due_at"]))
            found.append(request)
        return found

    def receive_withdrawal(
        self, request: agency_pb.ReceiveConsentWithdrawnRequest, *, now: datetime | None = None
    ) -> agency_pb.ReceiveConsentWithdrawnResponse:
        """Store a consent-withdrawn notice once; a repeat of its id stores nothing.

        Returns:
            The response: how many of its deliveries this agency holds, the first receive
            time, and ``duplicate`` for a repeat.
        """
        ids = list(request.delivery_ids)
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT deliveries_known, received_at FROM withdrawals WHERE notice_id = ?",
                (request.notice_id,),
            ).fetchone()
            if row is not None:
                known, received_at, duplicate = row["deliveries_known"], row["received_at"], True
            else:
                marks = ", ".join("?" for _ in ids)
                known = (
                    conn.execute(
                        f"SELECT COUNT(*) FROM deliveries WHERE delivery_id IN ({marks})",  # noqa: S608
                        ids,
                    ).fetchone()[0]
                    if ids
                    else 0
                )
                received_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
                duplicate = False
                conn.execute(
                    "INSERT INTO withdrawals VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        request.notice_id,
                        request.case_ref,
                        request.holding_agency_id,
                        json.dumps(ids),
                        _iso(request.withdrawn_at) if request.HasField("withdrawn_at") else None,
                        known,
                        received_at,
                    ),
                )
        return agency_pb.ReceiveConsentWithdrawnResponse(
            notice_id=request.notice_id,
            duplicate=duplicate,
            deliveries_known=known,
            deliveries_unknown=len(set(ids)) - known,
            received_at=_timestamp(received_at),
        )

    def withdrawals(self) -> list[agency_pb.ReceiveConsentWithdrawnRequest]:
        """Every consent-withdrawn notice received, oldest first."""
        rows = self._conn.execute("SELECT * FROM withdrawals ORDER BY rowid").fetchall()
        found = []
        for row in rows:
            request = agency_pb.ReceiveConsentWithdrawnRequest(
                notice_id=row["notice_id"],
                case_ref=row["case_ref"],
                holding_agency_id=row["holding_agency_id"],
                delivery_ids=json.loads(row["delivery_ids"]),
            )
            if row["withdrawn_at"]:
                request.withdrawn_at.CopyFrom(_timestamp(row["withdrawn_at"]))
            found.append(request)
        return found


def _iso(stamp: Timestamp) -> str:
    return stamp.ToDatetime(tzinfo=UTC).isoformat()


def _timestamp(iso: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(iso))
    return stamp


def _child(row: sqlite3.Row) -> Child:
    return Child(
        key=row["child_key"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        date_of_birth=row["date_of_birth"],
        nhs_number=row["nhs_number"],
        postcode=row["postcode"],
    )


def _record_item(row: sqlite3.Row) -> pb.RecordItem:
    item = pb.RecordItem(
        item_id=row["item_id"],
        category=row["category"],
        kind=row["kind"],
        source=row["source"],
        content=row["content"],
    )
    if row["recorded_at"]:
        item.recorded_at.CopyFrom(_timestamp(row["recorded_at"]))
    return item


def _delivery(row: sqlite3.Row) -> DeliveryRow:
    return DeliveryRow(
        delivery_id=row["delivery_id"],
        case_ref=row["case_ref"],
        holding_agency_id=row["holding_agency_id"],
        content_digest=row["content_digest"],
        item_count=row["item_count"],
        received_at=datetime.fromisoformat(row["received_at"]),
    )


def _receipt(delivery: DeliveryRow, *, duplicate: bool) -> pb.DeliveryReceipt:
    return pb.DeliveryReceipt(
        delivery_id=delivery.delivery_id,
        item_count=delivery.item_count,
        content_digest=delivery.content_digest,
        received_at=_timestamp(delivery.received_at.isoformat()),
        duplicate=duplicate,
    )
