"""What a ``safeshare audit`` command reads cases through: Temporal, the case archive, the keys.

The client never decodes: histories are fetched as stored. Only the converter built from the
keys decrypts, and only the commands that must (``replay``, ``report``) build one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.converter import DataConverter

from safeshare.audit.exits import fail
from safeshare.codec import KeyRingError, data_converter, keys_from_env, load_key_file
from safeshare.temporal_options import TemporalFlags

if TYPE_CHECKING:
    from temporalio.client import Client


def converter_for(keys_file: Path | None) -> DataConverter:
    """The codec's converter for the given keys; the default one if there are none."""
    try:
        keys = load_key_file(keys_file) if keys_file else keys_from_env()
    except KeyRingError as err:
        raise fail(err) from None
    return DataConverter.default if keys is None else data_converter(keys)


async def connect(flags: TemporalFlags) -> Client:
    """A Temporal client from the command's flags; a bad configuration is one error line."""
    from safeshare.temporal import TemporalConfigError, connect_temporal

    try:
        # 👉 No keys: histories are fetched as stored, and the client never decodes them.
        settings = flags.settings()
    except TemporalConfigError as err:
        raise fail(err) from None
    return await connect_temporal(settings)


class CaseArchive:
    """The case archive a command reads, if there is one, and its verification."""

    def __init__(self, url: str | None) -> None:
        from safeshare.archive.url import default_archive_url, open_archive

        self.url = url or default_archive_url()
        self.store = open_archive(self.url) if self.url else None
        self.read: list[str] = []

    def histories(self, client: Client) -> Any:
        """The callable ``fetch_cases`` reads archived histories with (None: no archive)."""
        if self.store is None:
            return None
        from safeshare.archive.reader import CaseReader

        reader = CaseReader(client, self.store)

        async def archived(case_ref: str) -> list[Any]:
            found = await reader.histories(case_ref)
            if found:
                self.read.append(case_ref)
            return found

        return archived

    def check(self, public_key: Path | None, evidence: Any) -> None:
        """Verify what was read from the archive (nothing read: nothing to check)."""
        if not self.read or self.store is None:
            return
        if public_key is None:
            evidence.findings.append("archive: no --archive-public-key to verify it")
            return
        from safeshare.archive.checkpoint import DEFAULT_ORIGIN, VerifierKey
        from safeshare.audit.evidence import check_archive
        from safeshare.audit.signing import load_public_key

        verifier = VerifierKey(DEFAULT_ORIGIN, load_public_key(public_key))
        check_archive(self.store, verifier, self.read, evidence)

    def close(self) -> None:
        """Close the archive's store, if one was opened."""
        if self.store is not None:
            self.store.close()
