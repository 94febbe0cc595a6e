"""Signing the log's checkpoints and proving a record's place in it.

``sign_checkpoint`` is what the archiver does after each batch. ``inclusion_proof`` is what
``safeshare archive prove`` prints: a JSON document that an auditor checks offline with
``verify_inclusion_document`` and the public key alone (docs/audit.md).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from safeshare.archive import merkle
from safeshare.archive.checkpoint import (
    DEFAULT_ORIGIN,
    Checkpoint,
    CheckpointError,
    VerifierKey,
    parse_checkpoint,
)
from safeshare.archive.errors import ArchiveError
from safeshare.archive.store import ArchiveStore

PROOF_FORMAT = "safeshare-archive-inclusion/1"


def sign_checkpoint(
    store: ArchiveStore,
    key: Ed25519PrivateKey,
    origin: str = DEFAULT_ORIGIN,
    now: dt.datetime | None = None,
) -> tuple[int, str] | None:
    """Sign and keep a checkpoint of the log as it is, unless the latest covers it already.

    Returns:
        The (size, note) now latest, or None while the log is empty.
    """
    hashes = [merkle.leaf_hash(leaf.entry) for leaf in store.leaves()]
    latest = store.latest_checkpoint()
    if latest is not None and latest[0] >= len(hashes):
        return latest
    if not hashes:
        return None
    at = now or dt.datetime.now(dt.UTC)
    note = Checkpoint(origin, len(hashes), merkle.root(hashes), at).sign(origin, key)
    store.add_checkpoint(len(hashes), note)
    return len(hashes), note


def inclusion_proof(store: ArchiveStore, record_id: str) -> dict[str, Any]:
    """The proof that a record's leaf is in the log at the latest checkpoint.

    Raises:
        ArchiveError: no such archived record, or no checkpoint covers it yet.
    """
    stored = store.get(record_id)
    if stored is None or stored.leaf_index is None:
        raise ArchiveError(f"{record_id} is not in the archive's log")
    latest = store.latest_checkpoint()
    if latest is None or latest[0] <= stored.leaf_index:
        raise ArchiveError(f"{record_id} is logged but no checkpoint covers it yet: retry soon")
    size, note = latest
    leaves = store.leaves()[:size]
    hashes = [merkle.leaf_hash(leaf.entry) for leaf in leaves]
    entry = leaves[stored.leaf_index].entry
    return {
        "format": PROOF_FORMAT,
        "record_id": record_id,
        "status": stored.status,
        "leaf_index": stored.leaf_index,
        "tree_size": size,
        "entry": entry.decode(),
        "leaf_hash": merkle.leaf_hash(entry).hex(),
        "inclusion_proof": [h.hex() for h in merkle.inclusion_proof(stored.leaf_index, hashes)],
        "checkpoint": note,
    }


def verify_inclusion_document(document: dict[str, Any], verifier: VerifierKey) -> Checkpoint:
    """Check a proof document offline: the checkpoint's signature and the audit path.

    Raises:
        CheckpointError: the checkpoint does not verify, or the path does not lead to its root.
    """
    checkpoint = parse_checkpoint(str(document["checkpoint"]), verifier)
    leaf = merkle.leaf_hash(str(document["entry"]).encode())
    path = [bytes.fromhex(h) for h in document["inclusion_proof"]]
    size = int(document["tree_size"])
    if size != checkpoint.size or not merkle.verify_inclusion(
        int(document["leaf_index"]), size, leaf, path, checkpoint.root_hash
    ):
        raise CheckpointError("the inclusion proof does not lead to the checkpoint's root")
    return checkpoint


def dumps(document: dict[str, Any]) -> str:
    """A proof document as indented JSON."""
    return json.dumps(document, indent=1) + "\n"
