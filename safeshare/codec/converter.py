"""The one data converter every SafeShare client and worker uses (via ``connect_temporal``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from safeshare.codec.aes import EncryptionCodec
from safeshare.codec.keys import KeyRing

COMPRESSION_ENV = "SAFESHARE_PAYLOAD_COMPRESSION"
"""``off`` writes payloads uncompressed (format 2: what a build before compression reads);
anything else, or unset, compresses. Every build reads both."""


def data_converter(keys: KeyRing, environ: Mapping[str, str] | None = None) -> DataConverter:
    """Protobuf/JSON payloads as usual, then AES-GCM encrypted; failures encoded too.

    👉 The default failure converter leaves a failure's message and stack trace in the clear;
    the encoded-attributes one moves them into an (encrypted) payload, so an exception that
    quotes a record cannot leak through a failure. A payload the codec refuses (unencrypted,
    another workflow's, altered) reaches no code: the SDK rejects the update or drops the signal.
    """
    environ = os.environ if environ is None else environ
    compress = environ.get(COMPRESSION_ENV, "").strip().lower() != "off"
    return DataConverter(
        payload_codec=EncryptionCodec(keys, refusals_as_payloads=True, compress=compress),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
