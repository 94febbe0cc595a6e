"""The partnership registry's one error: its file is missing or malformed.

Raised by the schema (:mod:`partnership.schema`) and by reading the file
(:mod:`partnership.registry_file`); callers tell its rules apart by ``code``.
"""

from __future__ import annotations


class RegistryError(Exception):
    """The registry file is missing or malformed.

    ``agency_id`` names the agency whose entry breaks a rule, and ``code`` the kind of rule
    (``unreadable``, ``schema``, ``binding``): both safe to log, unlike the message, which may
    quote a value from the file.
    """

    def __init__(self, message: str, *, agency_id: str = "", code: str = "schema") -> None:
        super().__init__(message)
        self.agency_id = agency_id
        self.code = code
