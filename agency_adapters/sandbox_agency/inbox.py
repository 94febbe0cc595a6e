"""What the sandbox agency received from SafeShare: deliveries, notifications, withdrawals.

Each is stored once by its id: a repeat stores nothing and is answered as the first was, marked
``duplicate``. The control service reads them back.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from agency_adapters.sandbox_agency.database import Database
from agency_adapters.sandbox_agency.errors import DuplicateItemError
from agency_adapters.sandbox_agency.rows import (
    DeliveryRow,
    delivery_from_row,
    iso,
    receipt_for,
    record_item_from_row,
    timestamp,
)
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb


class Inbox(Database):
    """The deliveries, practitioner notifications and consent-withdrawn notices received."""

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
                return receipt_for(delivery_from_row(row), duplicate=True), True
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
                            iso(item.recorded_at) if item.HasField("recorded_at") else None,
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
        return receipt_for(stored, duplicate=False), False

    def deliveries(self) -> list[DeliveryRow]:
        """Every delivery received, oldest first."""
        rows = self._conn.execute("SELECT * FROM deliveries ORDER BY rowid").fetchall()
        return [delivery_from_row(row) for row in rows]

    def delivered_items(self, delivery_id: str | None = None) -> list[pb.RecordItem]:
        """The items received, of one delivery or of all, in the order received."""
        if delivery_id is None:
            rows = self._conn.execute("SELECT * FROM delivered_items ORDER BY rowid").fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM delivered_items WHERE delivery_id = ? ORDER BY rowid",
                (delivery_id,),
            ).fetchall()
        items = [record_item_from_row(row) for row in rows]
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
                    received_at=timestamp(row["received_at"]),
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
                    iso(request.due_at) if request.HasField("due_at") else None,
                    request.text,
                    received_at,
                ),
            )
        return agency_pb.NotifyPractitionerResponse(
            notification_id=request.notification_id, received_at=timestamp(received_at)
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
                request.due_at.CopyFrom(timestamp(row["due_at"]))
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
                        iso(request.withdrawn_at) if request.HasField("withdrawn_at") else None,
                        known,
                        received_at,
                    ),
                )
        return agency_pb.ReceiveConsentWithdrawnResponse(
            notice_id=request.notice_id,
            duplicate=duplicate,
            deliveries_known=known,
            deliveries_unknown=len(set(ids)) - known,
            received_at=timestamp(received_at),
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
                request.withdrawn_at.CopyFrom(timestamp(row["withdrawn_at"]))
            found.append(request)
        return found
