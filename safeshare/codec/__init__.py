"""Payload encryption: the key ring, the AES-GCM payload codec, the data converter every client
and worker uses, and the codec server through which authorised operators read cases."""

from __future__ import annotations

from safeshare.codec.aes import ENCODING, KEY_ID_METADATA, DecryptionError, EncryptionCodec
from safeshare.codec.converter import data_converter, replay_converter
from safeshare.codec.keys import (
    KEYS_ENV,
    KEYS_FILE_ENV,
    KeyRing,
    KeyRingError,
    UnknownKeyError,
    ensure_key_file,
    keys_from_env,
    load_key_file,
    parse_key_ring,
    write_key_file,
)

__all__ = [
    "ENCODING",
    "KEYS_ENV",
    "KEYS_FILE_ENV",
    "KEY_ID_METADATA",
    "DecryptionError",
    "EncryptionCodec",
    "KeyRing",
    "KeyRingError",
    "UnknownKeyError",
    "data_converter",
    "ensure_key_file",
    "keys_from_env",
    "load_key_file",
    "parse_key_ring",
    "replay_converter",
    "write_key_file",
]
