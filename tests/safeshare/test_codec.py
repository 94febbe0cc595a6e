"""Payload encryption: the key ring, the AES-GCM codec, and what Temporal stores with it."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.converter import DataConverter, WorkflowSerializationContext
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from protos.sharing.v1 import case_pb2 as pb
from safeshare.codec import (
    ENCODING,
    KEY_ID_METADATA,
    DecryptionError,
    EncryptionCodec,
    KeyRing,
    KeyRingError,
    UnknownKeyError,
    aes,
    data_converter,
    ensure_key_file,
    keys_from_env,
    load_key_file,
    packing,
    parse_key_ring,
    replay_converter,
    write_key_file,
)
from safeshare.codec.aes import case_ref_of, key_id_of
from safeshare.codec.coverage import key_ids_in
from safeshare.codec.deflate_dictionary import DICTIONARY_1
from safeshare.temporal import TemporalSettings
from tests.factories import sharing_request
from workflows.ids import case_workflow_id

SECRET = b"Okafor-Test lives at ZZ99 9ZZ"


def payload(data: bytes = SECRET) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


async def test_round_trip_hides_data_and_names_the_active_key() -> None:
    codec = EncryptionCodec(KeyRing.generate("key-a"))
    [sealed] = await codec.encode([payload()])
    assert sealed.metadata["encoding"] == ENCODING
    assert key_id_of(sealed) == "key-a"
    assert SECRET not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.data, "the inner encoding is hidden too"
    assert await codec.decode([sealed]) == [payload()]


async def test_rotated_ring_encrypts_with_the_new_key_and_still_decrypts_the_old() -> None:
    old = KeyRing.generate("key-a")
    [sealed_old] = await EncryptionCodec(old).encode([payload()])
    rotated = EncryptionCodec(old.with_new_key("key-b"))
    [sealed_new] = await rotated.encode([payload()])
    assert key_id_of(sealed_new) == "key-b"
    assert await rotated.decode([sealed_old, sealed_new]) == [payload(), payload()]


async def test_unknown_key_id_fails_with_a_clear_error() -> None:
    [sealed] = await EncryptionCodec(KeyRing.generate("key-a")).encode([payload()])
    with pytest.raises(UnknownKeyError, match=r"'key-a'.*not in the key ring.*key-b"):
        await EncryptionCodec(KeyRing.generate("key-b")).decode([sealed])


async def test_altered_or_relabelled_payloads_do_not_decrypt() -> None:
    ring = KeyRing.generate("key-a").with_new_key("key-b")
    codec = EncryptionCodec(ring)
    [sealed] = await codec.encode([payload()])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(DecryptionError):
        await codec.decode([altered])
    # The key id is authenticated: claiming the other key of the ring fails too.
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata["encryption"] = relabelled.metadata["encryption"].replace(
        b"4 key-b ", b"4 key-a "
    )
    assert key_id_of(relabelled) == "key-a"
    with pytest.raises(DecryptionError):
        await codec.decode([relabelled])


# Written by the codec before payloads were compressed (format 2, with its case-ref label):
# key "key-2026-11" = bytes 0..31, bound to an exchange of case 7w5rsnoqasseeiyqddba.
FORMAT_2_EXCHANGE = "case-7w5rsnoqasseeiyqddba.oakfield-primary"
FORMAT_2 = Payload(
    metadata={
        "encoding": b"binary/encrypted", "encryption-key-id": b"key-2026-11",
        "encryption-format": b"2", "encryption-namespace": b"default",
        "encryption-workflow-id": FORMAT_2_EXCHANGE.encode(), "case-ref": b"7w5rsnoqasseeiyqddba",
    },
    data=bytes.fromhex(
        "ff6f7e815c4aad6d88e0b39fcf0e7db997dd8dc8bcafd8992a5612074c2a9dc0727117fa8d7184df00ee"
        "649ae015e3bb978a784db37faf028a9705b632d53fd2d067ee243b05558cf4f7753a37e62a1bc1cc857f00"
    ),
)  # fmt: skip
FIXED_RING = KeyRing((("key-2026-11", bytes(range(32))),))


async def test_payloads_written_before_compression_still_decrypt() -> None:
    codec = EncryptionCodec(FIXED_RING, binding=("default", FORMAT_2_EXCHANGE))
    assert await codec.decode([FORMAT_2]) == [payload(b'"Okafor-Test lives at ZZ99 9ZZ"')]
    assert case_ref_of(FORMAT_2) == "7w5rsnoqasseeiyqddba"
    relabelled = Payload()
    relabelled.CopyFrom(FORMAT_2)
    relabelled.metadata["encryption-format"] = b"3"
    with pytest.raises(DecryptionError):
        await codec.decode([relabelled])


async def test_payloads_are_compressed_before_they_are_encrypted() -> None:
    binding = ("default", FORMAT_2_EXCHANGE)
    codec = EncryptionCodec(FIXED_RING, binding=binding)
    record = sharing_request()
    big = Payload(
        metadata={"encoding": b"json/protobuf", "messageType": b"sharing.v1.SharingRequest"},
        data=json_format.MessageToJson(record).encode() * 20,
    )
    [sealed] = await codec.encode([big])
    assert dict(sealed.metadata) == {
        "encoding": ENCODING,
        "encryption": f"4 key-2026-11 default {FORMAT_2_EXCHANGE}".encode(),
    }, "format 4: the binding in one label, no case-ref (the workflow id names the case)"
    assert case_ref_of(sealed) == "7w5rsnoqasseeiyqddba"
    assert len(sealed.data) < big.ByteSize() / 5
    assert b"Okafor" not in sealed.data
    assert await codec.decode([sealed]) == [big]
    # Not compressed where that would not be smaller, or where the codec is told not to;
    # either way every codec reads it.
    [tiny] = await codec.encode([payload(b"1")])
    uncompressed = EncryptionCodec(FIXED_RING, binding=binding, compress=False)
    [plain] = await uncompressed.encode([big])
    assert len(plain.data) > big.ByteSize()
    assert await codec.decode([tiny, plain]) == [payload(b"1"), big]
    assert await uncompressed.decode([sealed]) == [big]
    # Uncompressed is format 2, as before compression (for a rolling upgrade).
    assert plain.metadata["encryption-format"] == b"2"
    assert plain.metadata["case-ref"] == b"7w5rsnoqasseeiyqddba"
    off = data_converter(FIXED_RING, {"SAFESHARE_PAYLOAD_COMPRESSION": "off"})
    on = data_converter(FIXED_RING, {})
    assert off.payload_codec is not None and on.payload_codec is not None
    context = WorkflowSerializationContext(namespace="default", workflow_id=FORMAT_2_EXCHANGE)
    [written_off] = await off.payload_codec.with_context(context).encode([big])  # type: ignore[attr-defined]
    [written_on] = await on.payload_codec.with_context(context).encode([big])  # type: ignore[attr-defined]
    assert written_off.metadata["encryption-format"] == b"2"
    assert written_on.metadata["encryption"].startswith(b"4 ")
    # Labelled with another case: refused as moved.
    moved = Payload()
    moved.CopyFrom(sealed)
    moved.metadata["case-ref"] = b"otherrefotherrefothe"
    with pytest.raises(DecryptionError, match="another case"):
        await codec.decode([moved])


def test_the_compression_dictionary_never_changes() -> None:
    # Payloads deflated with it inflate only with these exact bytes.
    digest = hashlib.sha256(DICTIONARY_1).hexdigest()
    assert digest == "2e61c423db47374a755e2ae5f7f2617ff001fc49c3aa7e7c37db25e3ac75332d"


async def test_payloads_deflated_without_the_dictionary_still_decrypt() -> None:
    binding = ("default", FORMAT_2_EXCHANGE)
    codec = EncryptionCodec(FIXED_RING, binding=binding)
    original = payload(b'{"givenName": "Amara"}' * 10)
    nonce = os.urandom(aes.NONCE_BYTES)
    packed = packing.DEFLATED + packing.deflate(original.SerializeToString())
    aad = aes._compact_aad("key-2026-11", *binding)
    sealed = Payload(
        metadata={
            "encoding": ENCODING, KEY_ID_METADATA: b"key-2026-11", "encryption-format": b"3",
            "encryption-namespace": b"default", "encryption-workflow-id": binding[1].encode(),
        },
        data=nonce + AESGCM(bytes(range(32))).encrypt(nonce, packed, aad),
    )  # fmt: skip
    assert await codec.decode([sealed]) == [original]
    [written] = await codec.encode([original])
    assert len(written.data) < len(sealed.data), "the dictionary makes it smaller"


async def test_a_compressed_payload_that_inflates_past_the_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = EncryptionCodec(FIXED_RING, binding=("default", FORMAT_2_EXCHANGE))
    [sealed] = await codec.encode([payload(b"0" * 100_000)])
    assert len(sealed.data) < 1_000
    monkeypatch.setattr(packing, "MAX_INFLATED_BYTES", 50_000)
    with pytest.raises(DecryptionError, match="limit"):
        await codec.decode([sealed])


async def test_plaintext_payloads_are_refused_unless_a_migration_allows_them() -> None:
    with pytest.raises(DecryptionError, match="unencrypted"):
        await EncryptionCodec(KeyRing.generate()).decode([payload()])
    migrating = EncryptionCodec(KeyRing.generate(), allow_plaintext=True)
    assert await migrating.decode([payload()]) == [payload()]


def test_empty_ring_short_keys_and_duplicate_ids_are_refused() -> None:
    with pytest.raises(KeyRingError, match="empty"):
        KeyRing(())
    with pytest.raises(KeyRingError, match="32"):
        KeyRing((("k", b"short"),))
    with pytest.raises(KeyRingError, match="twice"):
        KeyRing((("k", bytes(32)), ("k", bytes(32))))


def test_key_file_formats_newest_first(tmp_path: Path) -> None:
    a, b = os.urandom(32), os.urandom(32)
    b64 = {name: base64.b64encode(key).decode() for name, key in (("a", a), ("b", b))}
    lines = f"# rotated in May\nkey-b:{b64['b']}\nkey-a:{b64['a']}\n"
    assert parse_key_ring(lines).keys == (("key-b", b), ("key-a", a))
    ring = KeyRing((("key-b", b), ("key-a", a)))
    assert parse_key_ring(ring.to_json()) == ring
    with pytest.raises(KeyRingError, match="base64") as bad:
        parse_key_ring("key-a:not base64!!")
    assert "not base64!!" not in str(bad.value)


def test_key_files_are_private_and_the_dev_file_is_made_once(tmp_path: Path) -> None:
    path = tmp_path / "dev" / "keys.json"
    first = ensure_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_key_file(path) == first, "a second start reuses the keys"
    path.chmod(0o644)
    with pytest.raises(KeyRingError, match="chmod 600"):
        load_key_file(path)
    path.chmod(0o600)
    rotated = first.with_new_key("next")
    write_key_file(path, rotated)
    assert load_key_file(path).active_id == "next"
    assert path.stat().st_mode & 0o777 == 0o600


def test_keys_from_the_environment(tmp_path: Path) -> None:
    ring = KeyRing.generate("env-key")
    assert keys_from_env({"SAFESHARE_KEYS": ring.to_json()}) == ring
    path = tmp_path / "keys.json"
    write_key_file(path, ring)
    assert keys_from_env({"SAFESHARE_KEYS_FILE": str(path)}) == ring
    assert keys_from_env({}) is None


@pytest.mark.asyncio(loop_scope="session")
async def test_settings_carry_the_converter_with_encoded_failures() -> None:
    ring = KeyRing.generate()
    converter = TemporalSettings(keys=ring).data_converter
    assert converter.payload_codec is not None
    [sealed] = await converter.payload_codec.encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=b'"Okafor-Test"')]
    )
    assert sealed.metadata["encoding"] == b"binary/encrypted" and b"Okafor-Test" not in sealed.data
    [opened] = await EncryptionCodec(ring).decode([sealed])
    assert opened.data == b'"Okafor-Test"'
    # 👉 Failure messages and stack traces go into an encrypted payload, not the clear.
    assert converter.failure_converter._encode_common_attributes  # type: ignore[attr-defined]
    assert TemporalSettings().data_converter is DataConverter.default


def _bound(converter: DataConverter, workflow_id: str) -> Any:
    codec: Any = converter.payload_codec
    return codec.with_context(WorkflowSerializationContext("default", workflow_id))


async def test_the_replay_converter_decrypts_as_workers_do_and_encrypts_nothing() -> None:
    converter = data_converter(KeyRing.generate(), {})
    replaying = replay_converter(converter)
    here, elsewhere = "case-" + "a" * 20, "case-" + "b" * 20
    [sealed] = await _bound(converter, here).encode([payload()])
    assert await _bound(replaying, here).decode([sealed]) == [payload()]
    # What the replayed code produces is left as it is: nothing of a replay is sent anywhere.
    assert await _bound(replaying, here).encode([payload()]) == [payload()]
    # And it refuses what the workers refuse: another case's payload, or plaintext.
    [moved] = await _bound(replaying, elsewhere).decode([sealed])
    assert moved.metadata["encoding"] == b"binary/refused"
    [plain] = await _bound(replaying, here).decode([payload()])
    assert plain.metadata["encoding"] == b"binary/refused"
    assert replay_converter(DataConverter.default) is DataConverter.default


class BrokenCodec(EncryptionCodec):
    """A codec whose encryption fails, as a missing key or a crypto error would."""

    def encrypt(self, payload: Payload) -> Payload:
        raise RuntimeError("encryption unavailable")


async def test_a_codec_that_cannot_encrypt_fails_the_call_and_stores_nothing(
    dev_server: WorkflowEnvironment,
) -> None:
    converter = dataclasses.replace(
        data_converter(KeyRing.generate()), payload_codec=BrokenCodec(KeyRing.generate())
    )
    config = dev_server.client.config()
    config["data_converter"] = converter
    client = Client(**config)
    workflow_id = f"case-broken-codec-{uuid.uuid4().hex}"
    with pytest.raises(RuntimeError, match="encryption unavailable"):
        await client.start_workflow(
            "SharingCase", sharing_request(), id=workflow_id, task_queue="nobody-polls"
        )
    with pytest.raises(RPCError, match="not found"):
        await dev_server.client.get_workflow_handle(workflow_id).describe()


async def test_what_temporal_stores_is_ciphertext_naming_the_key(
    dev_server: WorkflowEnvironment,
) -> None:
    ring = KeyRing.generate("stored-key")
    config = dev_server.client.config()
    config["data_converter"] = data_converter(ring)
    client = Client(**config)
    request = sharing_request()
    handle = await client.start_workflow(
        "SharingCase",
        request,
        id=f"case-stored-{uuid.uuid4().hex}",
        task_queue="nobody-polls",
        memo={"note": "memo text Okafor-Test"},
    )
    try:
        # Read back through a client without the codec: what the server holds.
        raw = dev_server.client.get_workflow_handle(handle.id)
        history = await raw.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        [stored] = started.input.payloads
        assert stored.metadata["encoding"] == ENCODING
        assert stored.metadata["encryption"].startswith(b"4 stored-key default case-stored-")
        everything = history.to_json().encode()
        for personal in (b"Okafor-Test", b"9990000018", b"2016-03-14", b"s47"):
            assert personal not in everything
            assert base64.b64encode(personal)[:8] not in everything
        # The memo is encrypted too, and both decode with the ring.
        described = await raw.describe()
        [stored_memo] = described.raw_description.workflow_execution_info.memo.fields.values()
        assert stored_memo.metadata["encoding"] == ENCODING
        [plain] = await EncryptionCodec(ring).decode([stored])
        assert DataConverter.default.payload_converter.from_payload(plain, pb.SharingRequest) == (
            request
        )
        memo = await (await client.get_workflow_handle(handle.id).describe()).memo_value("note")
        assert memo == "memo text Okafor-Test"
    finally:
        # Gone, not only closed: a SharingCase whose id is not a case's, left in the session's
        # server, would be listed by every archiver sweep of a later test.
        await dev_server.client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=dev_server.client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=handle.id),
            )
        )


def test_sharing_request_fixture_is_personal() -> None:
    # Guards the assertions above: if the factory stopped carrying these, they would pass vacuously.
    subject = sharing_request().subjects[0]
    assert (subject.family_name, subject.nhs_number) == ("Okafor-Test", "9990000018")


async def test_format_4_labels_the_binding_once_and_format_3_still_reads() -> None:
    binding = ("default", FORMAT_2_EXCHANGE)
    record = payload(json_format.MessageToJson(sharing_request()).encode())
    four = EncryptionCodec(FIXED_RING, binding=binding)
    for typo in ("three", "2", "5"):
        with pytest.raises(KeyRingError, match="SAFESHARE_PAYLOAD_FORMAT is"):
            data_converter(FIXED_RING, {"SAFESHARE_PAYLOAD_FORMAT": typo})
    explicit = data_converter(FIXED_RING, {"SAFESHARE_PAYLOAD_FORMAT": "4"}).payload_codec
    assert isinstance(explicit, EncryptionCodec)
    [written] = await explicit.with_context(WorkflowSerializationContext(*binding)).encode([record])
    assert written.metadata["encryption"].startswith(b"4 ")
    three = data_converter(FIXED_RING, {"SAFESHARE_PAYLOAD_FORMAT": "3"}).payload_codec
    assert isinstance(three, EncryptionCodec)
    three = three.with_context(WorkflowSerializationContext(*binding))
    [new], [old] = await four.encode([record]), await three.encode([record])
    assert old.metadata["encryption-format"] == b"3" and "encryption" not in old.metadata
    assert key_id_of(new) == key_id_of(old) == "key-2026-11"
    assert case_ref_of(new) == case_ref_of(old) == "7w5rsnoqasseeiyqddba"
    saved = old.ByteSize() - new.ByteSize()
    assert saved >= 70, f"format 4 saves the four entries' names: {saved} bytes"
    # Each build reads both; the binding is checked the same way.
    assert await four.decode([old, new]) == [record, record]
    assert await three.decode([new]) == [record]
    elsewhere = EncryptionCodec(FIXED_RING, binding=("default", case_workflow_id("b" * 20)))
    with pytest.raises(DecryptionError, match="another workflow"):
        await elsewhere.decode([new])
    # Relabelled into the other format, or with a label it does not have: refused.
    as_three = Payload(metadata=aes._long_labels("key-2026-11", b"3", *binding), data=new.data)
    as_four = Payload(
        metadata={
            "encoding": ENCODING,
            "encryption": f"4 key-2026-11 default {binding[1]}".encode(),
        },
        data=old.data,
    )
    for relabelled in (as_three, as_four):
        with pytest.raises(DecryptionError, match="does not decrypt"):
            await four.decode([relabelled])
    for label in (b"4 key-2026-11 default", b"5 key-2026-11 default x", b"4  default x", b""):
        bad = Payload(metadata={"encoding": ENCODING, "encryption": label}, data=new.data)
        with pytest.raises(DecryptionError, match="unknown format"):
            await four.decode([bad])
        assert key_id_of(bad) == ""


async def test_the_key_check_finds_key_ids_in_every_format() -> None:
    long_id = "case-7w5rsnoqasseeiyqddba." + "x" * 150  # a label over 127 bytes
    codecs = [
        EncryptionCodec(KeyRing.generate("key-four"), binding=("default", long_id)),
        EncryptionCodec(KeyRing.generate("key-three"), binding=("default", "w"), labelled=False),
        EncryptionCodec(KeyRing.generate("key-two"), binding=("default", "w"), compress=False),
    ]
    sealed = [(await codec.encode([payload()]))[0] for codec in codecs]
    history = Payloads(payloads=sealed).SerializeToString()
    assert key_ids_in(history) == {"key-four", "key-three", "key-two"}
    assert key_ids_in(Payloads(payloads=[payload()]).SerializeToString()) == set()
