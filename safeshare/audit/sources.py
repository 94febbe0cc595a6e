"""Where the auditors' commands read histories from: an export folder, or a live Temporal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client

from safeshare.audit.export import (
    MANIFEST,
    SIGNATURE,
    ArchivedHistories,
    ExportedHistory,
    HistoryFetcher,
    case_id,
    fetch_cases,
)
from safeshare.audit.replay import WORKFLOW_ID_INDEX, ReplayInputError


def histories_from_path(path: Path) -> list[ExportedHistory]:
    """The history files of an export folder (or the corpus, or one file), with their ids.

    Raises:
        ReplayInputError: nothing there.
    """
    folder = path if path.is_dir() else path.parent
    ids: dict[str, str] = {}
    runs: dict[str, str] = {}
    try:
        if (folder / MANIFEST).is_file():
            manifest = json.loads((folder / MANIFEST).read_bytes())
            ids = {str(e["name"]): str(e["workflow_id"]) for e in manifest["files"]}
            runs = {str(e["name"]): str(e["run_id"]) for e in manifest["files"]}
        elif (folder / WORKFLOW_ID_INDEX).is_file():
            ids = json.loads((folder / WORKFLOW_ID_INDEX).read_text())
    except (ValueError, KeyError, TypeError):
        raise ReplayInputError(f"unreadable manifest in {folder}") from None
    if path.is_dir():
        skip = {MANIFEST, SIGNATURE, WORKFLOW_ID_INDEX}
        files = sorted(p for p in path.glob("*.json") if p.name not in skip)
    elif path.is_file():
        files = [path]
    else:
        raise ReplayInputError(f"{path} does not exist")
    if not files:
        raise ReplayInputError(f"no history files in {path}")
    return [
        ExportedHistory(ids.get(f.name, f.stem), runs.get(f.name, ""), f.read_bytes())
        for f in files
    ]


async def histories_from_server(
    client: Client,
    refs: Sequence[str],
    query: str | None,
    *,
    show_progress: bool = False,
    archived: ArchivedHistories | None = None,
) -> list[ExportedHistory]:
    """The histories of the named cases and of those matching ``query``, with their exchanges.

    Raises:
        ExportError: an unknown case or a refused query.
    """
    fetcher = HistoryFetcher(client)
    cases: dict[str, str | None] = {case_id(ref): None for ref in refs}
    if query:
        cases.update(await fetcher.list_cases(query))
    return await fetch_cases(
        fetcher, list(cases.items()), show_progress=show_progress, archived=archived
    )
