"""The archive store on both backends (SQLite file and a real PostgreSQL server): the same
tests, through the one interface."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from safeshare.archive.errors import ArchiveConflict, ArchiveUnavailable, ReadBackMismatch
from safeshare.archive.proofs import inclusion_proof, sign_checkpoint, verify_inclusion_document
from safeshare.archive.records import ARCHIVED, PURGED, WRITTEN
from safeshare.archive.store import ArchiveStore
from safeshare.archive.url import open_archive
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


def test_cases_of_an_agency_are_listed_newest_first_below_a_log_size(store: ArchiveStore) -> None:
    """What ListCases reads: the cases naming the agency as requester, holder or recipient,
    logged below a size, newest close first, from a position; notices and others' cases not."""
    base = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    requests = [a_record(closed_at=base + dt.timedelta(hours=h)) for h in range(3)]
    others = a_record(closed_at=base)
    others = replace(others, index=replace(others.index, requesting_agency="riverside-gp",
                                           holding_agencies=("northshire-police",)))  # fmt: skip
    told = a_record(closed_at=base + dt.timedelta(hours=5))
    told = replace(told, index=replace(
        told.index, requesting_agency="", holding_agencies=("northshire-police",),
        disclosure_kind="OPERATION_ENCOMPASS", recipient_agencies=("oakfield-primary", "x-school"),
    ))  # fmt: skip
    for record in (*requests, others, told):
        archive(store, record)
    size = store.counts().leaves
    assert store.log_size() == size == 5

    def ids(agency: str, after: tuple[str, str] | None = None, limit: int = 10) -> list[str]:
        return [r for r, _ in store.cases_of_agency(agency, size, after, limit)]

    newest_first = [r.record_id for r in reversed(requests)]
    assert ids("northshire-csc") == newest_first
    assert ids("oakfield-primary") == [told.record_id, *newest_first]  # holder and recipient
    assert ids("x-school") == [told.record_id]  # one recipient among several
    assert ids("x-schoo") == [] and ids("school") == []  # whole ids only
    assert ids("northshire-police") == [told.record_id, others.record_id]
    # Paged from the last row seen; a smaller log size leaves later leaves out.
    first = store.cases_of_agency("northshire-csc", size, None, 2)
    last = (first[-1][1].closed_at, first[-1][0])
    assert ids("northshire-csc", after=last) == newest_first[2:]
    assert ids("riverside-gp") == [others.record_id]
    assert [r for r, _ in store.cases_of_agency("northshire-csc", 2, None, 10)] == [
        r.record_id for r in reversed(requests[:2])
    ]
    # The disclosure's fields are kept and committed to by its leaf; a request's entry has
    # none of them (entries written before they existed verify as they did).
    stored = store.get(told.record_id)
    assert stored is not None and stored.record.index == told.index
    assert b"recipient_agencies" in told.entry() and b"disclosure_kind" in told.entry()
    assert b"recipient_agencies" not in requests[0].entry()
    assert store.logged_below([told.record_id, others.record_id, "case-none"], size) == {
        told.record_id, others.record_id,
    }  # fmt: skip
    assert store.logged_below([told.record_id], 0) == set()


def test_an_archive_from_before_the_disclosure_fields_is_opened_and_kept(
    archive_url: str,
) -> None:
    """An archive file written before the disclosure columns existed gets them on open, and
    its records read and verify as before."""
    if not archive_url.startswith("sqlite"):
        pytest.skip("the columns are added the same way on PostgreSQL (information_schema)")
    import sqlite3

    from safeshare.archive.sqlite import sqlite_path

    key = LogKey()
    store = open_archive(archive_url)
    record = a_record()
    archive(store, record)
    sign_checkpoint(store, key.private)
    store.close()
    with sqlite3.connect(sqlite_path(archive_url)) as old:
        old.execute("ALTER TABLE records DROP COLUMN disclosure_kind")
        old.execute("ALTER TABLE records DROP COLUMN recipient_agencies")
    reopened = open_archive(archive_url)
    try:
        stored = reopened.get(record.record_id)
        assert stored is not None and stored.record.index == record.index
        assert verify_archive(reopened, key.verifier).findings == []
    finally:
        reopened.close()
