"""What each party to a case may see: the one rule GetCase, WatchCase, ListCases and every
command's reply go through.

A case's records hold every party's writing: the requester's request, and for each holder
the consent record its system returned, its practitioners' decisions (consent decision,
override proposal, approver's decision, share-first, decline) and their free text (the
family's views, who refused, how consent was verified, the harm statement, reasons). A party
sees its own part and, of the others', only what it needs to act:

- **the requester** sees its request, the gate's result, its own withdrawal and urgency
  changes, and of each holder's exchange: the step it is at and whose move it is, the
  outcome, a basis in codes, what was shared, the receipt, its own acknowledgement, that
  consent was withdrawn (when, not who or why), and the exchange's events with their codes
  (no holder practitioner's id, no free text);
- **a holder** (its approvers are users of the same agency, so this covers them) sees the
  request, the case's own steps, and its own exchange whole; never another holder's exchange
  (neither its record nor its events) nor the combined outcome, which would say what another
  holder decided; its view of the case's step, whose move and deadline is its own exchange's;
- **a holder sees nothing of a case before the protocol gate passed it**: a case the gate
  has not checked yet or refused is, to a holder, no case at all (``party_in`` answers None,
  which the gateway answers NOT_FOUND, the same answer as for a case that does not exist).

Everything here is pure: a view in, a view out. The output is built from an allow-list of
fields, so a field added to the records later stays hidden from the other parties until it
is added here. Operators (``safeshare cases show``, the audit tools) read the workflows
directly and are not restricted by this rule.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.gateway import disclosure_view
from workflows.domain.case_view import merge_case_view
from workflows.domain.vocabulary import code

M = TypeVar("M", bound=Message)


class Role(enum.Enum):
    """The part an agency plays in a case."""

    REQUESTER = "requester"
    HOLDER = "holder"


@dataclass(frozen=True)
class Party:
    """An agency and its part in one case."""

    agency_id: str
    role: Role


# Events of a holder's exchange whose detail the requester may read: codes about the delivery
# to it, its own commands and the exchange's end. Every other event reaches it without its
# detail (which may carry the holder's consent status, reasons or an approver's role).
_DETAIL_FOR_REQUESTER = frozenset(
    {
        "RecordsDelivered",
        "DeliveryFailing",
        "Acknowledged",
        "RequestWithdrawn",
        "UrgencyChanged",
        "ConsentWithdrawn",
        "ConsentWithdrawalDelivered",
        "ExchangeClosed",
    }
)
# Why an exchange found nothing to share, in SafeShare's own codes (the part after the colon
# is the holder system's code, which is the holder's).
_NOTHING_TO_SHARE = ("consent_lookup_refused", "extraction_refused")
CASE_CLOSED = "CaseClosed"
# Case outcomes a holder lists: every outcome of a case the gate passed. A closed case the
# gate refused has REJECTED_BY_PROTOCOL_GATE; an open one the gate has not passed is REQUESTED.
LISTED_FOR_HOLDER_STATES = ("EXCHANGING",)
LISTED_FOR_HOLDER_OUTCOMES = tuple(
    code(pb.Outcome, value)
    for value in pb.Outcome.values()
    if value not in (pb.OUTCOME_UNSPECIFIED, pb.OUTCOME_REJECTED_BY_PROTOCOL_GATE)
)


def party_in(agency_id: str, case: pb.CaseView) -> Party | None:
    """The agency's part in the case, or None when the case must look like no case to it:
    it is not a party, or it is a holder and the protocol gate has not passed the case."""
    request = case.record.request
    if agency_id == request.requesting_agency_id:
        return Party(agency_id, Role.REQUESTER)
    if agency_id in request.holding_agency_ids and case.record.gate.passed:
        return Party(agency_id, Role.HOLDER)
    return None


def view_for(party: Party, case: pb.CaseView) -> pb.CaseView:
    """The case as ``party`` may see it. ``case`` is the whole view: the case with every
    holder's record merged in (``workflows.domain.case_view.merge_case_view``)."""
    if party.role is Role.REQUESTER:
        return _requester_view(party, case)
    return _holder_view(party, case)


def entry_for(
    party: Party, request: pb.SharingRequest, source: str, entry: pb.DecisionEntry
) -> pb.DecisionEntry | None:
    """One decision entry as ``party`` may see it, or None when it may not see it at all.

    Args:
        party: who is looking.
        request: the case's request (who is asked).
        source: the holder whose exchange wrote the entry; ``""`` for the case's own.
        entry: the entry as recorded.
    """
    if not source:
        if (
            party.role is Role.HOLDER
            and entry.event == CASE_CLOSED
            and len(request.holding_agency_ids) > 1
        ):
            # The case's outcome combines every holder's: it would say what the others did.
            return pb.DecisionEntry(at=entry.at, event=entry.event, agency_id=entry.agency_id)
        return _copy(entry)
    if party.role is Role.HOLDER:
        return _copy(entry) if source == party.agency_id else None
    return _entry_for_requester(party, entry)


def entries_for(
    party: Party, request: pb.SharingRequest, source: str, entries: Iterable[pb.DecisionEntry]
) -> list[pb.DecisionEntry]:
    """The entries of one source that ``party`` may see, each as it may see it."""
    return [
        seen for entry in entries if (seen := entry_for(party, request, source, entry)) is not None
    ]


def summary_for(agency_id: str, summary: service_pb.CaseSummary) -> service_pb.CaseSummary | None:
    """One ListCases entry as the agency may see it, or None when it may not see it.

    The listing's query already keeps a holder to its own exchanges and to cases the gate
    passed (``LISTED_FOR_HOLDER_*``); this checks it again on what the query returned.
    """
    if summary.disclosure_kind:
        return disclosure_view.summary_for(agency_id, summary)
    if agency_id == summary.requesting_agency_id:
        return summary
    if agency_id not in summary.holding_agency_ids:
        return None
    if summary.holding_agency_id:  # an exchange entry
        return summary if summary.holding_agency_id == agency_id else None
    if summary.state == pb.CASE_STATE_REQUESTED or (
        summary.outcome == pb.OUTCOME_REJECTED_BY_PROTOCOL_GATE
    ):
        return None
    if len(summary.holding_agency_ids) > 1 and summary.outcome != pb.OUTCOME_UNSPECIFIED:
        seen = service_pb.CaseSummary()
        seen.CopyFrom(summary)
        seen.outcome = pb.OUTCOME_UNSPECIFIED
        return seen
    return summary


# -- the requester -----------------------------------------------------------------------------


def _requester_view(party: Party, case: pb.CaseView) -> pb.CaseView:
    record = case.record
    holders = [_holder_for_requester(party, h) for h in record.holders]
    view = _case_frame(party, case, holders)
    if record.basis and record.holders:
        # A closed case's basis joins its holders' bases: each rebuilt from codes.
        view.record.basis = " ".join(h.basis for h in holders)
    else:
        view.record.basis = record.basis  # the gate's refusal or a withdrawal: the case's own
    view.record.outcome = record.outcome
    return view


def _holder_for_requester(party: Party, holder: pb.HolderRecord) -> pb.HolderRecord:
    """What the requester sees of one holder's exchange."""
    seen = pb.HolderRecord(
        holding_agency_id=holder.holding_agency_id,
        state=holder.state,
        waiting_on=holder.waiting_on,
        outcome=holder.outcome,
        override_used=holder.override_used,
        delivery_failures=holder.delivery_failures,
        basis=requester_basis(holder),
    )
    if holder.HasField("next_deadline"):
        seen.next_deadline.CopyFrom(holder.next_deadline)
    seen.shared_items.extend(holder.shared_items)
    if holder.HasField("receipt"):
        seen.receipt.CopyFrom(holder.receipt)
    if holder.HasField("acknowledgement"):
        seen.acknowledgement.CopyFrom(holder.acknowledgement)  # its own
    if holder.HasField("consent_withdrawal"):
        # What the recipient is told (agency.v1 ReceiveConsentWithdrawn): that and when, not
        # who withdrew or why.
        withdrawal = holder.consent_withdrawal
        seen.consent_withdrawal.actor.agency_id = withdrawal.actor.agency_id
        seen.consent_withdrawal.recipient_notified = withdrawal.recipient_notified
        if withdrawal.HasField("withdrawn_at"):
            seen.consent_withdrawal.withdrawn_at.CopyFrom(withdrawal.withdrawn_at)
    seen.escalations.extend(e for e in holder.escalations if e.agency_id == party.agency_id)
    seen.entries.extend(_entry_for_requester(party, e) for e in holder.entries)
    return seen


def requester_basis(holder: pb.HolderRecord) -> str:
    """Why a holder shared or not, in codes and agency ids only: the requester's basis.

    The exchange's own basis may quote the holder's consent record (who gave consent, how it
    was verified) or an override's legal basis in words; this one is rebuilt from codes.
    """
    if not holder.basis:
        return ""
    agency = holder.holding_agency_id
    match holder.outcome:
        case pb.OUTCOME_SHARED_WITH_CONSENT:
            return f"Shared by {agency} with consent."
        case pb.OUTCOME_SHARED_UNDER_OVERRIDE:
            if holder.HasField("share_first"):
                return f"Shared by {agency} first under RED urgency."
            reason = pb.OverrideReason.Name(holder.override_proposal.reason_code)
            return f"Shared by {agency} under an approved override ({reason})."
        case pb.OUTCOME_WITHDRAWN:
            return f"Withdrawn by the requester before {agency} closed."
        case pb.OUTCOME_NOT_SHARED:
            code = _not_shared_code(holder)
            return f"Not shared by {agency}: {code}" if code else f"Not shared by {agency}."
    return ""


def _not_shared_code(holder: pb.HolderRecord) -> str:
    if holder.HasField("decline"):
        return "declined"
    if holder.HasField("override_decision") and not holder.override_decision.approve:
        return "override_rejected"
    for entry in holder.entries:
        if entry.event == "NothingToShare":
            code = entry.detail.split(":", 1)[0]
            return code if code in _NOTHING_TO_SHARE else "nothing_to_share"
    return ""


def _entry_for_requester(party: Party, entry: pb.DecisionEntry) -> pb.DecisionEntry:
    seen = pb.DecisionEntry(event=entry.event, agency_id=entry.agency_id)
    seen.at.CopyFrom(entry.at)
    if entry.agency_id == party.agency_id:
        seen.user_id = entry.user_id  # its own practitioner
    if entry.event in _DETAIL_FOR_REQUESTER:
        seen.detail = entry.detail
    elif entry.event == "NothingToShare":
        code = entry.detail.split(":", 1)[0]
        seen.detail = code if code in _NOTHING_TO_SHARE else ""
    return seen


# -- a holder ------------------------------------------------------------------------------------


def _holder_view(party: Party, case: pb.CaseView) -> pb.CaseView:
    record = case.record
    own = [h for h in record.holders if h.holding_agency_id == party.agency_id]
    view = _case_frame(party, case, [_copy(h) for h in own])
    own_closed = bool(own) and own[0].state == pb.CASE_STATE_CLOSED
    if own and (record.outcome != pb.OUTCOME_UNSPECIFIED or own_closed):
        # Its own exchange's outcome and basis, not the case's (which joins every holder's);
        # once its own exchange has closed, it reads CLOSED with that exchange's outcome.
        view.record.outcome = own[0].outcome
        view.record.basis = own[0].basis
    elif len(record.request.holding_agency_ids) == 1 or not record.holders:
        view.record.outcome = record.outcome
        view.record.basis = record.basis
    if case.state not in (pb.CASE_STATE_REQUESTED, pb.CASE_STATE_CLOSED):
        # Its step, whose move and deadline: its own exchange's, as if it were the only holder.
        base = pb.CaseView(
            case_ref=case.case_ref, state=pb.CASE_STATE_EXCHANGING, record=pb.DecisionRecord()
        )
        merged = merge_case_view(base, own)
        view.state, view.waiting_on = merged.state, merged.waiting_on
        if own_closed:
            view.state, view.waiting_on = pb.CASE_STATE_CLOSED, pb.WAITING_ON_UNSPECIFIED
        view.ClearField("next_deadline")
        if merged.HasField("next_deadline"):
            view.next_deadline.CopyFrom(merged.next_deadline)
    return view


# -- shared ----------------------------------------------------------------------------------------


def _case_frame(party: Party, case: pb.CaseView, holders: Sequence[pb.HolderRecord]) -> pb.CaseView:
    """The case-level fields every party sees (outcome and basis are set by the caller)."""
    record = case.record
    view = pb.CaseView(case_ref=case.case_ref, state=case.state, waiting_on=case.waiting_on)
    if case.HasField("next_deadline"):
        view.next_deadline.CopyFrom(case.next_deadline)
    seen = view.record
    seen.case_ref = record.case_ref
    seen.request.CopyFrom(record.request)
    seen.entries.extend(entries_for(party, record.request, "", record.entries))
    seen.holders.extend(holders)
    if record.HasField("gate"):
        seen.gate.CopyFrom(record.gate)
    if record.HasField("withdrawal"):
        seen.withdrawal.CopyFrom(record.withdrawal)
    seen.urgency_changes.extend(record.urgency_changes)
    seen.urgency = record.urgency
    return view


def _copy(message: M) -> M:
    copied = type(message)()
    copied.CopyFrom(message)
    return copied
