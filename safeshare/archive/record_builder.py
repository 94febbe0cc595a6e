"""The record of one closed workflow, built from Temporal and checked to have closed.

Which workflow types are archived (``KINDS``), their histories fetched as stored (a case with
its exchanges; a consent-withdrawal notice alone) and each checked to have closed, the result
payload exactly as stored, and the index fields from search attributes and visibility. No
payload keys are needed: what is encrypted stays encrypted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from safeshare.archive.records import CASE, CONSENT_WITHDRAWAL, ArchiveRecord, History, IndexFields
from safeshare.audit.export import HistoryFetcher
from safeshare.audit.histories import HistoryFacts, HistoryFileError, parse_history
from workflows import search_attributes as sa
from workflows.ids import case_ref_from_workflow_id, consent_withdrawal_workflow_id

KINDS = {
    "SharingCase": CASE,
    "DisclosureCase": CASE,  # its result is a decision record too
    "ConsentWithdrawalNotice": CONSENT_WITHDRAWAL,
}
CLOSED_EVENTS = frozenset(
    f"EVENT_TYPE_WORKFLOW_EXECUTION_{kind}"
    for kind in ("COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED", "CANCELED")
)


class HistoryNotSettled(Exception):
    """A history changed between two reads, or has not closed yet: archived on a later sweep."""


class UnreadableWorkflow(Exception):
    """A listed workflow the archiver cannot read: its id is not a SafeShare workflow's, or
    its history is not one the archiver can parse. Retried on every sweep (see ``archiver``)."""


# What reading a history or a workflow id raises when it is not what SafeShare writes.
_UNREADABLE = (
    HistoryFileError, ValueError, KeyError, IndexError, TypeError, AttributeError,
    json_format.ParseError, DecodeError,
)  # fmt: skip


class RecordBuilder:
    """Builds the archive record of a closed workflow (the archiver's first step)."""

    def __init__(self, client: Client, fetcher: HistoryFetcher, protocol_version: str) -> None:
        self._client = client
        self._fetcher = fetcher
        self._protocol_version = protocol_version

    async def build(self, execution: WorkflowExecution) -> ArchiveRecord:
        """The record of one closed workflow, from Temporal (no payload keys needed).

        Raises:
            HistoryNotSettled: a history in it has not closed.
            UnreadableWorkflow: not a SafeShare workflow, or a history that does not parse.
            ExportError, RPCError: Temporal refused.
        """
        try:
            kind = KINDS[execution.workflow_type]
            case_ref = case_ref_from_workflow_id(execution.id)
            if kind == CONSENT_WITHDRAWAL and _notice_holder(execution.id) is None:
                raise ValueError("not a consent-withdrawal notice's workflow id")
            if kind == CASE:
                exported = await self._fetcher.case(execution.id, execution.run_id, notices=False)
            else:
                exported = [await self._fetcher.history(execution.id, execution.run_id)]
            histories = []
            for item in exported:
                events = parse_history(item.content)
                facts = HistoryFacts.of(events)
                if facts.last_event_type not in CLOSED_EVENTS:
                    raise HistoryNotSettled(f"{item.workflow_id} has not closed")
                histories.append(
                    History(item.workflow_id, item.run_id, facts.workflow_type, item.content)
                )
            result = result_payload(parse_history(histories[0].content))
        except _UNREADABLE as err:
            raise UnreadableWorkflow("the archiver cannot read this workflow") from err
        children = [h.workflow_id for h in histories[1:]]
        return ArchiveRecord(
            record_id=execution.id,
            case_ref=case_ref,
            kind=kind,
            run_id=execution.run_id,
            index=await self._index(execution, children),
            histories=histories,
            result=result,
        )

    async def _index(self, execution: WorkflowExecution, children: Sequence[str]) -> IndexFields:
        attributes = execution.typed_search_attributes
        override = bool(attributes.get(sa.OVERRIDE_USED))
        escalated = bool(attributes.get(sa.ESCALATED))
        for child in children:
            described = await self._client.get_workflow_handle(child).describe()
            override = override or bool(described.typed_search_attributes.get(sa.OVERRIDE_USED))
            escalated = escalated or bool(described.typed_search_attributes.get(sa.ESCALATED))
        holders = tuple(attributes.get(sa.HOLDING_AGENCY) or ())
        if not holders and execution.workflow_type == "ConsentWithdrawalNotice":
            holders = (_notice_holder(execution.id) or "",)
        outcome = attributes.get(sa.OUTCOME) or (
            "" if execution.status == WorkflowExecutionStatus.COMPLETED
            else (execution.status.name if execution.status else "")
        )  # fmt: skip
        return IndexFields(
            closed_at=_rfc3339(execution.close_time),
            opened_at=_rfc3339(execution.start_time),
            requesting_agency=attributes.get(sa.REQUESTING_AGENCY) or "",
            holding_agencies=holders,
            purpose=attributes.get(sa.PURPOSE) or "",
            urgency=attributes.get(sa.URGENCY) or "",
            outcome=outcome,
            override_used=override,
            escalated=escalated,
            protocol_version=self._protocol_version,
            disclosure_kind=attributes.get(sa.CASE_KIND) or "",
            recipient_agencies=tuple(attributes.get(sa.RECIPIENT_AGENCY) or ()),
        )


def _notice_holder(workflow_id: str) -> str | None:
    """The holder named by a consent-withdrawal notice's id, or None if it is not one."""
    ref = case_ref_from_workflow_id(workflow_id)
    for holder in workflow_id.split(".")[1:2]:
        if consent_withdrawal_workflow_id(ref, holder) == workflow_id:
            return holder
    return None


def result_payload(events: list[dict[str, Any]]) -> bytes:
    """The workflow's result payload exactly as stored (encrypted stays encrypted), or b""."""
    if not events:
        return b""
    attributes = events[-1].get("workflowExecutionCompletedEventAttributes") or {}
    payloads = (attributes.get("result") or {}).get("payloads") or []
    if not payloads:
        return b""
    payload = json_format.ParseDict(payloads[0], Payload(), ignore_unknown_fields=True)
    return payload.SerializeToString(deterministic=True)


def _rfc3339(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if at else ""
