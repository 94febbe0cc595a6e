"""What the archive keeps of one closed workflow, and the log entry that commits to it.

An archived *record* is one decision-carrying workflow that closed: a ``SharingCase`` with its
``HolderExchange`` children (record id ``case-<ref>``), or a ``ConsentWithdrawalNotice``
(record id ``case-<ref>.<holder>.consent-withdrawn``), which may close long after its case.
It holds:

- the histories exactly as Temporal gives them (the JSON history format, payloads as stored:
  encrypted ones stay encrypted), byte for byte what ``safeshare audit export`` writes;
- the workflow's result payload (the decision record), as stored: encrypted under the
  payload key ring, so writing it needs no keys;
- index fields that are not personal data, from search attributes and visibility only.

The log entry is canonical JSON (sorted keys, no spaces) naming every digest and index field,
so changing any of them changes the leaf hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

ENTRY_VERSION = 1
CASE = "case"
CONSENT_WITHDRAWAL = "consent-withdrawal"
ARCHIVED = "archived"
WRITTEN = "written"
PURGED = "purged"


def sha256_hex(content: bytes) -> str:
    """The hex SHA-256 of ``content``."""
    return hashlib.sha256(content).hexdigest()


def canonical(document: dict[str, Any]) -> bytes:
    """Canonical JSON: the same document always gives the same bytes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class IndexFields:
    """What the archive can be searched by: codes, agency ids and times, never content."""

    closed_at: str
    """Close time, RFC 3339 UTC (``...Z``)."""
    opened_at: str = ""
    requesting_agency: str = ""
    holding_agencies: tuple[str, ...] = ()
    purpose: str = ""
    urgency: str = ""
    outcome: str = ""
    override_used: bool = False
    escalated: bool = False
    protocol_version: str = ""
    disclosure_kind: str = ""
    """A disclosure's kind (``OPERATION_ENCOMPASS``...); empty for a request."""
    recipient_agencies: tuple[str, ...] = ()
    """A disclosure's recipients; empty for a request (its recipient is the requester)."""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON object (agencies as lists). A disclosure's fields appear only
        when set, so the entry of a request (and of any record archived before they existed)
        is what it always was."""
        values = asdict(self)
        values["holding_agencies"] = list(self.holding_agencies)
        values["recipient_agencies"] = list(self.recipient_agencies)
        for name in ("disclosure_kind", "recipient_agencies"):
            if not values[name]:
                del values[name]
        return values


@dataclass(frozen=True)
class History:
    """One workflow's history file as stored."""

    workflow_id: str
    run_id: str
    workflow_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        """Its digest."""
        return sha256_hex(self.content)


@dataclass(frozen=True)
class ArchiveRecord:
    """One closed workflow (and its children) as the archive keeps it."""

    record_id: str
    case_ref: str
    kind: str
    run_id: str
    index: IndexFields
    histories: Sequence[History]
    result: bytes
    """The result payload as stored (a serialized ``temporal.api.common.v1.Payload``)."""
    history_digests: Sequence[tuple[str, str, str, str]] = field(default=())
    """Set when read back: (workflow id, run id, type, stored digest) per history row."""

    def entry(self) -> bytes:
        """The log entry that commits to this record: canonical JSON of every digest."""
        return entry_bytes(
            self.record_id,
            self.case_ref,
            self.kind,
            self.run_id,
            self.index,
            [(h.workflow_id, h.run_id, h.workflow_type, h.sha256) for h in self.histories],
            sha256_hex(self.result),
        )

    @property
    def digest(self) -> str:
        """The digest of the entry: what identifies this exact content."""
        return sha256_hex(self.entry())


def entry_bytes(
    record_id: str,
    case_ref: str,
    kind: str,
    run_id: str,
    index: IndexFields,
    histories: Sequence[tuple[str, str, str, str]],
    result_sha256: str,
) -> bytes:
    """The canonical entry for these values (``ArchiveRecord.entry`` and verification)."""
    return canonical(
        {
            "v": ENTRY_VERSION,
            "type": "record",
            "record_id": record_id,
            "case_ref": case_ref,
            "kind": kind,
            "run_id": run_id,
            "index": index.as_dict(),
            "histories": [
                {"workflow_id": w, "run_id": r, "workflow_type": t, "sha256": d}
                for w, r, t, d in sorted(histories)
            ],
            "result_sha256": result_sha256,
        }
    )


def tombstone_entry(
    record_id: str, case_ref: str, digest: str, removed_leaf: int, by: str, at: str, reason: str
) -> bytes:
    """The log entry that records a purge: which record, whose digest, who, when and why."""
    return canonical(
        {
            "v": ENTRY_VERSION,
            "type": "tombstone",
            "record_id": record_id,
            "case_ref": case_ref,
            "digest": digest,
            "leaf_index": removed_leaf,
            "by": by,
            "at": at,
            "reason": reason,
        }
    )
