"""The archive store on both backends (SQLite file and a real PostgreSQL server): the same
tests, through the one interface."""

from __future__ import annotations

import datetime as dt

import pytest

from safeshare.archive.proofs import inclusion_proof, sign_checkpoint, verify_inclusion_document
from safeshare.archive.records import ARCHIVED, PURGED, WRITTEN
from safeshare.archive.store import (
    ArchiveConflict,
    ArchiveStore,
    ArchiveUnavailable,
    ReadBackMismatch,
    open_archive,
)
from safeshare.archive.verify import verify_archive
from tests.safeshare.archive.archive_support import LogKey, a_record, archive


def test_a_record_is_stored_exactly_as_given_and_logged(store: ArchiveStore) -> None:
    record = a_record()
    outcome = store.put(record)
    assert (outcome.stored, outcome.status) == (True, WRITTEN)
    assert store.counts().archived == 0  # written, not yet read back: not archived

    leaf = store.confirm(record.record_id, record.digest)

    stored = store.get(record.record_id)
    assert stored is not None
    assert stored.status == ARCHIVED and stored.leaf_index == leaf == 0
    assert stored.record.result == record.result
    assert {h.workflow_id: h.content for h in stored.record.histories} == {
        h.workflow_id: h.content for h in record.histories
    }
    assert stored.record.index == record.index
    assert store.leaves()[0].entry == record.entry()
    assert store.counts().archived == 1


def test_the_same_record_twice_is_stored_once(store: ArchiveStore) -> None:
    record = a_record()
    archive(store, record)

    again = store.put(record)
    leaf = store.confirm(record.record_id, record.digest)

    assert (again.stored, again.status) == (False, ARCHIVED)
    assert leaf == 0
    assert len(store.leaves()) == 1
    assert store.counts().archived == 1


def test_a_record_whose_history_changed_is_refused_not_overwritten(store: ArchiveStore) -> None:
    record = a_record()
    archive(store, record)
    changed = a_record(ref=record.case_ref)  # same ids, other bytes

    with pytest.raises(ArchiveConflict, match="not overwritten"):
        store.put(changed)

    stored = store.get(record.record_id)
    assert stored is not None and stored.digest == record.digest
    assert len(store.leaves()) == 1


def test_a_record_that_reads_back_otherwise_is_never_counted_archived(
    store: ArchiveStore,
) -> None:
    record = a_record()
    store.put(record)

    with pytest.raises(ReadBackMismatch):
        store.confirm(record.record_id, a_record().digest)

    stored = store.get(record.record_id)
    assert stored is not None and stored.status == WRITTEN
    assert store.counts().archived == 0 and store.leaves() == []


def test_an_inclusion_proof_verifies_offline_with_the_public_key(store: ArchiveStore) -> None:
    key = LogKey()
    records = [a_record() for _ in range(5)]
    for record in records:
        archive(store, record)
    sign_checkpoint(store, key.private)

    for record in records:
        document = inclusion_proof(store, record.record_id)
        checkpoint = verify_inclusion_document(document, key.verifier)
        assert checkpoint.size == 5
        assert document["entry"] == record.entry().decode()


def test_a_purge_leaves_a_tombstone_and_verifies_as_purged(store: ArchiveStore) -> None:
    key = LogKey()
    old, kept = a_record(), a_record()
    archive(store, old)
    archive(store, kept)
    sign_checkpoint(store, key.private)
    earlier = store.latest_checkpoint()
    assert earlier is not None

    store.purge(old.record_id, "auditor-1", "past retention", dt.datetime.now(dt.UTC))
    sign_checkpoint(store, key.private)

    stored = store.get(old.record_id)
    assert stored is not None and stored.status == PURGED
    assert stored.record.histories == [] and stored.record.result == b""
    result = verify_archive(store, key.verifier, older=earlier[1])
    assert result.findings == []
    assert [(p.record_id, p.by, p.reason) for p in result.purged] == [
        (old.record_id, "auditor-1", "past retention")
    ]
    assert store.counts().purged == 1 and len(store.leaves()) == 3


def test_an_untouched_archive_has_no_findings(store: ArchiveStore) -> None:
    key = LogKey()
    for _ in range(3):
        archive(store, a_record())
    sign_checkpoint(store, key.private)
    older = store.latest_checkpoint()
    archive(store, a_record())
    sign_checkpoint(store, key.private)

    result = verify_archive(store, key.verifier, older=older[1] if older else None)

    assert result.findings == []
    assert result.records_checked == 4 and result.leaves == 4 and result.unsigned_leaves == 0


def test_the_index_finds_records_by_close_time(store: ArchiveStore) -> None:
    early = a_record(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    late = a_record(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    archive(store, early)
    archive(store, late)

    found = store.index(closed_before="2021-01-01T00:00:00Z")

    assert [record_id for record_id, _, _ in found] == [early.record_id]
    assert store.known([early.record_id, "case-nothing"]) == {early.record_id: ARCHIVED}


def test_a_database_that_cannot_be_reached_is_unavailable_in_one_line() -> None:
    with pytest.raises(ArchiveUnavailable, match="cannot reach the archive database"):
        open_archive("postgresql://postgres:secret-password@127.0.0.1:1/archive")
    try:
        open_archive("postgresql://postgres:secret-password@127.0.0.1:1/archive")
    except ArchiveUnavailable as err:
        assert "secret-password" not in str(err)
