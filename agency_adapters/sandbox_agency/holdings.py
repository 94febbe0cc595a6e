"""What the sandbox agency holds: its children, their consent records and record items.

Seeded once (``seed.py``); read to answer a consent lookup and a records extraction, matching the
request's subjects to a child on the NHS number, names and date of birth together.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from agency_adapters.sandbox_agency.database import Database
from agency_adapters.sandbox_agency.errors import SubjectMismatch
from agency_adapters.sandbox_agency.rows import (
    Child,
    child_from_row,
    iso,
    record_item_from_row,
    timestamp,
)
from protos.sharing.v1 import case_pb2 as pb


def _name(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _same_child(child: Child, subject: pb.Subject) -> bool:
    return (
        _name(child.given_name) == _name(subject.given_name)
        and _name(child.family_name) == _name(subject.family_name)
        and child.date_of_birth == subject.date_of_birth.strip()
    )


class Holdings(Database):
    """The agency's children, consents and records."""

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
                            iso(consent.valid_from) if consent.HasField("valid_from") else None,
                            iso(consent.valid_until) if consent.HasField("valid_until") else None,
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
                            iso(item.recorded_at),
                            item.content,
                        ),
                    )

    # -- reading -------------------------------------------------------------------------

    def children(self) -> list[Child]:
        """Every child, in insertion order."""
        rows = self._conn.execute("SELECT * FROM children ORDER BY rowid").fetchall()
        return [child_from_row(row) for row in rows]

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
                child = child_from_row(row)
                if not _same_child(child, subject):
                    raise SubjectMismatch(
                        "the NHS number is known here for a child with another name or date "
                        "of birth: check the subject's details"
                    )
                return child
            for row in self._conn.execute(
                "SELECT * FROM children WHERE date_of_birth = ?", (subject.date_of_birth,)
            ).fetchall():
                child = child_from_row(row)
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
            consent.valid_from.CopyFrom(timestamp(row["valid_from"]))
        if row["valid_until"]:
            consent.valid_until.CopyFrom(timestamp(row["valid_until"]))
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
        return [record_item_from_row(row) for row in rows]

    def held_categories(self) -> set[pb.InformationCategory.ValueType]:
        """The categories this agency holds any record in."""
        rows = self._conn.execute("SELECT DISTINCT category FROM records").fetchall()
        return {pb.InformationCategory.ValueType(row["category"]) for row in rows}
