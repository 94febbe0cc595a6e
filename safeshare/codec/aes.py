"""The payload codec: AES-256-GCM over every Temporal payload, the key id in its metadata.

An encoded payload is ``nonce (12 bytes) || ciphertext+tag`` of the whole original payload
(metadata and data), so the message type and encoding are hidden too. The key id is
authenticated as associated data: a payload relabelled with another key id does not decrypt.

A payload written for a case's workflow (or one of its exchanges, or an activity of one) also
carries the case reference in clear metadata (``case-ref``; a random code, never personal data),
authenticated in the same associated data. The codec server reads it to record which case each
decryption was of; a payload moved under another case's label does not decrypt. Payloads written
without it (before it existed, or outside any case) decrypt as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from safeshare.codec.keys import KeyRing, KeyRingError
from workflows.ids import case_ref_from_workflow_id

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
CASE_REF_METADATA = "case-ref"
NONCE_BYTES = 12


class DecryptionError(KeyRingError):
    """A payload did not decrypt: wrong key, or it was altered."""


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Encrypts with the ring's active key; decrypts with whichever key the payload names."""

    def __init__(self, keys: KeyRing, case_ref: str = "") -> None:
        self._keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys}
        self._case_ref = case_ref

    def with_context(self, context: SerializationContext) -> EncryptionCodec:
        """This codec for payloads of one workflow or activity: they carry its case ref.

        👉 The SDK hands every client and worker call its workflow's id this way, so the
        label is set where the payload is written, not guessed from where it is read.
        """
        workflow_id = None
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = context.workflow_id
        try:
            case_ref = case_ref_from_workflow_id(workflow_id) if workflow_id else ""
        except ValueError:
            case_ref = ""
        if case_ref == self._case_ref:
            return self
        codec = EncryptionCodec.__new__(EncryptionCodec)
        codec._keys, codec._ciphers, codec._case_ref = self._keys, self._ciphers, case_ref
        return codec

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
        metadata = {"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}
        if self._case_ref:
            metadata[CASE_REF_METADATA] = self._case_ref.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(
            nonce, payload.SerializeToString(), _associated_data(metadata)
        )
        return Payload(metadata=metadata, data=nonce + sealed)

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
            plain = self._ciphers[key_id].decrypt(nonce, sealed, _associated_data(payload.metadata))
        except InvalidTag:
            raise DecryptionError(
                f"payload does not decrypt with key {key_id!r}: altered, or the key is wrong"
            ) from None
        return Payload.FromString(plain)


def case_ref_of(payload: Payload) -> str:
    """The case reference an encrypted payload is labelled with ("" for none).

    Trust it only after the payload decrypted: the label is authenticated, not secret.
    """
    return payload.metadata.get(CASE_REF_METADATA, b"").decode(errors="replace")


def _associated_data(metadata: Mapping[str, bytes]) -> bytes:
    """What AES-GCM authenticates besides the ciphertext: the key id, and the case ref when
    the payload carries one (so a payload without it authenticates exactly as before)."""
    associated = metadata.get(KEY_ID_METADATA, b"")
    case_ref = metadata.get(CASE_REF_METADATA)
    if case_ref is not None:
        associated += b"\x00" + CASE_REF_METADATA.encode() + b"=" + case_ref
    return associated
