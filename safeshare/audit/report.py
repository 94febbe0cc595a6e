"""The decision record of a case, read from its histories, as a timeline of steps.

For a closed case the source is the workflow's result, the ``DecisionRecord`` in the
WorkflowExecutionCompleted event (golden rule 7: every decision with who, when and why). For an
open case the record is rebuilt from the request (the case's started event), each closed
exchange's ``HolderRecord``, and each open exchange's accepted updates and signals. Payloads are
decrypted with the data converter given (the keys): only ``report`` ever decrypts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
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
from workflows.domain.vocabulary import code


class ReportError(Exception):
    """A case's histories cannot be read or decrypted."""


@dataclass(frozen=True)
class Step:
    """One step of a case's timeline: what happened, who, when, why, on which basis."""

    at: dt.datetime | None
    event: str
    kind: str
    holder: str = ""
    agency: str = ""
    user: str = ""
    role: str = ""
    why: str = ""
    basis: str = ""

    @property
    def title(self) -> str:
        """The event name in words: "OverrideProposed" → "Override proposed"."""
        words = "".join(f" {c.lower()}" if c.isupper() else c for c in self.event).strip()
        return words[:1].upper() + words[1:]

    @property
    def who(self) -> str:
        """Agency, user and role, as far as known."""
        person = " ".join(p for p in (self.user, f"({self.role})" if self.role else "") if p)
        return " / ".join(p for p in (self.agency, person) if p)


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


# -- reading histories ------------------------------------------------------------------


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


# -- the timeline -------------------------------------------------------------------------

_KINDS = {
    "RequestReceived": "request", "ProtocolGateChecked": "gate", "ConsentChecked": "consent",
    "ConsentRecorded": "consent", "OverrideProposed": "override", "OverrideApproved": "override",
    "OverrideRejected": "override", "SharedFirst": "share", "DeclinedToShare": "decline",
    "NothingToShare": "decline", "RecordsDelivered": "delivery", "DeliveryFailing": "escalation",
    "Acknowledged": "acknowledgement", "DeadlineMissed": "escalation",
    "ConsentWithdrawn": "withdrawal", "ConsentWithdrawalDelivered": "withdrawal",
    "RequestWithdrawn": "withdrawal", "UrgencyChanged": "urgency", "ExchangeClosed": "close",
    "CaseClosed": "close",
}  # fmt: skip
# Forwarded to every exchange too: shown once, at case level.
_CASE_LEVEL_ONLY = {"RequestWithdrawn", "UrgencyChanged"}


def _time(timestamp: Timestamp) -> dt.datetime | None:
    if not timestamp.seconds and not timestamp.nanos:
        return None
    return timestamp.ToDatetime(tzinfo=dt.UTC)


def enum_name(enum: Any, value: int) -> str:
    """An enum value's name without its type's prefix: CONSENT_STATUS_REFUSED → REFUSED."""
    return code(enum, value)


def _names(enum: Any, values: Any) -> str:
    return ", ".join(enum_name(enum, v) for v in values)


def timeline(record: pb.DecisionRecord) -> list[Step]:
    """Every step of the case and of each holder's exchange, in time order."""
    steps = [_case_step(record, entry, n) for n, entry in _numbered(record.entries)]
    for holder in record.holders:
        for n, entry in _numbered(holder.entries):
            if entry.event not in _CASE_LEVEL_ONLY:
                steps.append(_holder_step(record, holder, entry, n))
    order = {id(step): index for index, step in enumerate(steps)}
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(steps, key=lambda s: (s.at or floor, order[id(s)]))


def _numbered(entries: Any) -> list[tuple[int, pb.DecisionEntry]]:
    """Each entry with how many earlier entries had the same event (to pair with lists)."""
    seen: Counter[str] = Counter()
    numbered = []
    for entry in entries:
        numbered.append((seen[entry.event], entry))
        seen[entry.event] += 1
    return numbered


def _step(entry: pb.DecisionEntry, holder: str = "", **details: str) -> Step:
    details.setdefault("why", entry.detail)
    return Step(at=_time(entry.at), event=entry.event, kind=_KINDS.get(entry.event, "other"),
                holder=holder, agency=details.pop("agency", entry.agency_id),
                user=details.pop("user", entry.user_id), **details)  # fmt: skip


def _case_step(record: pb.DecisionRecord, entry: pb.DecisionEntry, n: int) -> Step:
    request = record.request
    if entry.event == "RequestReceived":
        categories = "; ".join(
            f"{enum_name(pb.InformationCategory, c.category)}: {c.necessity}"
            for c in request.categories
        )
        why = (f"purpose {enum_name(pb.Purpose, request.purpose)}; urgency "
               f"{enum_name(pb.Urgency, request.urgency)}; asked of "
               f"{', '.join(request.holding_agency_ids)}; categories: {categories}")  # fmt: skip
        if not request.family_aware:
            why += f"; family not aware: {request.family_not_aware_reason}"
        return _step(entry, role=request.requester.role, why=why, basis=request.lawful_basis)
    if entry.event == "ProtocolGateChecked":
        gate = record.gate
        return _step(entry, agency="SafeShare hub", basis=(
            f"Information Sharing Protocol {gate.protocol_version}, registry version "
            f"{gate.registry_version}"))  # fmt: skip
    if entry.event == "RequestWithdrawn":
        actor = record.withdrawal.actor
        return _step(entry, role=actor.practitioner.role, why=record.withdrawal.reason)
    if entry.event == "UrgencyChanged" and n < len(record.urgency_changes):
        change = record.urgency_changes[n]
        return _step(entry, role=change.actor.practitioner.role,
                     why=f"{entry.detail}: {change.reason}")  # fmt: skip
    if entry.event == "CaseClosed":
        return _step(entry, agency="SafeShare hub", basis=record.basis)
    return _step(entry)


def _holder_step(
    record: pb.DecisionRecord, holder: pb.HolderRecord, entry: pb.DecisionEntry, n: int
) -> Step:
    h = holder
    at = h.holding_agency_id
    event = entry.event
    if event == "ConsentChecked":
        consent = h.consent
        basis = f"consent {enum_name(pb.ConsentStatus, consent.status)}"
        if consent.given_by_relationship:
            basis += f" given by {consent.given_by_relationship}"
        if consent.verification:
            basis += f", verified by {consent.verification}"
        return _step(entry, at, basis=basis)
    if event == "ConsentRecorded":
        decision = h.consent_decision
        if decision.HasField("not_sought"):
            why = (f"consent not sought: "
                   f"{enum_name(pb.NotSoughtReason, decision.not_sought.reason)}"
                   f" — {decision.not_sought.explanation}")  # fmt: skip
        else:
            why = "consent recorded: " + enum_name(pb.ConsentStatus, decision.consent.status)
        return _step(entry, at, role=decision.actor.practitioner.role, why=why)
    if event == "OverrideProposed":
        p = h.override_proposal
        told = ("subject will be told" if p.subject_will_be_told
                else f"subject will not be told: {p.not_telling_reason}")  # fmt: skip
        return _step(entry, at, role=p.actor.practitioner.role, why=(
            f"{p.harm_statement}. Necessity and proportionality: {p.necessity_and_proportionality}."
            f" Alternatives considered: {p.alternatives_considered}. Advice: {p.advice_sought}."
            f" Consent overridden: "
            f"{enum_name(pb.ConsentStatus, p.consent_state_overridden)}"
            f"; {told}."), basis=(
            f"{p.legal_basis} ({enum_name(pb.OverrideReason, p.reason_code)});"
            f" minimum data set: "
            f"{_names(pb.InformationCategory, p.minimum_data_set)}"))  # fmt: skip
    if event in ("OverrideApproved", "OverrideRejected"):
        d = h.override_decision
        return _step(entry, at, role=d.actor.practitioner.role, why=d.reason,
                     basis=h.override_proposal.legal_basis)  # fmt: skip
    if event == "SharedFirst":
        s = h.share_first
        return _step(entry, at, role=s.actor.practitioner.role, why=s.harm_statement, basis=(
            "RED urgency: share first, justify within the override deadline; minimum data set: "
            + _names(pb.InformationCategory, s.minimum_data_set)))  # fmt: skip
    if event == "DeclinedToShare":
        d2 = h.decline
        return _step(entry, at, role=d2.actor.practitioner.role,
                     why=f"{', '.join(d2.reasons)}: {d2.explanation}")  # fmt: skip
    if event == "RecordsDelivered":
        r = h.receipt
        return _step(entry, at, why=entry.detail, basis=(
            f"{r.item_count} items, delivery {r.delivery_id}, SHA-256 {r.content_digest}; "
            f"charge: none"))  # fmt: skip
    if event == "Acknowledged":
        a = h.acknowledgement
        status = enum_name(pb.AcknowledgementStatus, a.status)
        return _step(entry, at, role=a.practitioner.role,
                     why=f"{status}; used for: {a.use}"
                     + (f"; feedback: {a.feedback}" if a.feedback else ""))  # fmt: skip
    if event == "ConsentWithdrawn":
        w = h.consent_withdrawal
        return _step(entry, at, role=w.actor.practitioner.role,
                     why=f"withdrawn by {w.withdrawn_by_relationship}: {w.reason}")  # fmt: skip
    if event == "ExchangeClosed":
        return _step(entry, at, basis=h.basis)
    return _step(entry, at)
