"""The partnership registry file: where it is kept, reading it, and watching it change.

``load_registry`` refuses a file that cannot be read or breaks the schema
(:mod:`partnership.schema`), naming the agency or the key, so ``safeshare registry validate``
refuses it too and a running process keeps its last good registry (``RegistrySource``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import structlog

from partnership.errors import RegistryError
from partnership.registry import Registry
from partnership.schema import parse_registry

DEFAULT_REGISTRY_PATH = Path(__file__).resolve().parent / "registry.toml"

log = structlog.get_logger("safeshare.registry")


def load_registry(path: Path = DEFAULT_REGISTRY_PATH) -> Registry:
    """Read and validate the registry file.

    Raises:
        RegistryError: the file cannot be read or does not describe a valid registry.
    """
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise RegistryError(
            f"cannot read partnership registry {path}: {err}", code="unreadable"
        ) from err
    try:
        return parse_registry(data)
    except RegistryError as err:
        raise RegistryError(f"partnership registry {path} is malformed: {err}",
                            agency_id=err.agency_id, code=err.code) from None  # fmt: skip


class RegistrySource:
    """The registry file as a running process sees it: re-read whenever the file changes, so
    an operator's change (``safeshare registry ...``) counts without a restart. A malformed
    edit keeps the last good registry rather than locking every agency out, and says why in
    the log (once per edit)."""

    def __init__(self, path: Path = DEFAULT_REGISTRY_PATH) -> None:
        self._path = path
        self._stamp = self._file_stamp()
        self._registry = load_registry(path)
        self._refused_stamp: tuple[int, int] | None = None

    def _file_stamp(self) -> tuple[int, int]:
        # Writers replace the file by rename: a new inode, whatever the clock says.
        status = self._path.stat()
        return status.st_mtime_ns, status.st_ino

    @property
    def path(self) -> Path:
        """The registry file."""
        return self._path

    def current(self) -> Registry:
        """The registry as the file says now (or the last good one)."""
        try:
            stamp = self._file_stamp()
        except OSError:
            return self._registry
        if stamp != self._stamp and stamp != self._refused_stamp:
            try:
                registry = load_registry(self._path)
            except RegistryError as err:
                self._refused_stamp = stamp
                # The message may quote the file; its agency id and rule code may be logged.
                log.warning("registry_reload_refused", code=err.code, agency_id=err.agency_id,
                            registry_version=self._registry.registry_version)  # fmt: skip
                return self._registry
            self._registry = registry
            self._stamp = stamp
            self._refused_stamp = None
            log.info("registry_reloaded", registry_version=registry.registry_version)
        return self._registry
