"""Verify the archive: every digest, the log against its latest checkpoint, and the log's
consistency with an older checkpoint an auditor kept.

Each problem is a ``Finding`` with a kind an auditor can look up (docs/audit.md):

=====================  ============================================================
history-changed        a history's bytes no longer have the digest its leaf commits to
history-missing        a history the leaf names is not stored (or one is stored that it does not)
record-changed         the stored decision record (result payload) has another digest
index-changed          an index field differs from the one the leaf commits to
record-missing         a leaf names a record that is not in the archive (and no tombstone)
not-logged             a record counted archived has no leaf
leaf-mismatch          a record's leaf belongs to another record (leaves swapped or reordered)
leaf-duplicate         two leaves log the same record
leaf-hash              a leaf's stored hash is not the hash of its entry
leaf-gap               leaf indexes are not 0, 1, 2, ...
checkpoint-signature   a checkpoint does not verify with the archive's key
checkpoint-root        the log does not have the root its checkpoint signed
checkpoint-size        the log is shorter than its checkpoint
consistency            the log does not extend the older checkpoint (an earlier leaf changed)
=====================  ============================================================

A purged record is not a finding: it is reported as purged, with its tombstone's leaf.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from safeshare.archive import merkle
from safeshare.archive.checkpoint import Checkpoint, CheckpointError, VerifierKey, parse_checkpoint
from safeshare.archive.records import ARCHIVED, PURGED, entry_bytes, sha256_hex
from safeshare.archive.store import ArchiveStore, Leaf, StoredRecord


@dataclass(frozen=True)
class Finding:
    """One thing that does not verify."""

    kind: str
    subject: str
    detail: str


@dataclass(frozen=True)
class Purged:
    """A record removed by a purge, and the tombstone that says who, when and why."""

    record_id: str
    tombstone_leaf: int
    by: str
    at: str
    reason: str


@dataclass
class VerifyResult:
    """Everything ``verify_archive`` found."""

    findings: list[Finding] = field(default_factory=list)
    purged: list[Purged] = field(default_factory=list)
    records_checked: int = 0
    leaves: int = 0
    checkpoint: Checkpoint | None = None
    unsigned_leaves: int = 0
    """Leaves appended after the latest checkpoint (the next sweep signs them)."""

    @property
    def ok(self) -> bool:
        """True when there is no finding."""
        return not self.findings

    def add(self, kind: str, subject: str, detail: str) -> None:
        """Record one finding."""
        self.findings.append(Finding(kind, subject, detail))


def verify_archive(
    store: ArchiveStore, verifier: VerifierKey, older: str | None = None, origin: str | None = None
) -> VerifyResult:
    """Check the whole archive; ``older`` is a signed checkpoint the auditor kept."""
    result = VerifyResult()
    leaves = store.leaves()
    result.leaves = len(leaves)
    records = {r.record.record_id: r for r in store.all_records()}
    _check_leaves(leaves, result)
    logged, tombstones = _logged(leaves, result)
    for stored in records.values():
        result.records_checked += 1
        _check_record(stored, leaves, logged, tombstones, result)
    for record_id, leaf_indexes in logged.items():
        if record_id not in records and record_id not in tombstones:
            result.add("record-missing", record_id, f"logged at leaf {leaf_indexes[0]}, not stored")
    hashes = [merkle.leaf_hash(leaf.entry) for leaf in leaves]
    latest = _check_checkpoints(store, verifier, hashes, origin, result)
    if older is not None:
        _check_consistency(older, latest, verifier, hashes, origin, result)
    return result


def _check_leaves(leaves: list[Leaf], result: VerifyResult) -> None:
    for position, leaf in enumerate(leaves):
        if leaf.index != position:
            result.add("leaf-gap", f"leaf {position}", f"found leaf index {leaf.index} here")
        if merkle.leaf_hash(leaf.entry) != leaf.hash:
            result.add("leaf-hash", f"leaf {leaf.index}", "stored hash is not its entry's hash")


def _entry(leaf: Leaf) -> dict[str, object]:
    try:
        document = json.loads(leaf.entry)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _logged(
    leaves: list[Leaf], result: VerifyResult
) -> tuple[dict[str, list[int]], dict[str, Purged]]:
    logged: dict[str, list[int]] = {}
    tombstones: dict[str, Purged] = {}
    for leaf in leaves:
        entry = _entry(leaf)
        record_id = str(entry.get("record_id", leaf.record_id))
        if entry.get("type") == "tombstone":
            purge = Purged(
                record_id, leaf.index, str(entry.get("by")), str(entry.get("at")),
                str(entry.get("reason")),
            )  # fmt: skip
            tombstones[record_id] = purge
            result.purged.append(purge)
            continue
        logged.setdefault(record_id, []).append(leaf.index)
    for record_id, indexes in logged.items():
        if len(indexes) > 1:
            result.add(
                "leaf-duplicate", record_id, f"logged at leaves {', '.join(map(str, indexes))}"
            )
    return logged, tombstones


def _check_record(
    stored: StoredRecord,
    leaves: list[Leaf],
    logged: dict[str, list[int]],
    tombstones: dict[str, Purged],
    result: VerifyResult,
) -> None:
    record = stored.record
    record_id = record.record_id
    if stored.status not in (ARCHIVED, PURGED):
        return  # written, not yet confirmed: never counted archived, not in the log
    if stored.leaf_index is None or not 0 <= stored.leaf_index < len(leaves):
        result.add("not-logged", record_id, "counted archived but has no leaf")
        return
    leaf = leaves[stored.leaf_index]
    entry = _entry(leaf)
    if entry.get("record_id") != record_id or entry.get("type") != "record":
        result.add(
            "leaf-mismatch", record_id,
            f"its leaf {stored.leaf_index} logs {entry.get('record_id', '?')}",
        )  # fmt: skip
        return
    if stored.status == PURGED:
        if record_id not in tombstones:
            result.add("record-missing", record_id, "content removed without a tombstone")
        return
    logged_histories = {
        (str(h["workflow_id"]), str(h["run_id"])): h
        for h in entry.get("histories", [])  # type: ignore[attr-defined]
    }
    stored_histories = {(h.workflow_id, h.run_id): h for h in record.histories}
    for key, history in stored_histories.items():
        committed = logged_histories.get(key)
        if committed is None:
            result.add("history-missing", record_id, f"{key[0]} is stored but not logged")
        elif history.sha256 != committed["sha256"]:
            result.add(
                "history-changed", record_id,
                f"{key[0]}: sha256 {history.sha256[:12]}, logged {str(committed['sha256'])[:12]}",
            )  # fmt: skip
    for key in logged_histories.keys() - stored_histories.keys():
        result.add("history-missing", record_id, f"{key[0]} is logged but not stored")
    if sha256_hex(record.result) != entry.get("result_sha256"):
        result.add("record-changed", record_id, "the decision record's digest differs")
    committed_index = entry.get("index")
    current_index = record.index.as_dict()
    if isinstance(committed_index, dict):
        for name, value in current_index.items():
            if committed_index.get(name) != value:
                result.add("index-changed", record_id, f"{name} is {value!r}, logged otherwise")
    rebuilt = entry_bytes(
        record_id, record.case_ref, record.kind, record.run_id, record.index,
        [(str(h["workflow_id"]), str(h["run_id"]), str(h["workflow_type"]), str(h["sha256"]))
         for h in logged_histories.values()],
        str(entry.get("result_sha256")),
    )  # fmt: skip
    if rebuilt != leaf.entry and not any(f.subject == record_id for f in result.findings):
        result.add("index-changed", record_id, "its entry differs from the one logged")


def _check_checkpoints(
    store: ArchiveStore,
    verifier: VerifierKey,
    hashes: list[bytes],
    origin: str | None,
    result: VerifyResult,
) -> Checkpoint | None:
    latest: Checkpoint | None = None
    for size, note in store.checkpoints():
        try:
            checkpoint = parse_checkpoint(note, verifier, origin)
        except CheckpointError as err:
            result.add("checkpoint-signature", f"checkpoint {size}", str(err))
            continue
        if checkpoint.size > len(hashes):
            result.add(
                "checkpoint-size", f"checkpoint {size}",
                f"signed {checkpoint.size} leaves, the log has {len(hashes)}",
            )  # fmt: skip
        elif merkle.root(hashes[: checkpoint.size]) != checkpoint.root_hash:
            result.add("checkpoint-root", f"checkpoint {size}", "the log's root differs")
        latest = checkpoint
    result.checkpoint = latest
    result.unsigned_leaves = len(hashes) - (latest.size if latest else 0)
    return latest


def _check_consistency(
    older_note: str,
    latest: Checkpoint | None,
    verifier: VerifierKey,
    hashes: list[bytes],
    origin: str | None,
    result: VerifyResult,
) -> None:
    try:
        older = parse_checkpoint(older_note, verifier, origin)
    except CheckpointError as err:
        result.add("checkpoint-signature", "older checkpoint", str(err))
        return
    if latest is None or older.size > latest.size or older.size > len(hashes):
        result.add("consistency", "older checkpoint", f"the log no longer reaches {older.size}")
        return
    proof = merkle.consistency_proof(older.size, hashes[: latest.size])
    if not merkle.verify_consistency(
        older.size, latest.size, proof, older.root_hash, latest.root_hash
    ):
        result.add(
            "consistency", f"checkpoint {older.size} -> {latest.size}",
            "the log is not an extension of the older checkpoint: a leaf before it changed",
        )  # fmt: skip
