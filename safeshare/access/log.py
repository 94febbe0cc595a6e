"""The access log: access events in an append-only SQLite file with signed checkpoints.

The log is a transparency log of the archive's design (``safeshare.archive.merkle``,
``safeshare.archive.checkpoint``): entry ``n`` is the canonical JSON of the n-th event, the
tree is RFC 9162's, and every append signs a C2SP checkpoint (origin ``safeshare.access/v1``,
size, root hash, time) with the log's Ed25519 key. Several processes (the gateway, the codec
server, the CLI) append to one file: each append is one ``BEGIN IMMEDIATE`` transaction that
adds the events and the checkpoint over them, so no reader ever sees events without a
checkpoint that covers them.

``verify_log`` needs only the file and the verifier key: it recomputes every leaf from the
stored entries and checks every stored checkpoint's signature and root against them, and that
the newest covers every entry. An event edited or deleted in the file, or a checkpoint removed
or forged, fails it; an auditor who kept an earlier checkpoint note can check that the log
still extends it (``trusted``), which also catches a log rewritten from scratch.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from safeshare.access.events import AccessEvent
from safeshare.archive import merkle
from safeshare.archive.checkpoint import Checkpoint, CheckpointError, VerifierKey, parse_checkpoint
from safeshare.audit.signing import ensure_signing_key, load_private_key
from safeshare.metrics import count_access_event

ORIGIN = "safeshare.access/v1"
KEY_NAME = "safeshare-access"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    case_ref TEXT NOT NULL,
    entry BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_case ON events (case_ref, seq);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS frontier (
    size INTEGER NOT NULL,
    hashes BLOB NOT NULL
);
"""


class AccessLogError(Exception):
    """The access log cannot be opened, or fails verification."""


class AccessLog:
    """Appends access events and reads them back, by case.

    Args:
        path: the SQLite file (created with its tables if missing).
        key: the Ed25519 key that signs checkpoints; None opens the log read-only in effect
            (``append`` refuses), for auditors who hold only the verifier key.
    """

    def __init__(self, path: Path, key: Ed25519PrivateKey | None = None) -> None:
        self.path = path
        self._key = key
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def open(cls, path: Path, key_path: Path) -> AccessLog:
        """The log at ``path``, signing with the key at ``key_path`` (created if missing)."""
        ensure_signing_key(key_path)
        return cls(path, load_private_key(key_path))

    @property
    def verifier(self) -> VerifierKey:
        """The key an auditor checks this log's checkpoints with."""
        if self._key is None:
            raise AccessLogError("this access log was opened without its signing key")
        return VerifierKey(KEY_NAME, self._key.public_key())

    def append(self, events: Sequence[AccessEvent]) -> list[AccessEvent]:
        """Append ``events`` and sign a checkpoint over the log with them; returns them with
        their ``seq``."""
        if not events:
            return []
        if self._key is None:
            raise AccessLogError("this access log was opened without its signing key")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            # The next seq (entries are numbered from 0 with no gaps): an index lookup, where
            # COUNT(*) reads the whole table.
            (size,) = db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM events").fetchone()
            frontier = _frontier(db, size)
            stored = []
            for offset, event in enumerate(events):
                entry = event.entry()
                db.execute(
                    "INSERT INTO events (seq, case_ref, entry) VALUES (?, ?, ?)",
                    (size + offset, event.case_ref, entry),
                )
                frontier.append(merkle.leaf_hash(entry))
                stored.append(AccessEvent.from_entry(entry, size + offset))
            db.execute("DELETE FROM frontier")
            db.execute(
                "INSERT INTO frontier (size, hashes) VALUES (?, ?)",
                (frontier.size, frontier.encode()),
            )
            now = dt.datetime.now(dt.UTC)
            checkpoint = Checkpoint(ORIGIN, frontier.size, frontier.root(), now)
            db.execute(
                "INSERT INTO checkpoints (size, note) VALUES (?, ?)",
                (checkpoint.size, checkpoint.sign(KEY_NAME, self._key)),
            )
            db.execute("COMMIT")
        for event in stored:
            count_access_event(event.channel.value, event.action.value, event.outcome.value)
        return stored

    def events(
        self, case_ref: str | None = None, after: int = -1, limit: int | None = None
    ) -> list[AccessEvent]:
        """Events of one case (or all), in log order, with ``seq`` above ``after``."""
        query = "SELECT seq, entry FROM events WHERE seq > ?"
        args: list[object] = [after]
        if case_ref is not None:
            query += " AND case_ref = ?"
            args.append(case_ref)
        query += " ORDER BY seq"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        with self._connect() as db:
            return [AccessEvent.from_entry(entry, seq) for seq, entry in db.execute(query, args)]

    def latest_checkpoint(self) -> str | None:
        """The newest signed checkpoint note, for an auditor to keep."""
        with self._connect() as db:
            row = db.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: transactions are the explicit BEGIN IMMEDIATE above.
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            yield db


class Frontier:
    """The roots of the perfect subtrees that make up a tree of ``size`` leaves, largest
    first (RFC 9162's tree is exactly these, folded right to left): an append costs
    O(log n) where recomputing the root from every leaf costs O(n)."""

    def __init__(self, size: int = 0, hashes: list[bytes] | None = None) -> None:
        self.size = size
        self._hashes = hashes or []
        if len(self._hashes) != bin(size).count("1"):
            raise AccessLogError("the stored frontier does not match the log's size")

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        self._hashes.append(leaf)
        self.size += 1
        # Each trailing 0 bit of the new size is a perfect subtree the new leaf completed.
        merges = (self.size & -self.size).bit_length() - 1
        for _ in range(merges):
            right = self._hashes.pop()
            left = self._hashes.pop()
            self._hashes.append(merkle.node_hash(left, right))

    def root(self) -> bytes:
        """MTH of the tree so far."""
        if not self._hashes:
            return merkle.EMPTY_ROOT
        root = self._hashes[-1]
        for subtree in reversed(self._hashes[:-1]):
            root = merkle.node_hash(subtree, root)
        return root

    def encode(self) -> bytes:
        """The subtree roots, concatenated (32 bytes each)."""
        return b"".join(self._hashes)

    @classmethod
    def decode(cls, size: int, data: bytes) -> Frontier:
        """The frontier ``encode`` wrote for a tree of ``size`` leaves."""
        return cls(size, [data[i : i + 32] for i in range(0, len(data), 32)])


def _frontier(db: sqlite3.Connection, size: int) -> Frontier:
    """The frontier stored by the last append (rebuilt from the leaves if it is not that)."""
    row = db.execute("SELECT size, hashes FROM frontier").fetchone()
    if row is not None and row[0] == size:
        return Frontier.decode(size, row[1])
    frontier = Frontier()
    for (entry,) in db.execute("SELECT entry FROM events ORDER BY seq"):
        frontier.append(merkle.leaf_hash(entry))
    return frontier


@dataclass(frozen=True)
class Verified:
    """What verification established."""

    size: int
    checkpoints: int


def verify_log(path: Path, verifier: VerifierKey, trusted: str | None = None) -> Verified:
    """Check the log file against its signed checkpoints (offline: file and key only).

    Args:
        path: the log file.
        verifier: the log's verifier key.
        trusted: a checkpoint note the auditor kept earlier; the log must still contain it.

    Raises:
        AccessLogError: the first problem found (an entry edited, deleted or added without a
            checkpoint; a checkpoint with a bad signature or root).
    """
    if not path.exists():
        raise AccessLogError(f"no access log at {path}")
    uri = f"file:{path}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute("SELECT seq, entry FROM events ORDER BY seq").fetchall()
        notes = [n for (n,) in db.execute("SELECT note FROM checkpoints ORDER BY size")]
    for expected, (seq, entry) in enumerate(rows):
        if seq != expected:
            raise AccessLogError(f"entry {expected} is missing (next stored is {seq})")
        try:
            AccessEvent.from_entry(entry, seq)
        except ValueError as err:
            raise AccessLogError(str(err)) from None
    leaves = [merkle.leaf_hash(entry) for _, entry in rows]
    if not notes:
        if leaves:
            raise AccessLogError(f"{len(leaves)} entries and no checkpoint over them")
        return Verified(0, 0)
    checkpoints = [_checkpoint(note, verifier) for note in notes]
    if trusted is not None:
        checkpoints.append(_checkpoint(trusted, verifier))
    for checkpoint in checkpoints:
        if checkpoint.size > len(leaves):
            raise AccessLogError(
                f"a checkpoint covers {checkpoint.size} entries; the log holds {len(leaves)}"
            )
        if merkle.root(leaves[: checkpoint.size]) != checkpoint.root_hash:
            raise AccessLogError(
                f"the first {checkpoint.size} entries do not match their signed checkpoint: "
                "an entry was edited, removed or reordered"
            )
    newest = max(c.size for c in checkpoints)
    if newest != len(leaves):
        raise AccessLogError(
            f"entries {newest} to {len(leaves) - 1} are not covered by a checkpoint"
        )
    return Verified(len(leaves), len(notes))


def _checkpoint(note: str, verifier: VerifierKey) -> Checkpoint:
    try:
        return parse_checkpoint(note, verifier, ORIGIN)
    except CheckpointError as err:
        raise AccessLogError(f"checkpoint: {err}") from None
