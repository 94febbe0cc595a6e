"""The archive's errors: one base, and the failures its callers tell apart.

``ArchiveUnavailable`` (``ArchiveFull`` among them) is worth trying again later;
``ArchiveConflict`` and ``ReadBackMismatch`` mean a record did not check and is not counted;
``UnreadableRecord`` means a counted record no longer reads (gRPC ``DATA_LOSS``).
"""

from __future__ import annotations


class ArchiveError(Exception):
    """An archive operation failed (the base of the archive's errors)."""


class ArchiveUnavailable(ArchiveError):
    """The archive database cannot be reached or written (down, locked, disk full): retry."""


class ArchiveFull(ArchiveUnavailable):
    """The archive's disk (or its database's quota) is full: nothing was written; retried once
    there is room again."""


class ArchiveConflict(ArchiveError):
    """A record id is stored already with other content: refused, never overwritten."""


class ReadBackMismatch(ArchiveError):
    """What was read back is not what was written: the record is not counted archived."""


class RetentionError(ArchiveError):
    """A purge asked for records still inside the partnership's retention."""


class UnreadableRecord(ArchiveError):
    """An archived record is there but does not read: its bytes were altered or cut short
    (``safeshare archive verify`` names what changed). Never answered as if it were absent."""
