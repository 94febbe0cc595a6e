"""A case's report: its decision record, read from its histories, with the record's timeline.

For a closed case the source is the workflow's result, the ``DecisionRecord`` in the
WorkflowExecutionCompleted event (golden rule 7: every decision with who, when and why). For an
open case the record is rebuilt from the request (the case's started event), each closed
exchange's ``HolderRecord``, and each open exchange's accepted updates and signals. Payloads are
decrypted with the data converter given (the keys): only ``report`` ever decrypts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from protos.sharing.v1 import case_pb2 as pb
from safeshare.audit.export import ExportedHistory
from safeshare.audit.histories import (
    CASE_TYPES,
    DISCLOSURE_CASE,
    HOLDER_EXCHANGE,
    HistoryFacts,
    parse_history,
)
from safeshare.audit.timeline import Step, enum_name, timeline


class ReportError(Exception):
    """A case's histories cannot be read or decrypted."""


@dataclass
class CaseReport:
    """A case's decision record in readable form."""

    case_ref: str
    closed: bool
    record: pb.DecisionRecord
    steps: list[Step] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """The outcome's name, or OPEN."""
        if self.record.outcome == pb.OUTCOME_UNSPECIFIED:
            return "OPEN"
        return enum_name(pb.Outcome, self.record.outcome)

    @property
    def overrides(self) -> int:
        """Holders that shared under an override (approved, or RED share-first)."""
        return sum(h.override_used for h in self.record.holders)

    @property
    def missed_deadlines(self) -> int:
        """Distinct deadlines missed (each escalates in up to three rungs)."""
        return len({(h.holding_agency_id, e.step, e.at.seconds) for h in self.record.holders
                    for e in h.escalations if e.level == "reminder"})  # fmt: skip

    @property
    def escalations(self) -> int:
        """Every escalation: reminders, safeguarding leads and the partnership operator told."""
        return sum(len(h.escalations) for h in self.record.holders)


def group_by_case(histories: Sequence[ExportedHistory]) -> dict[str, list[ExportedHistory]]:
    """Histories by case workflow id (``case-<ref>``), the case first."""
    cases: dict[str, list[ExportedHistory]] = defaultdict(list)
    for history in sorted(histories, key=lambda h: h.workflow_id):
        cases[history.workflow_id.split(".", 1)[0]].append(history)
    return dict(cases)


def has_case_history(histories: Sequence[ExportedHistory]) -> bool:
    """Whether the case's own history (SharingCase or DisclosureCase) is among them: a notice
    started after Temporal deleted its case can be exported without it."""
    return any(_type(h) in CASE_TYPES for h in histories)


async def case_report(histories: Sequence[ExportedHistory], converter: DataConverter) -> CaseReport:
    """The report of one case from its histories (the case's and its exchanges').

    Raises:
        ReportError: no case history among them, or a payload cannot be decrypted.
    """
    case = next((h for h in histories if _type(h) in CASE_TYPES), None)
    if case is None:
        raise ReportError("no SharingCase or DisclosureCase history among the files")
    events = _events(case)
    record = await _completed(events, pb.DecisionRecord, converter)
    closed = record is not None
    if record is None and _type(case) == DISCLOSURE_CASE:
        record = await _open_disclosure_record(case, events, converter)
    elif record is None:
        record = await _open_case_record(case, events, histories, converter)
    if closed:
        await _add_notices(record, histories, converter)
    report = CaseReport(record.case_ref, closed, record)
    report.steps = timeline(record)
    return report


async def _add_notices(
    record: pb.DecisionRecord, histories: Sequence[ExportedHistory], converter: DataConverter
) -> None:
    """A consent withdrawn after an exchange closed (its ConsentWithdrawalNotice's result) on
    that holder's record, with a step in its timeline."""
    for history in histories:
        if _type(history) != CONSENT_WITHDRAWAL_NOTICE:
            continue
        withdrawal = await _completed(_events(history), pb.ConsentWithdrawal, converter)
        holder_id = history.workflow_id.split(".")[1] if history.workflow_id.count(".") >= 2 else ""
        for holder in record.holders:
            if withdrawal is not None and holder.holding_agency_id == holder_id:
                holder.consent_withdrawal.CopyFrom(withdrawal)
                told = "recipient told" if withdrawal.recipient_notified else "recipient not told"
                holder.entries.append(pb.DecisionEntry(
                    at=withdrawal.withdrawn_at, event="ConsentWithdrawn", agency_id=holder_id,
                    user_id=withdrawal.actor.practitioner.user_id,
                    detail=f"after the exchange closed; {told}",
                ))  # fmt: skip


CONSENT_WITHDRAWAL_NOTICE = "ConsentWithdrawalNotice"


def _type(history: ExportedHistory) -> str:
    return HistoryFacts.of(parse_history(history.content)).workflow_type


def _events(history: ExportedHistory) -> list[HistoryEvent]:
    return list(WorkflowHistory.from_json(history.workflow_id, json.loads(history.content)).events)


async def _decode(payload: Payload, kind: type[Any], converter: DataConverter) -> Any:
    try:
        values = await converter.decode([payload], [kind])
    except Exception as err:  # a codec error names the key id, never the payload
        raise ReportError(f"cannot decrypt or decode a payload: {err}") from None
    return values[0]


async def _completed(
    events: list[HistoryEvent], kind: type[Any], converter: DataConverter
) -> Any | None:
    for event in events:
        if event.HasField("workflow_execution_completed_event_attributes"):
            payloads = event.workflow_execution_completed_event_attributes.result.payloads
            if payloads:
                return await _decode(payloads[0], kind, converter)
    return None


async def _open_disclosure_record(
    case: ExportedHistory, events: list[HistoryEvent], converter: DataConverter
) -> pb.DecisionRecord:
    """An open disclosure's record as far as its history's input tells (the decisions so far
    live in its query, which a history file cannot answer)."""
    started = events[0].workflow_execution_started_event_attributes
    given: pb.DisclosureCaseInput = await _decode(
        started.input.payloads[0], pb.DisclosureCaseInput, converter
    )
    record = pb.DecisionRecord(case_ref=case.workflow_id.removeprefix("case-"))
    disclosure = given.disclosure
    record.disclosure.disclosure.CopyFrom(disclosure)
    record.disclosure.kind = disclosure.kind
    record.disclosure.holding_agency_id = disclosure.holding_agency_id
    record.entries.append(_entry(events[0], "DisclosureReceived", disclosure.holding_agency_id,
                                 disclosure.discloser.user_id, ""))  # fmt: skip
    return record


async def _open_case_record(
    case: ExportedHistory,
    events: list[HistoryEvent],
    histories: Sequence[ExportedHistory],
    converter: DataConverter,
) -> pb.DecisionRecord:
    started = events[0].workflow_execution_started_event_attributes
    request: pb.SharingRequest = await _decode(
        started.input.payloads[0], pb.SharingRequest, converter
    )
    record = pb.DecisionRecord(
        case_ref=case.workflow_id.removeprefix("case-"), request=request, urgency=request.urgency
    )
    record.entries.append(_entry(events[0], "RequestReceived", request.requesting_agency_id,
                                 request.requester.user_id, ""))  # fmt: skip
    for event, name, arg in await _commands(events, converter):
        if name == "withdraw_request":
            record.withdrawal.CopyFrom(arg)
            record.withdrawal.withdrawn_at.CopyFrom(event.event_time)
            record.entries.append(_entry(event, "RequestWithdrawn", arg.actor.agency_id,
                                         arg.actor.practitioner.user_id, ""))  # fmt: skip
        elif name == "change_urgency":
            change = record.urgency_changes.add()
            change.CopyFrom(arg)
            change.changed_at.CopyFrom(event.event_time)
            record.urgency = arg.urgency
            record.entries.append(_entry(event, "UrgencyChanged", arg.actor.agency_id,
                                         arg.actor.practitioner.user_id,
                                         f"urgency={pb.Urgency.Name(arg.urgency)}"))  # fmt: skip
    for history in histories:
        if _type(history) == HOLDER_EXCHANGE:
            record.holders.append(await _holder_record(history, converter))
    return record


_ARG_TYPES: dict[str, type[Message]] = {
    "withdraw_request": pb.RequestWithdrawal,
    "change_urgency": pb.UrgencyChange,
    "record_consent": pb.ConsentDecision,
    "propose_override": pb.OverrideProposal,
    "decide_override": pb.OverrideDecision,
    "share_first": pb.ShareFirstDecision,
    "decline_to_share": pb.DeclineDecision,
    "acknowledge": pb.Acknowledgement,
    "withdraw_consent": pb.ConsentWithdrawal,
    "withdraw": pb.RequestWithdrawal,
}


async def _commands(
    events: list[HistoryEvent], converter: DataConverter
) -> list[tuple[HistoryEvent, str, Any]]:
    """Every accepted update and received signal, decoded: (event, handler name, argument)."""
    commands = []
    for event in events:
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request
            name, payloads = accepted.input.name, accepted.input.args.payloads
        elif event.HasField("workflow_execution_signaled_event_attributes"):
            signaled = event.workflow_execution_signaled_event_attributes
            name, payloads = signaled.signal_name, signaled.input.payloads
        else:
            continue
        if name in _ARG_TYPES and payloads:
            commands.append((event, name, await _decode(payloads[0], _ARG_TYPES[name], converter)))
    return commands


def _entry(event: HistoryEvent, name: str, agency: str, user: str, detail: str) -> pb.DecisionEntry:
    return pb.DecisionEntry(at=event.event_time, event=name, agency_id=agency, user_id=user,
                            detail=detail)  # fmt: skip


async def _holder_record(history: ExportedHistory, converter: DataConverter) -> pb.HolderRecord:
    events = _events(history)
    closed = await _completed(events, pb.HolderRecord, converter)
    if closed is not None:
        holder_record: pb.HolderRecord = closed
        return holder_record
    started = events[0].workflow_execution_started_event_attributes
    exchange: pb.HolderExchangeInput = await _decode(
        started.input.payloads[0], pb.HolderExchangeInput, converter
    )
    record = pb.HolderRecord(
        holding_agency_id=exchange.holding_agency_id, state=pb.CASE_STATE_CHECKING_CONSENT
    )
    events_by_name = {
        "record_consent": ("ConsentRecorded", "consent_decision"),
        "propose_override": ("OverrideProposed", "override_proposal"),
        "decide_override": ("OverrideDecided", "override_decision"),
        "share_first": ("SharedFirst", "share_first"),
        "decline_to_share": ("DeclinedToShare", "decline"),
        "acknowledge": ("Acknowledged", "acknowledgement"),
        "withdraw_consent": ("ConsentWithdrawn", "consent_withdrawal"),
    }
    for event, name, arg in await _commands(events, converter):
        if name not in events_by_name:
            continue
        entry_name, field_name = events_by_name[name]
        if name == "decide_override":
            entry_name = "OverrideApproved" if arg.approve else "OverrideRejected"
        getattr(record, field_name).CopyFrom(arg)
        actor = arg.practitioner if name == "acknowledge" else arg.actor.practitioner
        agency = arg.agency_id if name == "acknowledge" else arg.actor.agency_id
        record.entries.append(_entry(event, entry_name, agency, actor.user_id, ""))
    return record
