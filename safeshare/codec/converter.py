"""The one data converter every SafeShare client and worker uses (via ``connect_temporal``)."""

from __future__ import annotations

from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from safeshare.codec.aes import EncryptionCodec
from safeshare.codec.keys import KeyRing


def data_converter(keys: KeyRing) -> DataConverter:
    """Protobuf/JSON payloads as usual, then AES-GCM encrypted; failures encoded too.

    👉 The default failure converter leaves a failure's message and stack trace in the clear;
    the encoded-attributes one moves them into an (encrypted) payload, so an exception that
    quotes a record cannot leak through a failure. A payload the codec refuses (unencrypted,
    another workflow's, altered) reaches no code: the SDK rejects the update or drops the signal.
    """
    return DataConverter(
        payload_codec=EncryptionCodec(keys, refusals_as_payloads=True),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
