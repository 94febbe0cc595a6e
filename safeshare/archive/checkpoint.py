"""Signed checkpoints of the archive's transparency log, in the C2SP formats.

A checkpoint (C2SP tlog-checkpoint) is the note text::

    <origin>
    <tree size>
    <base64 root hash>
    time <RFC 3339 UTC>            (an extension line: when the archiver signed it)

signed as a C2SP signed note: the text, a blank line, and one signature line per key,
``— <key name> <base64(key id || Ed25519 signature)>``, where the key id is the first four
bytes of ``SHA-256(key name || 0x0A || 0x01 || public key)``. The verifier key an auditor keeps
is ``<key name>+<hex key id>+<base64(0x01 || public key)>`` (the signed-note vkey form), so any
C2SP note verifier (Go's ``golang.org/x/mod/sumdb/note``, say) can check it too.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "
DEFAULT_ORIGIN = "safeshare.archive/v1"
_NAME = re.compile(r"^[^\s+]+$")
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


class CheckpointError(Exception):
    """A checkpoint or verifier key that is malformed, or whose signature does not verify."""


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The signed-note key id of an Ed25519 key under ``name``."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + raw).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key, as an auditor keeps it."""

    name: str
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        """The four-byte id that signature lines carry."""
        return key_id(self.name, self.public_key)

    def encode(self) -> str:
        """``<name>+<hex key id>+<base64(0x01 || key)>``."""
        raw = self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        encoded = base64.b64encode(bytes([ED25519]) + raw).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Read a verifier key string.

        Raises:
            CheckpointError: not a signed-note Ed25519 verifier key.
        """
        parts = text.strip().split("+", 2)  # the base64 key itself may hold "+"
        if len(parts) != 3 or not _NAME.fullmatch(parts[0]):
            raise CheckpointError("not a verifier key (name+keyid+key)")
        try:
            raw = base64.b64decode(parts[2], validate=True)
            expected_id = bytes.fromhex(parts[1])
        except (binascii.Error, ValueError):
            raise CheckpointError("verifier key is not base64/hex") from None
        if len(raw) != 33 or raw[0] != ED25519:
            raise CheckpointError("verifier key is not an Ed25519 key")
        key = cls(parts[0], Ed25519PublicKey.from_public_bytes(raw[1:]))
        if key.key_id != expected_id:
            raise CheckpointError("verifier key's id does not match its key")
        return key


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the log's size and root hash at a time."""

    origin: str
    size: int
    root_hash: bytes
    time: dt.datetime

    def body(self) -> str:
        """The note text that is signed (ends with a newline)."""
        at = self.time.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        root = base64.b64encode(self.root_hash).decode()
        return f"{self.origin}\n{self.size}\n{root}\ntime {at}\n"

    def sign(self, name: str, key: Ed25519PrivateKey) -> str:
        """The signed note: body, blank line, one signature line."""
        if not _NAME.fullmatch(name):
            raise CheckpointError(f"{name!r} is not a key name (no spaces or '+')")
        body = self.body()
        signature = key.sign(body.encode())
        line = base64.b64encode(key_id(name, key.public_key()) + signature).decode()
        return f"{body}\n{SIGNATURE_PREFIX}{name} {line}\n"


def parse_checkpoint(note: str, verifier: VerifierKey, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint with ``verifier`` and read it.

    Raises:
        CheckpointError: malformed, not signed by this key, or a signature that fails.
    """
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise CheckpointError("checkpoint has control characters")
    body, sep, signatures = note.rpartition("\n\n")
    if not sep:
        raise CheckpointError("checkpoint has no signature lines")
    body += "\n"
    verified = False
    for line in signatures.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError("malformed signature line")
        name, _, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError("signature is not base64") from None
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue  # another signer's line (a witness): not ours to judge
        try:
            verifier.public_key.verify(raw[4:], body.encode())
        except InvalidSignature:
            raise CheckpointError("checkpoint signature does not verify") from None
        verified = True
    if not verified:
        raise CheckpointError(f"checkpoint is not signed by {verifier.name}")
    lines = body.splitlines()
    if len(lines) < 3 or not _SIZE.fullmatch(lines[1]):
        raise CheckpointError("checkpoint body is not origin, size, root hash")
    if origin is not None and lines[0] != origin:
        raise CheckpointError(f"checkpoint is for log {lines[0]!r}, not {origin!r}")
    try:
        root_hash = base64.b64decode(lines[2], validate=True)
    except binascii.Error:
        raise CheckpointError("checkpoint root hash is not base64") from None
    if len(root_hash) != 32:
        raise CheckpointError("checkpoint root hash is not a SHA-256 hash")
    at = dt.datetime.fromtimestamp(0, dt.UTC)
    for extension in lines[3:]:
        if extension.startswith("time "):
            try:
                at = dt.datetime.strptime(extension[5:], "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=dt.UTC
                )
            except ValueError:
                raise CheckpointError("checkpoint time is not RFC 3339 UTC") from None
    return Checkpoint(lines[0], int(lines[1]), root_hash, at)
