"""Records to archive in tests: made-up histories and results (the store never reads them)."""

from __future__ import annotations

import datetime as dt
import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from safeshare.archive.checkpoint import DEFAULT_ORIGIN, VerifierKey
from safeshare.archive.records import CASE, ArchiveRecord, History, IndexFields
from safeshare.archive.store import ArchiveStore
from workflows.ids import case_workflow_id, holder_exchange_workflow_id

HOLDER = "oakfield-primary"


def a_record(closed_at: dt.datetime | None = None, ref: str | None = None) -> ArchiveRecord:
    """A closed case with one exchange, as the archiver would build it."""
    ref = ref or "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(20))
    closed = closed_at or dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    case_id = case_workflow_id(ref)
    exchange_id = holder_exchange_workflow_id(ref, HOLDER)
    return ArchiveRecord(
        record_id=case_id,
        case_ref=ref,
        kind=CASE,
        run_id=f"run-{ref}",
        index=IndexFields(
            closed_at=closed.strftime("%Y-%m-%dT%H:%M:%SZ"),
            opened_at=(closed - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            requesting_agency="northshire-csc",
            holding_agencies=(HOLDER,),
            purpose="SAFEGUARDING",
            urgency="AMBER",
            outcome="SHARED_WITH_CONSENT",
            protocol_version="2026.1",
        ),
        histories=[
            History(case_id, f"run-{ref}", "SharingCase", b'{"events": [1]}\n' + secrets.token_bytes(64)),
            History(exchange_id, f"xrun-{ref}", "HolderExchange", b'{"events": [2]}\n' + secrets.token_bytes(64)),
        ],
        result=b"\x0a\x08encoding" + secrets.token_bytes(48),
    )  # fmt: skip


class LogKey:
    """The archive's checkpoint key and the verifier key an auditor keeps."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.verifier = VerifierKey(DEFAULT_ORIGIN, self.private.public_key())


def archive(store: ArchiveStore, record: ArchiveRecord) -> int:
    """Put and confirm one record, as the archiver does; its leaf index."""
    store.put(record)
    return store.confirm(record.record_id, record.digest)
