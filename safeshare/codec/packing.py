"""The plaintext of formats 3 and 4: one byte saying how the payload is stored, then the
serialized payload, deflated when that makes it smaller.

Raw DEFLATE (no zlib header or checksum: AES-GCM authenticates the bytes already) with a
preset dictionary of the protos' field and enum names (``deflate_dictionary``): ciphertext does
not compress, so this is the only place compression can happen, and a case's JSON payloads
shrink to about 30% of their size. Inflating is bounded: a payload that inflates past
``MAX_INFLATED_BYTES`` is refused, never expanded in memory.
"""

from __future__ import annotations

import zlib
from typing import Any

from safeshare.codec.deflate_dictionary import DICTIONARY_1

STORED = b"\x00"
DEFLATED = b"\x01"
DEFLATED_WITH_DICTIONARY_1 = b"\x02"
"""Deflated with ``deflate_dictionary.DICTIONARY_1`` preset (what the codec writes)."""
MAX_INFLATED_BYTES = 64 * 1024 * 1024
"""A compressed payload that inflates past this is refused (Temporal stores at most 2 MB)."""


class PackingError(ValueError):
    """A plaintext that is not a stored or deflated payload, or inflates past the limit."""


def packed(plain: bytes) -> bytes:
    """``plain`` (a serialized payload) deflated with dictionary 1, or stored as it is when
    deflating would not make it smaller."""
    deflated = deflate(plain, DICTIONARY_1)
    if len(deflated) < len(plain):
        return DEFLATED_WITH_DICTIONARY_1 + deflated
    return STORED + plain


def unpacked(packed: bytes) -> bytes:
    """The serialized payload in a plaintext: stored as is, or deflated (bounded).

    Raises:
        PackingError: an unknown kind, bytes that do not inflate, or past the limit.
    """
    kind, body = packed[:1], packed[1:]
    if kind == STORED:
        return body
    if kind == DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    elif kind == DEFLATED_WITH_DICTIONARY_1:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS, zdict=DICTIONARY_1)
    else:
        raise PackingError("encrypted payload in an unknown format")
    try:
        plain = inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error:
        raise PackingError("compressed payload does not inflate") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise PackingError("compressed payload inflates past the limit or is cut short")
    return plain


def _compressor(dictionary: bytes | None = None) -> Any:
    if dictionary is None:
        return zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=dictionary)


_PRIMED_WITH_DICTIONARY_1 = _compressor(DICTIONARY_1)
"""Never compresses itself: each payload gets a copy, the dictionary already loaded (loading
it is a third of the time of compressing a payload of a few hundred bytes)."""


def deflate(data: bytes, dictionary: bytes | None = None) -> bytes:
    """Raw DEFLATE of ``data``, with ``dictionary`` preset if given."""
    if dictionary is DICTIONARY_1:
        compressor = _PRIMED_WITH_DICTIONARY_1.copy()
    else:
        compressor = _compressor(dictionary)
    return compressor.compress(data) + compressor.flush()
