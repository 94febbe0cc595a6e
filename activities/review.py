"""The regular protocol review's activities: gather the figures, and write the report.

The figures come from three places, none of them personal data: the partnership registry
(signatories, commissioned providers), Temporal visibility (every case and exchange opened in
the period, with its search attributes: agencies, purpose, state, outcome, override), and the
decision records themselves (deadlines missed, from each exchange's escalations; training
attestations, from each request's requester). The report is written as Markdown and HTML.
The figures themselves, and those worked out from the registry, are in ``review_figures.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import TypeVar

import structlog
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError

from activities.names import GATHER_REVIEW_FIGURES, WRITE_REVIEW_REPORT
from activities.review_figures import (
    AccessSource,
    ArchivedCase,
    ArchiveSource,
    ReviewFigures,
    ReviewFiles,
    ReviewReport,
    ReviewWindow,
    deadlines_missed,
    registry_figures,
    training_lapses,
)
from partnership.registry_file import load_registry
from protos.sharing.v1 import case_pb2 as pb
from workflows.domain.vocabulary import code

log = structlog.get_logger("safeshare.review")

M = TypeVar("M", pb.SharingRequest, pb.DecisionRecord)

OPEN = "OPEN"
"""The outcome of a case or exchange that has not closed."""
QUERY_TIMEOUT = dt.timedelta(seconds=10)

# Read by name, not imported from workflows/: activities never import workflows.
_CASE_STATE = SearchAttributeKey.for_keyword("CaseState")
_PURPOSE = SearchAttributeKey.for_keyword("Purpose")
_REQUESTING_AGENCY = SearchAttributeKey.for_keyword("RequestingAgency")
_HOLDING_AGENCY = SearchAttributeKey.for_keyword_list("HoldingAgency")
_OVERRIDE_USED = SearchAttributeKey.for_bool("OverrideUsed")
_OUTCOME = SearchAttributeKey.for_keyword("Outcome")
_CASE_KIND = SearchAttributeKey.for_keyword("CaseKind")
_ESCALATED = SearchAttributeKey.for_bool("Escalated")


def visibility_time(at: dt.datetime) -> str:
    """A time as a visibility query literal (RFC 3339, UTC)."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def window_query(workflow_type: str, window: ReviewWindow) -> str:
    """The list query for workflows of ``workflow_type`` opened in ``window``."""
    start = visibility_time(dt.datetime.fromisoformat(window.start))
    end = visibility_time(dt.datetime.fromisoformat(window.end))
    return f"WorkflowType='{workflow_type}' AND StartTime >= '{start}' AND StartTime < '{end}'"


def _outcome(execution: WorkflowExecution) -> str:
    outcome = execution.typed_search_attributes.get(_OUTCOME)
    if outcome and outcome != "UNSPECIFIED":
        return outcome
    if execution.status in (None, WorkflowExecutionStatus.RUNNING):
        return OPEN
    return execution.status.name


class ProtocolReviewActivities:
    """The review's activities, given the hub's Temporal client and the registry file."""

    def __init__(
        self,
        client: Client,
        registry_path: Path,
        access: AccessSource | None = None,
        archive: ArchiveSource | None = None,
    ) -> None:
        self._client = client
        self._registry_path = registry_path
        self._access = access
        self._archive = archive
        self._archived: list[tuple[ArchivedCase, pb.DecisionRecord]] = []

    @activity.defn(name=GATHER_REVIEW_FIGURES)
    async def gather_figures(self, window: ReviewWindow) -> ReviewFigures:
        """Every figure of the review for cases opened in ``window``."""
        as_of = dt.datetime.fromisoformat(window.end)
        figures = registry_figures(load_registry(self._registry_path), as_of.date())
        figures.window = window
        self._archived = []
        if self._archive is not None:
            start = dt.datetime.fromisoformat(window.start)
            for case in await asyncio.to_thread(self._archive, start, as_of):
                record = await self._decode(case.workflow_id, case.result, pb.DecisionRecord)
                if record is None:  # still a case opened in the window, from its index
                    figures.undecodable_cases += 1
                    record = pb.DecisionRecord()
                self._archived.append((case, record))
        requests = await self._cases(window, figures)
        figures.training = training_lapses(requests, as_of)
        records = await self._exchanges(window, figures)
        figures.deadlines_missed = deadlines_missed(records)
        await self._disclosures(window, figures)
        if self._access is not None:
            start = dt.datetime.fromisoformat(window.start)
            accesses = await asyncio.to_thread(self._access, start, as_of)
            figures.accesses_by_agency = accesses.by_agency
            figures.accesses_by_purpose = accesses.by_purpose
            figures.refused_accesses = accesses.refused
        log.info("review_figures_gathered", cases=figures.cases_opened,
                 unreadable=figures.unreadable_records,
                 undecodable=figures.undecodable_cases)  # fmt: skip
        return figures

    async def _disclosures(self, window: ReviewWindow, figures: ReviewFigures) -> None:
        """Disclosures by kind, and whose acknowledgement met its deadline (from the search
        attributes: a missed deadline sets Escalated; no payload is read)."""
        by_kind: Counter[str] = Counter()
        deadlines: dict[str, Counter[str]] = {}
        query = window_query("DisclosureCase", window)
        async for execution in self._client.list_workflows(query):
            activity.heartbeat()
            attributes = execution.typed_search_attributes
            kind = attributes.get(_CASE_KIND) or "unknown"
            by_kind[kind] += 1
            if attributes.get(_ESCALATED):
                met = "missed"
            elif execution.status in (None, WorkflowExecutionStatus.RUNNING):
                met = "open"
            else:
                met = "met"
            deadlines.setdefault(kind, Counter())[met] += 1
        figures.disclosures_by_kind = dict(by_kind)
        figures.disclosure_deadlines = {kind: dict(c) for kind, c in sorted(deadlines.items())}

    async def _cases(self, window: ReviewWindow, figures: ReviewFigures) -> list[pb.SharingRequest]:
        by_agency: Counter[str] = Counter()
        by_purpose: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        requests = []
        seen: set[str] = set()
        async for execution in self._client.list_workflows(window_query("SharingCase", window)):
            activity.heartbeat()
            seen.add(execution.id)
            attributes = execution.typed_search_attributes
            by_agency[attributes.get(_REQUESTING_AGENCY) or "unknown"] += 1
            by_purpose[attributes.get(_PURPOSE) or "unknown"] += 1
            outcomes[_outcome(execution)] += 1
            request = await self._request(execution)
            if request is None:
                figures.undecodable_cases += 1
            else:
                requests.append(request)
        # Cases Temporal has deleted after its retention are counted from the archive.
        self._archived = [(c, r) for c, r in self._archived if c.workflow_id not in seen]
        for case, record in self._archived:
            by_agency[case.requesting_agency or "unknown"] += 1
            by_purpose[case.purpose or "unknown"] += 1
            outcomes[case.outcome or "unknown"] += 1
            requests.append(record.request)
        figures.cases_opened = sum(outcomes.values())
        figures.cases_by_requesting_agency = dict(sorted(by_agency.items()))
        figures.cases_by_purpose = dict(sorted(by_purpose.items()))
        figures.case_outcomes = dict(sorted(outcomes.items()))
        return requests

    async def _request(self, execution: WorkflowExecution) -> pb.SharingRequest | None:
        """The case's request, from its first history event (no worker needed)."""
        handle = self._client.get_workflow_handle(execution.id, run_id=execution.run_id)
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            if not payloads:
                return None
            return await self._decode(execution.id, payloads[0], pb.SharingRequest)
        return None

    async def _decode(self, workflow_id: str, stored: Payload | bytes, kind: type[M]) -> M | None:
        """A payload (or one stored serialized) as ``kind``, or None (logged) where this worker
        cannot decode it: one case encrypted with a key it lacks must not stop the review."""
        try:
            payload = stored if isinstance(stored, Payload) else Payload.FromString(stored)
            [value] = await self._client.data_converter.decode([payload], [kind])
        # The codec's errors name the key id, never the payload; only the type is logged.
        except Exception as err:
            log.warning("review_payload_undecodable", workflow_id=workflow_id,
                        error=type(err).__name__)  # fmt: skip
            return None
        return value if isinstance(value, kind) else None

    async def _exchanges(
        self, window: ReviewWindow, figures: ReviewFigures
    ) -> list[pb.HolderRecord]:
        by_holder: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        records = []
        # A case counted from the archive brings its exchanges' records with it; visibility may
        # still list an exchange whose case it has already forgotten (deletions land one by one).
        from_archive = {case.workflow_id for case, _ in self._archived}
        query = window_query("HolderExchange", window)
        async for execution in self._client.list_workflows(query):
            activity.heartbeat()
            if execution.id.split(".", 1)[0] in from_archive:
                continue
            attributes = execution.typed_search_attributes
            for holder in attributes.get(_HOLDING_AGENCY) or ["unknown"]:
                by_holder[holder] += 1
            outcomes[_outcome(execution)] += 1
            figures.overrides_used += bool(attributes.get(_OVERRIDE_USED))
            running = execution.status == WorkflowExecutionStatus.RUNNING
            if running and attributes.get(_CASE_STATE) == "AWAITING_ACKNOWLEDGEMENT":
                figures.acknowledgements_outstanding += 1
            record = await self._holder_record(execution, running)
            if record is None:
                figures.unreadable_records += 1
            else:
                records.append(record)
        for _, case_record in self._archived:  # deleted from Temporal: from the archive
            for exchange in case_record.holders:
                by_holder[exchange.holding_agency_id] += 1
                outcomes[code(pb.Outcome, exchange.outcome)] += 1
                figures.overrides_used += bool(exchange.override_used)
                records.append(exchange)
        figures.exchanges_by_holding_agency = dict(sorted(by_holder.items()))
        figures.exchange_outcomes = dict(sorted(outcomes.items()))
        return records

    async def _holder_record(
        self, execution: WorkflowExecution, running: bool
    ) -> pb.HolderRecord | None:
        """A closed exchange's result (from history), or an open one's record (a query)."""
        handle = self._client.get_workflow_handle(
            execution.id, run_id=execution.run_id, result_type=pb.HolderRecord
        )
        try:
            if running:
                record = await handle.query(
                    "holder_record", result_type=pb.HolderRecord, rpc_timeout=QUERY_TIMEOUT
                )
            else:
                record = await handle.result(follow_runs=False)
        # Failed or terminated, or (open) no worker answers: counted as unreadable.
        except (RPCError, Exception) as err:
            log.warning("review_record_unreadable", workflow_id=execution.id,
                        error=type(err).__name__)  # fmt: skip
            return None
        return record if isinstance(record, pb.HolderRecord) else None

    @activity.defn(name=WRITE_REVIEW_REPORT)
    async def write_report(self, report: ReviewReport) -> ReviewFiles:
        """Write the report as Markdown and HTML into ``report.reports_dir``."""
        from activities.review_report import render_html, render_markdown

        folder = Path(report.reports_dir)
        end = dt.datetime.fromisoformat(report.figures.window.end)
        stem = f"protocol-review-{end.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
        markdown = folder / f"{stem}.md"
        html = folder / f"{stem}.html"
        # File writes off the event loop: the worker's other activities keep running.
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(_write_atomically, markdown, render_markdown(report.figures))
        await asyncio.to_thread(_write_atomically, html, render_html(report.figures))
        log.info("review_report_written", markdown=str(markdown))
        return ReviewFiles(markdown=str(markdown), html=str(html))


def _write_atomically(path: Path, text: str) -> None:
    # A reader never sees half a report: write beside it, then rename over it.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(temporary, path)
