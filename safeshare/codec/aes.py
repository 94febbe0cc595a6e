"""The payload codec: AES-256-GCM over every Temporal payload, bound to its key, namespace and
workflow.

An encoded payload is ``nonce (12 bytes) || ciphertext+tag`` of the whole original payload
(metadata and data), so the message type and encoding are hidden too. Since format 3 the
original is compressed (raw DEFLATE, with a preset dictionary of the protos' field and enum
names: ``deflate_dictionary``, in ``packing``) first when that makes it smaller: ciphertext
does not compress, so this is the only place compression can happen, and a case's JSON
payloads shrink to about 30% of their size. Its metadata names the key
and the namespace and workflow the payload belongs to (the SDK's serialization context when it
was written); all three are authenticated as associated data, so a payload relabelled with
another key id, or copied from one case into another, does not decrypt. A payload of a case's
workflow (or one of its exchanges, or an activity of one) also carries the case reference in
clear metadata (``case-ref``; a random code, never personal data), authenticated too: the codec
server records which case each decryption was of.

👉 Decoding fails closed:

- an unencrypted payload is refused (a client without the keys cannot hand a worker plaintext),
  unless the codec is built with ``allow_plaintext`` for a migration of pre-encryption data;
- a payload bound to another workflow than the one decoding it is refused; a worker and the
  gateway always decode with a context (the SDK supplies it for every workflow, activity, update,
  query and result call), tools without one (the codec server, audit readers) decrypt against
  the binding the payload names, which is authenticated all the same;
- a payload of format 3 (the binding in four metadata entries, ``encryption-key-id``,
  ``-format``, ``-namespace`` and ``-workflow-id``) still decrypts: format 4 writes the same
  binding as one ``encryption`` label, authenticated under its own prefix;
- a payload of format 2 (uncompressed, with a ``case-ref`` label of its own) still decrypts:
  format 3 only drops the label (the case reference is the one its authenticated workflow id
  names) and compresses; a format-3 payload that carries a ``case-ref`` label naming another
  case is refused as moved;
- a payload written before binding existed (no ``encryption-format``: the key id, and the case
  ref when it carries one, authenticated) still decrypts: every running case's history holds
  such payloads and a worker replays them. Nothing new is written that way, and such a payload
  copied into another case cannot decide anything there: decisions and case starts carry the
  gateway's signature over the workflow id (``workflows.seal``). ``accept_unbound=False``
  refuses them once no case written before the change remains open or is replayed.

👉 Compression leaks length: a payload that holds both a secret and text an attacker chose
compresses less when they differ, and anyone who can read the history sees the payload's
size. Reading histories needs the namespace's credentials, and guessing a name that way needs
many chosen submissions into the same payload; build the codec with ``compress=False`` where
that is in the threat model: it writes format 2, and still reads format 3.

👉 Rolling upgrade: a codec from before format 3 cannot read format 3, and one from before
format 4 cannot read format 4. Run the new build with ``SAFESHARE_PAYLOAD_FORMAT=3`` (from
before format 3, with ``SAFESHARE_PAYLOAD_COMPRESSION=off``; ``converter.data_converter``)
until every process that decodes (workers, gateways, codec server, audit tools) runs it, then
drop the setting.

In workers and clients (``refusals_as_payloads``, set by ``data_converter``) a refused payload
is decoded to a payload of encoding ``binary/refused`` that no converter reads: the SDK then
rejects the update or drops the signal that carried it, where an exception would fail the
workflow task again and again and so let anyone who can send a plaintext update wedge a case.
A payload naming a key the ring lacks still raises: that is a lost key, not an attack, and the
workflow must wait for the key to come back.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence
from typing import Self

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

from safeshare.codec import packing
from safeshare.codec.keys import KeyRing, KeyRingError, UnknownKeyError
from workflows.ids import case_ref_from_workflow_id

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
FORMAT_METADATA = "encryption-format"
NAMESPACE_METADATA = "encryption-namespace"
WORKFLOW_METADATA = "encryption-workflow-id"
CASE_REF_METADATA = "case-ref"
LABEL_METADATA = "encryption"
"""Format 4's one label: ``4 <key id> <namespace> <workflow id>``, space-separated (key ids and
namespaces hold no spaces; the workflow id is the rest)."""
BOUND_FORMAT = b"2"
COMPACT_FORMAT = b"3"
"""Bound like format 2, without a ``case-ref`` label, and compressed when that is smaller
(``packing``)."""
LABELLED_AAD = b"safeshare-payload-v4"
LABELLED_FORMAT = b"4"
"""As format 3 (bound, compressed when smaller), with its binding in the one ``encryption``
label instead of four metadata entries: about 75 bytes less in every stored payload."""
REFUSED_ENCODING = b"binary/refused"
NONCE_BYTES = 12
# A schedule encodes its action's input under the schedule's workflow id; each run's id is
# that id, "-" and the scheduled time (Temporal's rule), so a run may read a payload bound to it.
SCHEDULED_WORKFLOW_IDS = frozenset({"protocol-review"})
# The namespace the SDK's Replayer reports when it is given none: a replay decides nothing and
# a history does not record its namespace, so there only the workflow id is checked.
REPLAY_NAMESPACE = "ReplayNamespace"


class DecryptionError(KeyRingError):
    """A payload did not decrypt: wrong key, altered, unencrypted, or another workflow's."""


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Encrypts with the ring's active key; decrypts with whichever key the payload names."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        allow_plaintext: bool = False,
        accept_unbound: bool = True,
        refusals_as_payloads: bool = False,
        binding: tuple[str, str] | None = None,
        compress: bool = True,
        labelled: bool = True,
    ) -> None:
        self._keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys}
        self._allow_plaintext = allow_plaintext
        self._accept_unbound = accept_unbound
        self._refusals_as_payloads = refusals_as_payloads
        self._binding = binding
        """(namespace, workflow id) of the serialization context, or None without one."""
        self._compress = compress
        self._labelled = labelled
        """Write format 4 (else format 3) when compressing."""

    @property
    def keys(self) -> KeyRing:
        """The ring this codec uses."""
        return self._keys

    @property
    def binding(self) -> tuple[str, str] | None:
        """The (namespace, workflow id) this codec binds to and checks, if it has a context."""
        return self._binding

    def with_context(self, context: SerializationContext) -> Self:
        """This codec bound to the workflow the SDK is converting payloads for."""
        binding: tuple[str, str] | None = None
        # An activity started outside a workflow has no workflow id: nothing to bind to.
        if (
            isinstance(context, WorkflowSerializationContext | ActivitySerializationContext)
            and context.workflow_id
        ):
            binding = (context.namespace, context.workflow_id)
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._binding = binding
        return clone

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload with the active key, bound to the context's workflow.

        👉 Any exception here fails the Temporal call (or the workflow task, which retries):
        a payload is never sent in the clear because encryption went wrong.
        """
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt every payload.

        Raises:
            UnknownKeyError: a payload names a key that is not in the ring.
            DecryptionError: a payload is not encrypted, belongs to another workflow, or does
                not decrypt with the key it names.
        """
        return [self._decoded(payload) for payload in payloads]

    def _decoded(self, payload: Payload) -> Payload:
        try:
            return self.decrypt(payload)
        except UnknownKeyError:
            raise
        except DecryptionError as err:
            if not self._refusals_as_payloads:
                raise
            return Payload(metadata={"encoding": REFUSED_ENCODING}, data=str(err).encode())

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, encrypted with the active key and bound to this codec's workflow."""
        key_id = self._keys.active_id
        namespace, workflow_id = self._binding or ("", "")
        plain = payload.SerializeToString()
        nonce = os.urandom(NONCE_BYTES)
        if not self._compress:
            # Format 2, as written before compression: what a codec without format 3 reads.
            metadata = _long_labels(key_id, BOUND_FORMAT, namespace, workflow_id)
            case_ref = _case_ref(workflow_id)
            if case_ref:
                metadata[CASE_REF_METADATA] = case_ref.encode()
            aad = _bound_aad(key_id, namespace, workflow_id, case_ref)
            return Payload(
                metadata=metadata, data=nonce + self._ciphers[key_id].encrypt(nonce, plain, aad)
            )
        packed = packing.packed(plain)
        if self._labelled and " " not in namespace:
            label = b" ".join(
                (LABELLED_FORMAT, *(s.encode() for s in (key_id, namespace, workflow_id)))
            )
            metadata = {"encoding": ENCODING, LABEL_METADATA: label}
            aad = _compact_aad(key_id, namespace, workflow_id, LABELLED_AAD)
        else:
            metadata = _long_labels(key_id, COMPACT_FORMAT, namespace, workflow_id)
            aad = _compact_aad(key_id, namespace, workflow_id)
        sealed = self._ciphers[key_id].encrypt(nonce, packed, aad)
        return Payload(metadata=metadata, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """One payload, decrypted; refused if it is not encrypted (unless allowed) or bound to
        another workflow than this codec's context."""
        if payload.metadata.get("encoding") != ENCODING:
            if self._allow_plaintext:
                return payload
            raise DecryptionError("unencrypted payload refused: every payload must be encrypted")
        if LABEL_METADATA in payload.metadata:
            key_id, namespace, workflow_id = _label(payload)
            self._keys.key(key_id)  # raises UnknownKeyError with the known ids
            self._check_binding(namespace, workflow_id)
            _check_case_label(payload, workflow_id)
            aad = _compact_aad(key_id, namespace, workflow_id, LABELLED_AAD)
            return _unpacked_payload(self._opened(payload, key_id, aad))
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        if not key_id:
            raise DecryptionError("encrypted payload has no encryption-key-id")
        self._keys.key(key_id)  # raises UnknownKeyError with the known ids
        payload_format = payload.metadata.get(FORMAT_METADATA)
        if payload_format == COMPACT_FORMAT:
            namespace = payload.metadata.get(NAMESPACE_METADATA, b"").decode(errors="replace")
            workflow_id = payload.metadata.get(WORKFLOW_METADATA, b"").decode(errors="replace")
            self._check_binding(namespace, workflow_id)
            _check_case_label(payload, workflow_id)
            return _unpacked_payload(
                self._opened(payload, key_id, _compact_aad(key_id, namespace, workflow_id))
            )
        if payload_format == BOUND_FORMAT:
            namespace = payload.metadata.get(NAMESPACE_METADATA, b"").decode(errors="replace")
            workflow_id = payload.metadata.get(WORKFLOW_METADATA, b"").decode(errors="replace")
            self._check_binding(namespace, workflow_id)
            case_ref = payload.metadata.get(CASE_REF_METADATA, b"").decode(errors="replace")
            aad = _bound_aad(key_id, namespace, workflow_id, case_ref)
        elif FORMAT_METADATA in payload.metadata:
            raise DecryptionError("encrypted payload in an unknown format")
        elif self._accept_unbound:
            aad = _unbound_aad(payload.metadata)
        else:
            raise DecryptionError("payload is not bound to a workflow (written before binding)")
        return Payload.FromString(self._opened(payload, key_id, aad))

    def _opened(self, payload: Payload, key_id: str, aad: bytes) -> bytes:
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            return self._ciphers[key_id].decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise DecryptionError(
                f"payload does not decrypt with key {key_id!r}: altered, or the key is wrong"
            ) from None

    def _check_binding(self, namespace: str, workflow_id: str) -> None:
        if self._binding is None:
            return  # a reading tool: the binding it names is authenticated below
        expected_namespace, expected_workflow = self._binding
        if expected_namespace in (namespace, REPLAY_NAMESPACE) and (
            workflow_id == expected_workflow
            or (
                workflow_id in SCHEDULED_WORKFLOW_IDS
                and expected_workflow.startswith(workflow_id + "-")
            )
        ):
            return
        # Ids only (never personal data): a payload moved from another workflow or namespace.
        raise DecryptionError(
            f"payload belongs to another workflow ({namespace}/{workflow_id or '-'}), "
            f"not {expected_namespace}/{expected_workflow}"
        )


def case_ref_of(payload: Payload) -> str:
    """The case reference an encrypted payload is labelled with, or (format 3) the one its
    workflow id names ("" for none).

    Trust it only after the payload decrypted: the label is authenticated, not secret.
    """
    if LABEL_METADATA in payload.metadata:
        try:
            return _case_ref(_label(payload)[2])
        except DecryptionError:
            return ""
    if payload.metadata.get(FORMAT_METADATA) == COMPACT_FORMAT:
        return _case_ref(payload.metadata.get(WORKFLOW_METADATA, b"").decode(errors="replace"))
    return payload.metadata.get(CASE_REF_METADATA, b"").decode(errors="replace")


def key_id_of(payload: Payload) -> str:
    """The key id an encrypted payload names, in any format ("" for none or a bad label)."""
    if LABEL_METADATA in payload.metadata:
        try:
            return _label(payload)[0]
        except DecryptionError:
            return ""
    return payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")


def _label(payload: Payload) -> tuple[str, str, str]:
    """(key id, namespace, workflow id) from a format-4 ``encryption`` label."""
    fields = payload.metadata[LABEL_METADATA].split(b" ", 3)
    if len(fields) != 4 or fields[0] != LABELLED_FORMAT or not fields[1]:
        raise DecryptionError("encrypted payload in an unknown format")
    key_id, namespace, workflow_id = (field.decode(errors="replace") for field in fields[1:])
    return key_id, namespace, workflow_id


def _long_labels(key_id: str, form: bytes, namespace: str, workflow_id: str) -> dict[str, bytes]:
    """Formats 2 and 3's metadata: the binding in four entries."""
    return {
        "encoding": ENCODING,
        KEY_ID_METADATA: key_id.encode(),
        FORMAT_METADATA: form,
        NAMESPACE_METADATA: namespace.encode(),
        WORKFLOW_METADATA: workflow_id.encode(),
    }


def _unpacked_payload(plain: bytes) -> Payload:
    try:
        return Payload.FromString(packing.unpacked(plain))
    except packing.PackingError as err:
        raise DecryptionError(str(err)) from None


def _check_case_label(payload: Payload, workflow_id: str) -> None:
    """Formats 3 and 4 carry no ``case-ref`` label: one naming another case than the workflow
    id's is a payload moved from that case."""
    label = payload.metadata.get(CASE_REF_METADATA)
    if label is not None and label.decode(errors="replace") != _case_ref(workflow_id):
        raise DecryptionError("payload is labelled with another case than its own")


def _case_ref(workflow_id: str) -> str:
    try:
        return case_ref_from_workflow_id(workflow_id) if workflow_id else ""
    except ValueError:
        return ""


def _bound_aad(key_id: str, namespace: str, workflow_id: str, case_ref: str) -> bytes:
    """Length-prefixed, so no two (key, namespace, workflow, case) tuples share associated
    data."""
    parts = [
        b"safeshare-payload-v2",
        key_id.encode(),
        namespace.encode(),
        workflow_id.encode(),
        case_ref.encode(),
    ]
    return b"".join(struct.pack(">I", len(part)) + part for part in parts)


def _compact_aad(
    key_id: str, namespace: str, workflow_id: str, prefix: bytes = b"safeshare-payload-v3"
) -> bytes:
    """Formats 3 and 4's associated data: as format 2's, under each format's own prefix (so a
    payload cannot be relabelled from one format to another), with no separate case
    reference."""
    parts = [prefix, key_id.encode(), namespace.encode(), workflow_id.encode()]
    return b"".join(struct.pack(">I", len(part)) + part for part in parts)


def _unbound_aad(metadata: Mapping[str, bytes]) -> bytes:
    """The associated data of a payload written before binding: the key id, and the case ref
    when the payload carries one."""
    associated = metadata.get(KEY_ID_METADATA, b"")
    case_ref = metadata.get(CASE_REF_METADATA)
    if case_ref is not None:
        associated += b"\x00" + CASE_REF_METADATA.encode() + b"=" + case_ref
    return associated
