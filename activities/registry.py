"""The partnership registry: the agencies that have signed the Information Sharing Protocol.

Operators keep it in a versioned TOML file (``partnership/registry.toml``). It is read by the
gateway (is this agency a partner?) and by the hub's protocol gate.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

from activities.agency import AGENCY_ID_PATTERN

DEFAULT_REGISTRY_PATH = Path(__file__).resolve().parent.parent / "partnership" / "registry.toml"


class RegistryError(Exception):
    """The registry file is missing or malformed."""


@dataclass(frozen=True)
class Agency:
    """One partner agency as the registry records it."""

    id: str
    name: str
    kind: str
    signed_protocol_version: str
    review_date: dt.date
    commissioned_by: str | None = None
    """For a contracted or commissioned provider: the partner agency that binds it."""


@dataclass(frozen=True)
class Registry:
    """The partnership registry at one version."""

    registry_version: int
    protocol_version: str
    agencies: dict[str, Agency]

    def get(self, agency_id: str) -> Agency | None:
        """The agency with this id, or None if it is not a partner."""
        return self.agencies.get(agency_id)


def load_registry(path: Path = DEFAULT_REGISTRY_PATH) -> Registry:
    """Read and validate the registry file.

    Raises:
        RegistryError: the file cannot be read or does not describe a valid registry.
    """
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise RegistryError(f"cannot read partnership registry {path}: {err}") from err
    try:
        agencies = {}
        for entry in data["agencies"]:
            agency = Agency(
                id=str(entry["id"]),
                name=str(entry["name"]),
                kind=str(entry["kind"]),
                signed_protocol_version=str(entry["signed_protocol_version"]),
                review_date=entry["review_date"],
                commissioned_by=entry.get("commissioned_by"),
            )
            if not AGENCY_ID_PATTERN.fullmatch(agency.id):
                raise RegistryError(f"agency id {agency.id!r} is not a valid code")
            if agency.id in agencies:
                raise RegistryError(f"agency {agency.id!r} is listed twice")
            agencies[agency.id] = agency
        for agency in agencies.values():
            if agency.commissioned_by and agency.commissioned_by not in agencies:
                raise RegistryError(
                    f"agency {agency.id!r} is commissioned by {agency.commissioned_by!r}, "
                    "which is not in the registry"
                )
        return Registry(
            registry_version=int(data["registry_version"]),
            protocol_version=str(data["protocol_version"]),
            agencies=agencies,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise RegistryError(f"partnership registry {path} is malformed: {err!r}") from err


class RegistrySource:
    """The registry file as a running process sees it: re-read whenever the file changes, so
    an operator's change (``safeshare registry ...``) counts without a restart. A malformed
    edit keeps the last good registry rather than locking every agency out."""

    def __init__(self, path: Path = DEFAULT_REGISTRY_PATH) -> None:
        self._path = path
        self._stamp = self._path.stat().st_mtime_ns
        self._registry = load_registry(path)

    def current(self) -> Registry:
        """The registry as the file says now (or the last good one)."""
        try:
            stamp = self._path.stat().st_mtime_ns
        except OSError:
            return self._registry
        if stamp != self._stamp:
            try:
                self._registry = load_registry(self._path)
            except RegistryError:
                return self._registry
            self._stamp = stamp
        return self._registry
