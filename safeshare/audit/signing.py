"""Ed25519 keys that sign an export's manifest, and the detached signature file.

The private key is a PKCS#8 PEM file (mode 0600); the public key a SubjectPublicKeyInfo PEM
file beside it (``<key>.pub``). The signature file names the key that made it by a short
fingerprint, so ``verify`` can tell "signed by another key" from "manifest edited".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"


class SigningError(Exception):
    """A signing key or signature file is missing, too open or malformed."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable fingerprint of a public key: the first 16 hex digits of its SHA-256."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_path(private_key_path: Path) -> Path:
    """Where the public half of ``private_key_path`` is kept: ``<key>.pub``."""
    return private_key_path.with_name(private_key_path.name.removesuffix(".key") + ".pub")


def ensure_signing_key(path: Path) -> Ed25519PublicKey:
    """The key in ``path``, creating it (0600) and its ``.pub`` if there is none (dev stack)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # O_EXCL and 0600 from the first byte: the key is never readable by others.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
    public = load_private_key(path).public_key()
    pub_path = public_key_path(path)
    if not pub_path.exists():
        pub_path.write_bytes(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return public


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key (PEM), refusing a file others can read.

    Raises:
        SigningError: missing, too open, or not an Ed25519 private key.
    """
    try:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SigningError(f"signing key {path} is readable by others; run: chmod 600 {path}")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as err:
        raise SigningError(f"cannot read signing key {path}: {err.strerror}") from None
    except (ValueError, TypeError):
        raise SigningError(f"{path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key (PEM).

    Raises:
        SigningError: missing or not an Ed25519 public key.
    """
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as err:
        raise SigningError(f"cannot read public key {path}: {err.strerror}") from None
    except ValueError:
        raise SigningError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{path} is not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class Signature:
    """A detached signature over a file's exact bytes, and the key that made it."""

    key_id: str
    signature: bytes

    @classmethod
    def make(cls, data: bytes, key: Ed25519PrivateKey) -> Signature:
        """Sign ``data`` with ``key``."""
        return cls(key_id(key.public_key()), key.sign(data))

    def valid_for(self, data: bytes, public_key: Ed25519PublicKey) -> bool:
        """Whether this signature over ``data`` was made by ``public_key``'s private half."""
        try:
            public_key.verify(self.signature, data)
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> str:
        """The signature file's content."""
        document = {
            "algorithm": ALGORITHM,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Signature:
        """Parse a signature file.

        Raises:
            SigningError: malformed, or not an Ed25519 signature.
        """
        try:
            document = json.loads(text)
            if document["algorithm"] != ALGORITHM:
                raise SigningError(f"unsupported signature algorithm {document['algorithm']!r}")
            return cls(str(document["key_id"]), base64.b64decode(document["signature"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise SigningError("malformed signature file") from None
