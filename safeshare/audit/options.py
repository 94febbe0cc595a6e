"""The options the ``safeshare audit`` commands share, and the case selection they make.

Each is a typer annotation, written once and used by every command that takes it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

Query = Annotated[
    str | None,
    typer.Option(help="A list query selecting cases, e.g. \"CloseTime > '2026-11-01T00:00:00Z'\"."),
]
Cases = Annotated[
    list[str] | None, typer.Option("--case", help="A case ref to read from the server (repeat).")
]


ArchiveUrl = Annotated[
    str | None,
    typer.Option(
        "--archive",
        envvar="SAFESHARE_ARCHIVE_URL",
        help="The case archive, read before Temporal (default: .safeshare/archive.db if there).",
    ),
]
ExportPublicKey = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_AUDIT_PUBLIC_KEY",
        help="The exporter's public key: export folders are verified before they are read.",
    ),
]
ArchivePublicKey = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_ARCHIVE_PUBLIC_KEY",
        help="The archive's public key: archived cases are verified before they are read.",
    ),
]
Unverified = Annotated[
    bool,
    typer.Option(
        "--unverified",
        help="Go on although the evidence does not verify; every page then says so.",
    ),
]


def selection(
    query: str | None, closed_since: dt.datetime | None, closed_until: dt.datetime | None
) -> str | None:
    """The list query for ``--query``, ``--closed-since`` and ``--closed-until`` (None: none
    given); a time without a zone is UTC."""
    from safeshare.audit.export import case_selection_query

    if not (query or closed_since or closed_until):
        return None
    return case_selection_query(query, _utc(closed_since), _utc(closed_until))


def _utc(at: dt.datetime | None) -> dt.datetime | None:
    return at.replace(tzinfo=dt.UTC) if at and at.tzinfo is None else at
