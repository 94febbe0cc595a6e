"""The key ring: the AES-256 keys that encrypt Temporal payloads, newest first.

The first key is the *active* one: it encrypts every new payload. Every key in the ring
decrypts, so a key is rotated by adding a new key in front and keeping the old ones for as long
as any history encrypted with them is kept (running and closed cases, exports, replays).

Keys come from a file or an environment variable that operators control, never from the code:

- ``SAFESHARE_KEYS_FILE``: a path to a key file (mode 0600; a looser mode is refused);
- ``SAFESHARE_KEYS``: the same content inline (for secret managers that inject variables).

Two formats are accepted, newest key first in both::

    {"keys": [{"id": "2026-05", "key": "<base64 of 32 bytes>"}, {"id": "2026-01", "key": "..."}]}

    2026-05:<base64 of 32 bytes>
    2026-01:<base64 of 32 bytes>
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

KEY_BYTES = 32
KEYS_FILE_ENV = "SAFESHARE_KEYS_FILE"
KEYS_ENV = "SAFESHARE_KEYS"
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyRingError(Exception):
    """The key ring is missing, malformed, too open, or lacks a key a payload needs."""


class UnknownKeyError(KeyRingError):
    """A payload was encrypted with a key that is not in the ring."""


@dataclass(frozen=True)
class KeyRing:
    """Named AES-256 keys, newest (active) first."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyRingError("the key ring is empty: there is no key to encrypt with")
        seen: set[str] = set()
        for key_id, key in self.keys:
            if not _KEY_ID.match(key_id):
                raise KeyRingError(f"bad key id {key_id!r}: use letters, digits, '.', '_', '-'")
            if key_id in seen:
                raise KeyRingError(f"key id {key_id!r} appears twice")
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"key {key_id!r} is {len(key)} bytes; AES-256 needs 32")
            seen.add(key_id)

    @property
    def active_id(self) -> str:
        """The id of the key that encrypts new payloads."""
        return self.keys[0][0]

    @property
    def ids(self) -> tuple[str, ...]:
        """Every key id, newest first."""
        return tuple(key_id for key_id, _ in self.keys)

    def key(self, key_id: str) -> bytes:
        """The key named ``key_id``.

        Raises:
            UnknownKeyError: no such key in the ring.
        """
        for known, key in self.keys:
            if known == key_id:
                return key
        raise UnknownKeyError(
            f"payload was encrypted with key {key_id!r}, which is not in the key ring "
            f"(known: {', '.join(self.ids)}); add the old key back to decrypt it"
        )

    def with_new_key(self, key_id: str, key: bytes | None = None) -> KeyRing:
        """This ring with a new active key in front (rotation); old keys still decrypt."""
        return KeyRing(((key_id, key or secrets.token_bytes(KEY_BYTES)), *self.keys))

    @classmethod
    def generate(cls, key_id: str | None = None) -> KeyRing:
        """A ring of one fresh random key."""
        return cls(((key_id or _new_key_id(), secrets.token_bytes(KEY_BYTES)),))

    def to_json(self) -> str:
        """The ring in the JSON key-file format."""
        keys = [{"id": i, "key": base64.b64encode(k).decode()} for i, k in self.keys]
        return json.dumps({"keys": keys}, indent=2) + "\n"


def parse_key_ring(text: str) -> KeyRing:
    """A ring from key-file content (JSON, or ``id:base64`` lines), newest first.

    Raises:
        KeyRingError: the content is malformed.
    """
    text = text.strip()
    entries: list[tuple[str, str]] = []
    if text.startswith("{"):
        try:
            document = json.loads(text)
            entries = [(str(e["id"]), str(e["key"])) for e in document["keys"]]
        except (ValueError, KeyError, TypeError) as err:
            raise KeyRingError(f"malformed JSON key file: {type(err).__name__}") from None
    else:
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key_id, colon, encoded = line.partition(":")
            if not colon:
                raise KeyRingError(f"key line {number} is not id:base64")
            entries.append((key_id.strip(), encoded.strip()))
    keys = []
    for key_id, encoded in entries:
        try:
            keys.append((key_id, base64.b64decode(encoded, validate=True)))
        except (binascii.Error, ValueError):
            # Never echo the key material itself.
            raise KeyRingError(f"key {key_id!r} is not valid base64") from None
    return KeyRing(tuple(keys))


def load_key_file(path: Path) -> KeyRing:
    """Read a key file, refusing one that others than its owner can read.

    Raises:
        KeyRingError: missing, readable by group or others, or malformed.
    """
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise KeyRingError(f"cannot read key file {path}: {err.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyRingError(f"key file {path} is readable by others; run: chmod 600 {path}")
    return parse_key_ring(path.read_text())


def keys_from_env(environ: Mapping[str, str] | None = None) -> KeyRing | None:
    """The ring named by ``SAFESHARE_KEYS_FILE`` or given by ``SAFESHARE_KEYS``; None if neither.

    Raises:
        KeyRingError: the variable is set but its keys are unusable.
    """
    environ = os.environ if environ is None else environ
    if environ.get(KEYS_FILE_ENV):
        return load_key_file(Path(environ[KEYS_FILE_ENV]))
    if environ.get(KEYS_ENV):
        return parse_key_ring(environ[KEYS_ENV])
    return None


def write_key_file(path: Path, ring: KeyRing) -> None:
    """Write ``ring`` to ``path`` with mode 0600, atomically (rotation rewrites the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    # O_EXCL and 0600 from the first byte: the key is never world-readable, even briefly.
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(ring.to_json())
    temporary.replace(path)


def ensure_key_file(path: Path, existing_data: tuple[Path, ...] = ()) -> KeyRing:
    """The ring in ``path``, creating a file with one fresh key if there is none (dev stack).

    Raises:
        KeyRingError: there is no key file but ``existing_data`` exists: the ring that
            encrypted it is lost or misplaced, and a new one beside it would leave every stored
            case unreadable while new cases work, so nothing would look wrong.
    """
    if not path.exists():
        stored = [str(p) for p in existing_data if p.exists()]
        if stored:
            raise KeyRingError(
                f"no key file at {path}, but encrypted case data exists ({', '.join(stored)}): "
                "restore the key ring from its backup; a new ring would make every stored case "
                "unreadable (refusing to create one)"
            )
        write_key_file(path, KeyRing.generate())
    return load_key_file(path)


def _new_key_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%d}-{secrets.token_hex(3)}"
