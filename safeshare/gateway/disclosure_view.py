"""What each party to a disclosure case may see (the disclosure's counterpart of
``party_view``): pure, a view in and a view out.

- **the holder** (the disclosing agency, its approvers included) sees the whole case;
- **a recipient** sees the disclosure it was sent (dataset, caveats, the consent position in
  codes and lawful basis), the gate's result, and of the recipients' parts only its own; the
  case's entries about other recipients reach it without agency or detail;
- **a recipient sees nothing before the protocol gate passed and routed the disclosure to it**
  (NOT_FOUND, the same as for a case that does not exist), and a non-party never sees it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb

# What a recipient lists (``safeshare.gateway.listing`` asks visibility for the same): a
# disclosure on its way to it or shared with it; never one not made, refused or routed away.
_LISTED_FOR_RECIPIENT_STATES = frozenset(
    {pb.CASE_STATE_AWAITING_OVERRIDE_DECISION, pb.CASE_STATE_DELIVERING,
     pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT}
)  # fmt: skip
_LISTED_FOR_RECIPIENT_OUTCOMES = frozenset(
    {pb.OUTCOME_SHARED_WITH_CONSENT, pb.OUTCOME_SHARED_UNDER_OVERRIDE, pb.OUTCOME_PARTLY_SHARED}
)


class Role(enum.Enum):
    """The part an agency plays in a disclosure."""

    HOLDER = "holder"
    RECIPIENT = "recipient"


@dataclass(frozen=True)
class Party:
    """An agency and its part in one disclosure."""

    agency_id: str
    role: Role


def is_disclosure(case: pb.CaseView) -> bool:
    """Whether the case is a disclosure (its record carries one)."""
    return case.record.HasField("disclosure")


def party_in(agency_id: str, case: pb.CaseView) -> Party | None:
    """The agency's part in the disclosure, or None when it must look like no case to it."""
    record = case.record.disclosure
    if agency_id == record.holding_agency_id:
        return Party(agency_id, Role.HOLDER)
    recipients = {r.recipient_agency_id for r in record.recipients}
    if agency_id in recipients and case.record.gate.passed:
        return Party(agency_id, Role.RECIPIENT)
    return None


def summary_for(agency_id: str, summary: service_pb.CaseSummary) -> service_pb.CaseSummary | None:
    """One ListCases entry of a disclosure as the agency may see it, or None: the holder sees
    it whole; a recipient, once it is on its way to it, with itself as the only recipient (and
    the deadline only when it is the only one)."""
    if agency_id in summary.holding_agency_ids:
        return summary
    if agency_id not in summary.recipient_agency_ids:
        return None
    if summary.state not in _LISTED_FOR_RECIPIENT_STATES and not (
        summary.state == pb.CASE_STATE_CLOSED and summary.outcome in _LISTED_FOR_RECIPIENT_OUTCOMES
    ):
        return None
    seen = service_pb.CaseSummary()
    seen.CopyFrom(summary)
    del seen.recipient_agency_ids[:]
    seen.recipient_agency_ids.append(agency_id)
    if len(summary.recipient_agency_ids) > 1:
        seen.ClearField("next_deadline")
        seen.waiting_on = pb.WAITING_ON_UNSPECIFIED
    return seen


def view_for(party: Party, case: pb.CaseView) -> pb.CaseView:
    """The disclosure case as ``party`` may see it."""
    seen = pb.CaseView()
    seen.CopyFrom(case)
    if party.role is Role.HOLDER:
        return seen
    record = seen.record.disclosure
    own = [r for r in record.recipients if r.recipient_agency_id == party.agency_id]
    del record.recipients[:]
    record.recipients.extend(own)
    del record.approval_escalations[:]
    record.ClearField("approval")
    record.disclosure.consent.without_consent.ClearField("reason")
    entries = [entry_for(party, e) for e in seen.record.entries]
    del seen.record.entries[:]
    seen.record.entries.extend(e for e in entries if e is not None)
    if any(r.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT for r in own):
        seen.next_deadline.CopyFrom(own[0].acknowledge_by)
    return seen


_RECIPIENT_EVENTS = frozenset(
    {"RecordsDelivered", "DeliveryFailing", "AcknowledgementDue", "Acknowledged", "DeadlineMissed",
     "NotificationRefused"}
)  # fmt: skip


def entry_for(party: Party, entry: pb.DecisionEntry) -> pb.DecisionEntry | None:
    """One entry as ``party`` may see it: a recipient sees events about another recipient
    without their agency, user or detail."""
    if party.role is Role.HOLDER:
        return entry
    if entry.event in _RECIPIENT_EVENTS and entry.agency_id not in ("", party.agency_id):
        return pb.DecisionEntry(at=entry.at, event=entry.event)
    if entry.event in {"ConsentPositionRecorded", "DisclosureDecided"}:
        return pb.DecisionEntry(at=entry.at, event=entry.event, agency_id=entry.agency_id)
    return entry
