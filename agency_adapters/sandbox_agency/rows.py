"""The sandbox agency's rows: a child and a stored delivery, and each row to and from its proto.

Times are stored as ISO 8601 text in UTC and read back as protobuf ``Timestamp``s.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from protos.sharing.v1 import case_pb2 as pb


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


def iso(stamp: Timestamp) -> str:
    """A timestamp as stored: ISO 8601 in UTC."""
    return stamp.ToDatetime(tzinfo=UTC).isoformat()


def timestamp(iso: str) -> Timestamp:
    """A stored time as a timestamp."""
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(iso))
    return stamp


def child_from_row(row: sqlite3.Row) -> Child:
    """A ``children`` row as a child."""
    return Child(
        key=row["child_key"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        date_of_birth=row["date_of_birth"],
        nhs_number=row["nhs_number"],
        postcode=row["postcode"],
    )


def record_item_from_row(row: sqlite3.Row) -> pb.RecordItem:
    """A ``records`` or ``delivered_items`` row as a record item (its caveats not included)."""
    item = pb.RecordItem(
        item_id=row["item_id"],
        category=row["category"],
        kind=row["kind"],
        source=row["source"],
        content=row["content"],
    )
    if row["recorded_at"]:
        item.recorded_at.CopyFrom(timestamp(row["recorded_at"]))
    return item


def delivery_from_row(row: sqlite3.Row) -> DeliveryRow:
    """A ``deliveries`` row."""
    return DeliveryRow(
        delivery_id=row["delivery_id"],
        case_ref=row["case_ref"],
        holding_agency_id=row["holding_agency_id"],
        content_digest=row["content_digest"],
        item_count=row["item_count"],
        received_at=datetime.fromisoformat(row["received_at"]),
    )


def receipt_for(delivery: DeliveryRow, *, duplicate: bool) -> pb.DeliveryReceipt:
    """The receipt for a stored delivery (``duplicate``: for a repeat of it)."""
    return pb.DeliveryReceipt(
        delivery_id=delivery.delivery_id,
        item_count=delivery.item_count,
        content_digest=delivery.content_digest,
        received_at=timestamp(delivery.received_at.isoformat()),
        duplicate=duplicate,
    )
