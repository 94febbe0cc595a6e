"""The one data converter every SafeShare client and worker uses (via ``connect_temporal``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Self

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)

from safeshare.codec.aes import EncryptionCodec
from safeshare.codec.keys import KeyRing, KeyRingError

COMPRESSION_ENV = "SAFESHARE_PAYLOAD_COMPRESSION"
"""``off`` writes payloads uncompressed (format 2: what a build before compression reads);
anything else, or unset, compresses. Every build reads both."""
FORMAT_ENV = "SAFESHARE_PAYLOAD_FORMAT"
"""``3`` writes compressed payloads in format 3 (their binding in four metadata entries: what a
build before format 4 reads); ``4``, or unset, writes format 4; anything else is refused (a typo
during a rolling upgrade must not write what the old builds cannot read). Every build reads
both."""


def data_converter(keys: KeyRing, environ: Mapping[str, str] | None = None) -> DataConverter:
    """Protobuf/JSON payloads as usual, then AES-GCM encrypted; failures encoded too.

    👉 The default failure converter leaves a failure's message and stack trace in the clear;
    the encoded-attributes one moves them into an (encrypted) payload, so an exception that
    quotes a record cannot leak through a failure. A payload the codec refuses (unencrypted,
    another workflow's, altered) reaches no code: the SDK rejects the update or drops the signal.

    Raises:
        KeyRingError: ``SAFESHARE_PAYLOAD_FORMAT`` names no format this build writes.
    """
    environ = os.environ if environ is None else environ
    compress = environ.get(COMPRESSION_ENV, "").strip().lower() != "off"
    written = environ.get(FORMAT_ENV, "").strip()
    if written not in ("", "3", "4"):
        raise KeyRingError(
            f"{FORMAT_ENV} is {written!r}: set 3 (during a rolling upgrade from a build before "
            "format 4) or 4 (the default), or leave it unset"
        )
    labelled = written != "3"
    return DataConverter(
        payload_codec=EncryptionCodec(
            keys, refusals_as_payloads=True, compress=compress, labelled=labelled
        ),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


class _DecodeOnly(PayloadCodec, WithSerializationContext):
    """Decodes with the codec it wraps; encodes nothing (what a replay writes goes nowhere)."""

    def __init__(self, codec: PayloadCodec) -> None:
        self._codec = codec

    def with_context(self, context: SerializationContext) -> Self:
        """The wrapped codec bound to ``context``, still encoding nothing."""
        codec = self._codec
        if isinstance(codec, WithSerializationContext):
            codec = codec.with_context(context)
        return type(self)(codec)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """The payloads as they are."""
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decoded by the wrapped codec, which refuses what it always refuses."""
        return await self._codec.decode(payloads)


def replay_converter(converter: DataConverter) -> DataConverter:
    """``converter`` for a Replayer only: it decodes every payload of the history as the
    workers do, and does not encrypt what the replayed workflow code produces.

    👉 A replay sends nothing anywhere: the Replayer compares the commands the code makes with
    the history and drops them, so encrypting their payloads (compressing, sealing, a random
    nonce each) is wasted work, a tenth of a replay's time. Never give this converter to a
    client or a worker: it would write plaintext.
    """
    if converter.payload_codec is None:
        return converter
    return dataclasses.replace(converter, payload_codec=_DecodeOnly(converter.payload_codec))
