"""The payload codec: AES-256-GCM over every Temporal payload, the key id in its metadata.

An encoded payload is ``nonce (12 bytes) || ciphertext+tag`` of the whole original payload
(metadata and data), so the message type and encoding are hidden too. The key id is
authenticated as associated data: a payload relabelled with another key id does not decrypt.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from safeshare.codec.keys import KeyRing, KeyRingError

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12


class DecryptionError(KeyRingError):
    """A payload did not decrypt: wrong key, or it was altered."""


class EncryptionCodec(PayloadCodec):
    """Encrypts with the ring's active key; decrypts with whichever key the payload names."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys}

    @property
    def keys(self) -> KeyRing:
        """The ring this codec uses."""
        return self._keys

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload with the active key.

        👉 Any exception here fails the Temporal call (or the workflow task, which retries):
        a payload is never sent in the clear because encryption went wrong.
        """
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt every encrypted payload; others (written before encryption) pass through.

        Raises:
            UnknownKeyError: a payload names a key that is not in the ring.
            DecryptionError: a payload does not decrypt with the key it names.
        """
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, encrypted with the active key."""
        key_id = self._keys.active_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """One payload, decrypted if it is encrypted, else as it is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        if not key_id:
            raise DecryptionError("encrypted payload has no encryption-key-id")
        self._keys.key(key_id)  # raises UnknownKeyError with the known ids
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = self._ciphers[key_id].decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise DecryptionError(
                f"payload does not decrypt with key {key_id!r}: altered, or the key is wrong"
            ) from None
        return Payload.FromString(plain)
