"""The gateway's signing key: it seals every command the gateway forwards to a workflow.

The key is an Ed25519 private key in a PEM (PKCS#8) file only the gateway's account reads
(``--signing-key`` / ``SAFESHARE_GATEWAY_SIGNING_KEY_FILE``; a looser mode is refused); its public
half is published by the partnership beside the registry and read by the hub's protocol gate.
What is signed and how the workflows check it: ``workflows.seal``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message

from activities.gateway_key import GatewayKeyError
from workflows import seal

SIGNING_KEY_ENV = "SAFESHARE_GATEWAY_SIGNING_KEY_FILE"
M = TypeVar("M", bound=Message)


class SigningKeyError(GatewayKeyError):
    """The signing key file is missing, too open or not an Ed25519 private key."""


class GatewaySigner:
    """Seals commands with the gateway's Ed25519 key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key the workflows check seals against."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def derived_key(self, purpose: bytes) -> bytes:
        """A 32-byte secret for ``purpose``, derived from the signing key (HMAC-SHA256), so the
        gateway needs no second secret to keep."""
        private = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return hmac.new(private, b"safeshare-derived-key\0" + purpose, hashlib.sha256).digest()

    def public_pem(self) -> bytes:
        """The public key as the partnership publishes it (PEM SubjectPublicKeyInfo)."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sealed(self, message: M, workflow_id: str, command_id: str) -> M:
        """A copy of ``message`` sealed for ``workflow_id`` and ``command_id``."""
        command = type(message)()
        command.CopyFrom(message)
        getattr(command, seal.SEAL_FIELD).Clear()
        signature = self._key.sign(seal.canonical(workflow_id, command_id, command))
        stamp = getattr(command, seal.SEAL_FIELD)
        stamp.command_id = command_id
        stamp.signature = signature
        return command


def load_signing_key(path: Path) -> GatewaySigner:
    """The signer for the key in ``path``.

    Raises:
        SigningKeyError: missing, readable by others, or not an Ed25519 private key.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as err:
        raise SigningKeyError(f"cannot read signing key {path}: {err.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(f"signing key {path} is readable by others; run: chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 private key")
    return GatewaySigner(key)


def ensure_signing_key(private_path: Path, public_path: Path) -> GatewaySigner:
    """The signer in ``private_path``, creating a fresh key (and its public half in
    ``public_path``) if there is none: for the dev stack and tests."""
    if not private_path.exists():
        key = Ed25519PrivateKey.generate()
        private_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        public_path.unlink(missing_ok=True)
    signer = load_signing_key(private_path)
    if not public_path.exists():
        public_path.parent.mkdir(parents=True, exist_ok=True)
        public_path.write_bytes(signer.public_pem())
    return signer
