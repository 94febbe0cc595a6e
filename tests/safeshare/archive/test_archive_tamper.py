"""Tampering with the archive, on both backends: each kind is named by verification, and an
earlier leaf rewritten under a re-signed checkpoint fails consistency with an older one."""

from __future__ import annotations

from typing import Any

from safeshare.archive import merkle
from safeshare.archive.proofs import sign_checkpoint
from safeshare.archive.records import ArchiveRecord
from safeshare.archive.sql_store import SqlArchiveStore
from safeshare.archive.verify import VerifyResult, verify_archive
from tests.safeshare.archive.archive_support import LogKey, a_record, archive


def _archived(store: SqlArchiveStore, key: LogKey, count: int = 3) -> list[ArchiveRecord]:
    records = [a_record() for _ in range(count)]
    for record in records:
        archive(store, record)
    sign_checkpoint(store, key.private)
    return records


def _sql(store: SqlArchiveStore, statement: str, *values: Any) -> None:
    """What an attacker with write access to the database does, bypassing the store."""
    with store._transaction() as cursor:
        cursor.execute(store._sql(statement), values)


def _kinds(result: VerifyResult) -> set[str]:
    return {f.kind for f in result.findings}


def test_a_changed_history_byte_is_named(store: SqlArchiveStore) -> None:
    key = LogKey()
    records = _archived(store, key)
    history = records[1].histories[0]
    changed = bytearray(history.content)
    changed[3] ^= 0x01
    _sql(store, "UPDATE histories SET content = ? WHERE workflow_id = ?", bytes(changed),
         history.workflow_id)  # fmt: skip

    result = verify_archive(store, key.verifier)

    assert _kinds(result) == {"history-changed"}
    assert [f.subject for f in result.findings] == [records[1].record_id]


def test_a_changed_index_field_is_named(store: SqlArchiveStore) -> None:
    key = LogKey()
    records = _archived(store, key)
    _sql(store, "UPDATE records SET outcome = ? WHERE record_id = ?", "NOT_SHARED",
         records[0].record_id)  # fmt: skip

    result = verify_archive(store, key.verifier)

    assert _kinds(result) == {"index-changed"}
    assert "outcome" in result.findings[0].detail


def test_a_changed_decision_record_is_named(store: SqlArchiveStore) -> None:
    key = LogKey()
    records = _archived(store, key)
    _sql(store, "UPDATE records SET result = ? WHERE record_id = ?", b"forged",
         records[2].record_id)  # fmt: skip

    assert _kinds(verify_archive(store, key.verifier)) == {"record-changed"}


def test_a_deleted_case_is_named_missing(store: SqlArchiveStore) -> None:
    key = LogKey()
    records = _archived(store, key)
    _sql(store, "DELETE FROM histories WHERE record_id = ?", records[0].record_id)
    _sql(store, "DELETE FROM records WHERE record_id = ?", records[0].record_id)

    result = verify_archive(store, key.verifier)

    assert _kinds(result) == {"record-missing"}
    assert result.findings[0].subject == records[0].record_id


def test_reordered_leaves_are_named(store: SqlArchiveStore) -> None:
    key = LogKey()
    _archived(store, key)
    _sql(store, "UPDATE leaves SET leaf_index = 100 WHERE leaf_index = 0")
    _sql(store, "UPDATE leaves SET leaf_index = 0 WHERE leaf_index = 1")
    _sql(store, "UPDATE leaves SET leaf_index = 1 WHERE leaf_index = 100")

    kinds = _kinds(verify_archive(store, key.verifier))

    assert {"leaf-mismatch", "checkpoint-root"} <= kinds


def test_a_reinserted_leaf_is_named(store: SqlArchiveStore) -> None:
    key = LogKey()
    _archived(store, key)
    first = store.leaves()[0]
    _sql(store, "INSERT INTO leaves (leaf_index, record_id, kind, entry, hash) "
         "VALUES (?, ?, ?, ?, ?)", 3, first.record_id, first.kind, first.entry, first.hash)  # fmt: skip

    assert "leaf-duplicate" in _kinds(verify_archive(store, key.verifier))


def test_swapped_histories_are_named(store: SqlArchiveStore) -> None:
    key = LogKey()
    records = _archived(store, key)
    a, b = records[0].histories[0], records[1].histories[0]
    _sql(store, "UPDATE histories SET content = ? WHERE workflow_id = ?", b.content, a.workflow_id)
    _sql(store, "UPDATE histories SET content = ? WHERE workflow_id = ?", a.content, b.workflow_id)

    result = verify_archive(store, key.verifier)

    assert _kinds(result) == {"history-changed"}
    assert {f.subject for f in result.findings} == {records[0].record_id, records[1].record_id}


def test_a_rewritten_earlier_leaf_under_a_resigned_checkpoint_fails_consistency(
    store: SqlArchiveStore,
) -> None:
    key = LogKey()
    records = _archived(store, key)
    kept = store.latest_checkpoint()  # the auditor's copy, taken last month
    assert kept is not None
    for _ in range(2):
        archive(store, a_record())
    sign_checkpoint(store, key.private)
    # An insider with the signing key rewrites an early case consistently everywhere —
    # history, entry, leaf hash — and re-signs every checkpoint over the rewritten log.
    victim = records[1]
    forged = a_record(ref=victim.case_ref)
    history = forged.histories[0]
    _sql(store, "UPDATE histories SET content = ? WHERE workflow_id = ?", history.content,
         history.workflow_id)  # fmt: skip
    _sql(store, "UPDATE histories SET content = ? WHERE workflow_id = ?",
         forged.histories[1].content, forged.histories[1].workflow_id)  # fmt: skip
    _sql(store, "UPDATE records SET result = ?, result_sha256 = ?, digest = ? WHERE record_id = ?",
         forged.result, merkle.leaf_hash(b"").hex(), forged.digest, victim.record_id)  # fmt: skip
    entry = forged.entry()
    _sql(store, "UPDATE leaves SET entry = ?, hash = ? WHERE record_id = ?", entry,
         merkle.leaf_hash(entry), victim.record_id)  # fmt: skip
    _sql(store, "DELETE FROM checkpoints")
    sign_checkpoint(store, key.private)

    assert verify_archive(store, key.verifier).findings == []  # consistent with itself
    result = verify_archive(store, key.verifier, older=kept[1])

    assert _kinds(result) == {"consistency"}
