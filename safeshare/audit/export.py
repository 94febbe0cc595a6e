"""Export case histories from Temporal, as stored, with a manifest signed with Ed25519.

An export is a folder::

    case-<ref>.json              the SharingCase history (Temporal's JSON history format)
    case-<ref>.<holder>.json     each HolderExchange history (the case's children)
    manifest.json                per file: name, workflow id, run id, events, SHA-256
    manifest.sig                 Ed25519 signature over manifest.json's exact bytes

Payloads are written as Temporal stores them: encrypted payloads stay encrypted, so an export
holds no personal data in the clear. Only ``report`` decrypts, and only when given the keys.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from safeshare.audit.histories import (
    DISCLOSURE_CASE,
    SHARING_CASE,
    HistoryFacts,
    child_executions,
    dump_history,
    parse_history,
)
from safeshare.audit.signing import Signature
from workflows.ids import CASE_REF_PATTERN, case_workflow_id, consent_withdrawal_workflow_id

FORMAT = "safeshare-audit-export/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
DEFAULT_CONCURRENCY = 20


class ExportError(Exception):
    """An export could not be made (no such case, folder not empty, server refused)."""


@dataclass(frozen=True)
class ExportedHistory:
    """One workflow's history, as the bytes that go into its file."""

    workflow_id: str
    run_id: str
    content: bytes

    @property
    def file_name(self) -> str:
        """The file it is written to: its workflow id (refs and agency ids: no personal data)."""
        return f"{self.workflow_id}.json"


def manifest_entry(history: ExportedHistory) -> dict[str, Any]:
    """The manifest's record of one file."""
    facts = HistoryFacts.of(parse_history(history.content))
    return {
        "name": history.file_name,
        "workflow_id": history.workflow_id,
        "run_id": history.run_id,
        "workflow_type": facts.workflow_type,
        "event_count": facts.event_count,
        "first_event_id": facts.first_event_id,
        "last_event_id": facts.last_event_id,
        "last_event_type": facts.last_event_type,
        "size": len(history.content),
        "sha256": hashlib.sha256(history.content).hexdigest(),
    }


def write_export(
    folder: Path,
    histories: Sequence[ExportedHistory],
    key: Ed25519PrivateKey,
    *,
    namespace: str,
    selection: str,
) -> Path:
    """Write histories, the manifest and its signature into ``folder`` (new or empty).

    Returns:
        The manifest's path.

    Raises:
        ExportError: the folder holds files already (an export is never merged into another).
    """
    if folder.exists() and any(folder.iterdir()):
        raise ExportError(f"{folder} is not empty: export into a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    ordered = sorted(histories, key=lambda h: h.workflow_id)
    for history in ordered:
        (folder / history.file_name).write_bytes(history.content)
    manifest = {
        "format": FORMAT,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "namespace": namespace,
        "selection": selection,
        "files": [manifest_entry(h) for h in ordered],
    }
    manifest_bytes = (json.dumps(manifest, indent=1) + "\n").encode()
    (folder / MANIFEST).write_bytes(manifest_bytes)
    (folder / SIGNATURE).write_text(Signature.make(manifest_bytes, key).to_json())
    return folder / MANIFEST


def case_selection_query(
    query: str | None, closed_since: dt.datetime | None, closed_until: dt.datetime | None
) -> str:
    """A list query for the cases (requests' SharingCase and DisclosureCase workflows) to
    export."""
    clauses = [f"(WorkflowType = '{SHARING_CASE}' OR WorkflowType = '{DISCLOSURE_CASE}')"]
    if query:
        clauses.append(f"({query})")
    if closed_since:
        clauses.append(f"CloseTime >= '{closed_since.isoformat()}'")
    if closed_until:
        clauses.append(f"CloseTime < '{closed_until.isoformat()}'")
    return " AND ".join(clauses)


def case_id(ref_or_id: str) -> str:
    """The case workflow id for a case ref (or a case workflow id given as is).

    Raises:
        ExportError: not a case reference.
    """
    ref = ref_or_id.removeprefix("case-")
    if not CASE_REF_PATTERN.fullmatch(ref):
        raise ExportError(f"{ref_or_id!r} is not a case reference")
    return case_workflow_id(ref)


class HistoryFetcher:
    """Fetches histories as stored, with a bounded number of fetches in flight."""

    def __init__(self, client: Client, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(max(1, concurrency))

    async def history(self, workflow_id: str, run_id: str | None = None) -> ExportedHistory:
        """One workflow's history (the latest run unless ``run_id`` is given).

        Raises:
            ExportError: the server has no such workflow or refused.
        """
        async with self._slots:
            handle = self._client.get_workflow_handle(workflow_id, run_id=run_id)
            try:
                # 👉 fetch_history returns the raw events: the data converter (and so the
                # decryption) is never applied to them.
                history = await handle.fetch_history()
            except RPCError as err:
                raise ExportError(f"cannot fetch {workflow_id}: {err.status.name}") from None
        content = dump_history(history.to_json_dict())
        facts = HistoryFacts.of(parse_history(content))
        return ExportedHistory(workflow_id, run_id or facts.run_id, content)

    async def case(
        self, workflow_id: str, run_id: str | None = None, *, notices: bool = True
    ) -> list[ExportedHistory]:
        """A case's history, those of its exchanges (the children it started) and, with
        ``notices``, of any consent-withdrawal notice sent after an exchange closed (part of
        its record)."""
        case = await self.history(workflow_id, run_id)
        children = child_executions(parse_history(case.content))
        exchanges = await asyncio.gather(*(self.history(w, r) for w, r in children))
        if not notices:
            return [case, *exchanges]
        found = await asyncio.gather(*(self._if_any(_notice_id(w)) for w, _ in children))
        return [case, *exchanges, *(n for n in found if n is not None)]

    async def _if_any(self, workflow_id: str) -> ExportedHistory | None:
        try:
            await self._client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise ExportError(f"cannot fetch {workflow_id}: {err.status.name}") from None
        return await self.history(workflow_id)

    async def list_cases(self, query: str) -> list[tuple[str, str]]:
        """(workflow id, run id) of every case matching a list query.

        Raises:
            ExportError: the server refused the query.
        """
        try:
            return [(w.id, w.run_id) async for w in self._client.list_workflows(query)]
        except RPCError as err:
            raise ExportError(f"the server refused the list query: {err.message}") from None


ArchivedHistories = Callable[[str], Awaitable[list[ExportedHistory]]]
"""A case's histories from the case archive by case ref ([] when not archived)."""


def _notice_id(exchange_workflow_id: str) -> str:
    """The consent-withdrawal notice of an exchange (``case-<ref>.<holder>``)."""
    case, _, holder = exchange_workflow_id.partition(".")
    return consent_withdrawal_workflow_id(case.removeprefix("case-"), holder)


async def fetch_cases(
    fetcher: HistoryFetcher,
    cases: Sequence[tuple[str, str | None]],
    *,
    show_progress: bool,
    archived: ArchivedHistories | None = None,
) -> list[ExportedHistory]:
    """Every history of ``cases`` (case and exchanges), with a progress bar on stderr."""
    progress = Progress(
        TextColumn("[bold]export"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cases"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show_progress,
        transient=True,
    )
    with progress:
        task = progress.add_task("export", total=len(cases))

        async def one(workflow_id: str, run_id: str | None) -> list[ExportedHistory]:
            # 👉 The archive first: Temporal deletes a closed case after its retention.
            histories = await archived(workflow_id.removeprefix("case-")) if archived else []
            if not histories:
                histories = await fetcher.case(workflow_id, run_id)
            progress.advance(task)
            return histories

        per_case = await asyncio.gather(*(one(w, r) for w, r in cases))
    return [history for histories in per_case for history in histories]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    folder: Path
    cases: int
    files: int
    case_ids: tuple[str, ...] = ()
    """The workflow ids of the cases exported."""


async def export_cases(
    client: Client,
    folder: Path,
    key: Ed25519PrivateKey,
    *,
    refs: Sequence[str] = (),
    query: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    show_progress: bool = False,
    archived: ArchivedHistories | None = None,
) -> ExportResult:
    """Export the cases named by ``refs`` and those matching ``query`` into ``folder``.

    Raises:
        ExportError: nothing selected, an unknown case, a refused query, a non-empty folder.
    """
    fetcher = HistoryFetcher(client, concurrency)
    cases: dict[str, str | None] = {case_id(ref): None for ref in refs}
    if query:
        cases.update(await fetcher.list_cases(query))
    if not cases:
        raise ExportError("no case selected: name case refs or give a query that matches")
    histories = await fetch_cases(
        fetcher, list(cases.items()), show_progress=show_progress, archived=archived
    )
    parts = [f"cases: {', '.join(refs)}"] if refs else []
    if query:
        parts.append(f"query: {query}")
    write_export(folder, histories, key, namespace=client.namespace, selection="; ".join(parts))
    return ExportResult(folder, len(cases), len(histories), tuple(cases))
