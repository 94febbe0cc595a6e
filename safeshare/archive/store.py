"""The archive store: one interface (``ArchiveStore``) and the values it answers with.

Its backends are SQL (``sql_store``, over ``sqlite`` and ``postgres``), opened by URL
(``url.open_archive``).

Writing is two steps, so that nothing is counted archived that was not read back:

1. ``put``: one transaction stores the record and its histories as ``written`` (a record id
   already stored with the same digest is left as it is; an archived one with another digest
   is refused: nothing is stored twice, and a history that changed is never taken silently;
   a written one, never counted, is replaced);
2. ``confirm``: one transaction, under the writer's lock, reads the record back, checks every
   digest against what was fetched, appends its leaf to the log and marks it ``archived``.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from safeshare.archive.records import ArchiveRecord, IndexFields


@dataclass(frozen=True)
class StoredRecord:
    """A record as read from the store, with its status and place in the log."""

    record: ArchiveRecord
    status: str
    digest: str
    leaf_index: int | None
    archived_at: str | None


@dataclass(frozen=True)
class Leaf:
    """One leaf of the log: a record's entry or a purge's tombstone."""

    index: int
    record_id: str
    kind: str
    """``record`` or ``tombstone``."""
    entry: bytes
    hash: bytes


@dataclass(frozen=True)
class PutOutcome:
    """What ``put`` did: stored it now, or found it stored already (and in which status)."""

    stored: bool
    status: str


@dataclass(frozen=True)
class ArchiveCounts:
    """How many records are in each status, and the log's size."""

    archived: int
    written: int
    purged: int
    leaves: int


class ArchiveStore(ABC):
    """The case archive (see the module docstring for the write protocol)."""

    url: str

    @abstractmethod
    def put(self, record: ArchiveRecord) -> PutOutcome:
        """Store a record as ``written`` unless its id is stored already.

        Raises:
            ArchiveConflict: the id is stored with another digest.
            ArchiveUnavailable: the database cannot be reached.
        """

    @abstractmethod
    def confirm(self, record_id: str, expected_digest: str) -> int:
        """Read a written record back, check it, log it; its leaf index.

        Raises:
            ReadBackMismatch: the stored record does not have ``expected_digest``.
            ArchiveUnavailable: the database cannot be reached.
        """

    @abstractmethod
    def get(self, record_id: str) -> StoredRecord | None:
        """One record with its histories, or None."""

    @abstractmethod
    def records_of_case(self, case_ref: str) -> list[StoredRecord]:
        """Every record of a case (the case itself and any later notices)."""

    @abstractmethod
    def all_records(self) -> list[StoredRecord]:
        """Every record, with histories (verification reads them all)."""

    @abstractmethod
    def index(
        self,
        *,
        closed_before: str | None = None,
        closed_since: str | None = None,
        kind: str | None = None,
        status: str | None = None,
    ) -> list[tuple[str, IndexFields, str]]:
        """(record id, index fields, status) of matching records, by close time."""

    @abstractmethod
    def cases_of_agency(
        self, agency_id: str, below_leaf: int, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, IndexFields]]:
        """Archived cases (requests and disclosures, not notices) that name ``agency_id`` as
        requester, holder or recipient and were logged below leaf ``below_leaf``: (record id,
        index fields), newest close first, from after ``after`` (close time, record id).
        Whether the agency may see each is the caller's to decide."""

    @abstractmethod
    def logged_below(self, record_ids: Sequence[str], below_leaf: int) -> set[str]:
        """Those of ``record_ids`` archived (or purged) at a leaf below ``below_leaf``."""

    @abstractmethod
    def known(self, record_ids: Sequence[str]) -> dict[str, str]:
        """The status of each of these record ids that is stored."""

    @abstractmethod
    def leaves(self) -> list[Leaf]:
        """The whole log, in order."""

    @abstractmethod
    def add_checkpoint(self, size: int, note: str) -> None:
        """Keep a signed checkpoint of the log at ``size``."""

    @abstractmethod
    def checkpoints(self) -> list[tuple[int, str]]:
        """(size, signed note) of every checkpoint, oldest first."""

    @abstractmethod
    def purge(self, record_id: str, by: str, reason: str, at: dt.datetime) -> int:
        """Remove a record's histories and result, leaving its index row and a tombstone
        leaf; the tombstone's leaf index."""

    @abstractmethod
    def counts(self) -> ArchiveCounts:
        """Records by status and the log's size."""

    @abstractmethod
    def log_size(self) -> int:
        """The log's size (its next leaf index), read from the leaves' key alone."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A value the archiver keeps (its watermark)."""

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Keep a value for the archiver."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    def latest_checkpoint(self) -> tuple[int, str] | None:
        """The newest checkpoint, if any."""
        found = self.checkpoints()
        return found[-1] if found else None
