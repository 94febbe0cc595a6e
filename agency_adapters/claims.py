"""The claim-check store: record content too large for a workflow history, kept beside it.

A claim is an opaque blob stored under its own SHA-256, so writing the same content twice is
one file, a retried activity reuses the claim it already wrote, and a reader can check that
what it read back is what was stored. The holder's adapter writes claims; the recipient's
adapter reads them: both must see the same directory (the default deployment runs every adapter
on the partnership's side, so a local or shared volume does).

Claims hold personal data: the directory must sit on encrypted storage with the same access
control as the adapters' own credentials, and be swept by retention policy.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_REF = re.compile(r"^sha256:([0-9a-f]{64})$")

DEFAULT_CLAIM_DIR = Path(".safeshare/claims")
"""Where claims live unless configured (``--claim-check-dir``, ``SAFESHARE_CLAIM_CHECK_DIR``)."""


class ClaimError(Exception):
    """A claim cannot be read back: unknown, malformed, or its content does not match."""


class ClaimStore:
    """Content-addressed blobs in a directory."""

    def __init__(self, root: Path) -> None:
        """Args:
        root: the directory; created on first write.
        """
        self.root = root

    def put(self, data: bytes) -> tuple[str, str]:
        """Store ``data`` once.

        Returns:
            The claim reference (``sha256:<hex>``) and the SHA-256 of ``data`` (hex).
        """
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a reader never sees half a claim, and two writers of the same
            # content race harmlessly to the same bytes.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".claim-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.chmod(tmp, 0o600)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return f"sha256:{digest}", digest

    def get(self, ref: str, digest: str) -> bytes:
        """The content stored under ``ref``, checked against ``digest``.

        Raises:
            ClaimError: the reference is malformed or unknown, or the content does not match.
        """
        match = _REF.fullmatch(ref)
        if match is None:
            raise ClaimError("malformed claim reference")
        try:
            data = self._path(match.group(1)).read_bytes()
        except FileNotFoundError:
            raise ClaimError("claim not found in the claim-check store") from None
        if hashlib.sha256(data).hexdigest() != digest or digest != match.group(1):
            raise ClaimError("claim content does not match its digest")
        return data

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest
