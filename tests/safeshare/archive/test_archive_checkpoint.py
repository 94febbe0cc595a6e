"""Checkpoints in the C2SP signed-note format: what they look like, and that any change to
one, or another key, fails."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from safeshare.archive.checkpoint import (
    Checkpoint,
    CheckpointError,
    VerifierKey,
    parse_checkpoint,
)

NAME = "safeshare.archive/v1"
AT = dt.datetime(2026, 12, 2, 1, 30, tzinfo=dt.UTC)
ROOT = hashlib.sha256(b"root").digest()


def test_a_signed_checkpoint_has_the_c2sp_layout_and_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    note = Checkpoint(NAME, 42, ROOT, AT).sign(NAME, key)

    body, signature_line = note.split("\n\n")
    assert body.splitlines() == [
        NAME,
        "42",
        base64.b64encode(ROOT).decode(),
        "time 2026-12-02T01:30:00Z",
    ]
    assert signature_line.startswith(f"\u2014 {NAME} ")
    raw = base64.b64decode(signature_line.split(" ")[2])
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw[:4] == hashlib.sha256(NAME.encode() + b"\n\x01" + public).digest()[:4]
    assert len(raw) == 4 + 64
    read = parse_checkpoint(note, VerifierKey(NAME, key.public_key()), origin=NAME)
    assert (read.size, read.root_hash, read.time) == (42, ROOT, AT)


def test_the_verifier_key_round_trips_in_vkey_form() -> None:
    key = VerifierKey(NAME, Ed25519PrivateKey.generate().public_key())
    text = key.encode()
    assert text.startswith(f"{NAME}+{key.key_id.hex()}+")
    assert VerifierKey.parse(text).encode() == text
    with pytest.raises(CheckpointError):
        VerifierKey.parse(text.replace(key.key_id.hex(), "00000000"))


@pytest.mark.parametrize(
    "change",
    [
        lambda note: note.replace("\n42\n", "\n43\n"),
        lambda note: note.replace(NAME + "\n", "other.log\n", 1),
        lambda note: note.replace("time 2026", "time 2025"),
        lambda note: note.split("\n\n")[0] + "\n",
    ],
    ids=["size", "origin", "time", "no-signature"],
)
def test_a_changed_checkpoint_is_refused(change: object) -> None:
    key = Ed25519PrivateKey.generate()
    note = Checkpoint(NAME, 42, ROOT, AT).sign(NAME, key)
    with pytest.raises(CheckpointError):
        parse_checkpoint(change(note), VerifierKey(NAME, key.public_key()))  # type: ignore[operator]


def test_a_checkpoint_signed_by_another_key_is_refused() -> None:
    note = Checkpoint(NAME, 1, ROOT, AT).sign(NAME, Ed25519PrivateKey.generate())
    with pytest.raises(CheckpointError, match=r"does not verify|not signed"):
        parse_checkpoint(note, VerifierKey(NAME, Ed25519PrivateKey.generate().public_key()))
