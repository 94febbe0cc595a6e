"""The hub's activity that answers who may decide an agency's overrides, from the partnership
registry (:mod:`partnership.registry`)."""

from __future__ import annotations

from pathlib import Path

from temporalio import activity

from activities.names import APPROVERS_OF
from partnership.registry_file import DEFAULT_REGISTRY_PATH, load_registry


class ApproverLookup:
    """The hub's answer to "who may decide this agency's overrides", from the registry file
    as it is now (read at each call: a registry edit applies to the next decision)."""

    def __init__(self, path: Path = DEFAULT_REGISTRY_PATH) -> None:
        """Args:
        path: the registry file.
        """
        self._path = path

    @activity.defn(name=APPROVERS_OF)
    async def approvers_of(self, agency_id: str) -> list[str]:
        """The approvers the registry names for ``agency_id`` (empty: none named)."""
        agency = load_registry(self._path).get(agency_id)
        return list(agency.approvers) if agency is not None else []
