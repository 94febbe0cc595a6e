"""What a disclosure's workflow knows, and what is made from it.

The disclosure, its model (``workflows.domain.disclosure``), its decision record, each
recipient's record and the calendars and timescales the protocol gate resolved; from these the
case view that the ``case_view`` query answers, the search attributes and current details
operators see, and the words the decision record uses. Deterministic and side-effect free.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows import search_attributes as sa
from workflows.domain import disclosure as dm
from workflows.domain.deadlines import (
    DEFAULT_TIMESCALES,
    Timescales,
    WorkingCalendar,
    calendar_of,
    timescales_of,
)
from workflows.domain.vocabulary import (
    Outcome,
    Urgency,
    code,
    proto_outcome,
    timestamp,
    urgency_of,
)

with workflow.unsafe.imports_passed_through():
    from protos.sharing.v1 import case_pb2 as pb


@dataclass
class DisclosureState:
    """One disclosure as its workflow holds it; ``opened`` makes it from the input."""

    case_ref: str
    disclosure: pb.Disclosure
    """The disclosure; for one considered and not made, its kind, holder and recipients."""
    record: pb.DecisionRecord
    kind: dm.Kind
    urgency: Urgency | None
    """A concern's urgency; None for the kinds whose deadlines do not depend on one."""
    model: dm.Disclosure
    recipients: dict[str, pb.RecipientRecord] = field(default_factory=dict)
    """Each recipient's record, from the gate's routing on."""
    calendars: dict[str, WorkingCalendar] = field(default_factory=dict)
    school_calendars: set[str] = field(default_factory=set)
    timescales: Timescales = field(default_factory=lambda: DEFAULT_TIMESCALES)
    next_deadline: dt.datetime | None = None
    """The approver's deadline while an approval is awaited."""

    @classmethod
    def opened(cls, case_ref: str, case: pb.DisclosureCaseInput) -> DisclosureState:
        """The state of a disclosure (or of one considered and not made) as it starts."""
        record = pb.DecisionRecord(case_ref=case_ref)
        if case.HasField("not_made"):
            record.disclosure.not_made.CopyFrom(case.not_made)
            disclosure = pb.Disclosure(
                kind=case.not_made.kind, holding_agency_id=case.not_made.holding_agency_id,
                recipient_agency_ids=case.not_made.recipient_agency_ids,
            )  # fmt: skip
        else:
            record.disclosure.disclosure.CopyFrom(case.disclosure)
            disclosure = case.disclosure
        record.disclosure.kind = disclosure.kind
        record.disclosure.holding_agency_id = disclosure.holding_agency_id
        kind = dm.Kind(pb.DisclosureKind.Name(disclosure.kind).split("KIND_", 1)[1])
        concern = disclosure.HasField("concern")
        urgency = urgency_of(disclosure.concern.urgency) if concern else None
        record.urgency = (
            disclosure.concern.urgency
            if concern
            else pb.URGENCY_RED
            if kind is dm.Kind.OPERATION_ENCOMPASS
            else pb.URGENCY_GREEN
        )
        with_consent = disclosure.consent.HasField("consent")
        machine = dm.Disclosure(
            holder=disclosure.holding_agency_id,
            discloser=disclosure.discloser.user_id,
            kind=kind,
            with_consent=with_consent,
            needs_approval=dm.approval_required(kind, urgency, with_consent),
        )
        return cls(case_ref, disclosure, record, kind, urgency, machine)

    @property
    def holder(self) -> str:
        """The holding agency: the one that discloses."""
        return self.disclosure.holding_agency_id

    def route(self, routed: pb.DisclosureGateResult) -> None:
        """Take the gate's routing, calendars and timescales (the gate passed)."""
        gate = routed.gate
        self.calendars = {c.agency_id: calendar_of(c) for c in gate.calendars}
        self.school_calendars = {c.agency_id for c in gate.calendars if c.school_terms}
        if gate.HasField("timescales"):
            self.timescales = timescales_of(gate.timescales)
        for recipient in routed.recipient_agency_ids:
            self.recipients[recipient] = pb.RecipientRecord(
                recipient_agency_id=recipient, state=pb.CASE_STATE_DELIVERING
            )
        self.model.apply(dm.GatePassed(tuple(routed.recipient_agency_ids)))

    def acknowledge_by(self, recipient: str, delivered_at: dt.datetime) -> dm.Deadline:
        """When ``recipient`` must acknowledge a delivery made at ``delivered_at``."""
        return dm.acknowledge_by(
            self.kind, self.urgency, delivered_at,
            self.calendars.get(recipient, WorkingCalendar()),
            to_a_school=recipient in self.school_calendars,
            timescales=self.timescales,
        )  # fmt: skip

    def close(self, outcome: Outcome) -> None:
        """Close the model and the record with ``outcome``."""
        self.model.state = dm.State.CLOSED
        self.model.outcome = outcome
        self.record.outcome = proto_outcome(outcome)
        del self.record.disclosure.recipients[:]
        self.record.disclosure.recipients.extend(self.recipients.values())

    # -- the views ------------------------------------------------------------------------

    def view(self) -> pb.CaseView:
        """The case view (the same shape as a request's case)."""
        record = pb.DecisionRecord()
        record.CopyFrom(self.record)
        del record.disclosure.recipients[:]
        record.disclosure.recipients.extend(self.recipients.values())
        view = pb.CaseView(
            case_ref=self.case_ref,
            state=pb.CaseState.Value(f"CASE_STATE_{self.model.state.value}"),
            waiting_on=self.waiting_on(),
            record=record,
        )
        due = self.due()
        if due is not None:
            view.next_deadline.CopyFrom(timestamp(due))
        return view

    def due(self) -> dt.datetime | None:
        """The next deadline: the approver's, else the first acknowledgement still awaited."""
        if self.next_deadline is not None:
            return self.next_deadline
        pending = [
            r.acknowledge_by.ToDatetime(dt.UTC)
            for r in self.recipients.values()
            if r.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
        ]
        return min(pending) if pending else None

    def waiting_on(self) -> pb.WaitingOn.ValueType:
        """Whose move it is: the approver's, the operator's, a recipient's or the system's."""
        state = self.model.state
        if state is dm.State.AWAITING_OVERRIDE_DECISION:
            return pb.WAITING_ON_APPROVER
        if state is dm.State.CLOSED:
            return pb.WAITING_ON_UNSPECIFIED
        if any(r.waiting_on == pb.WAITING_ON_OPERATOR for r in self.recipients.values()):
            return pb.WAITING_ON_OPERATOR
        if any(r.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
               for r in self.recipients.values()):  # fmt: skip
            return pb.WAITING_ON_RECIPIENT
        return pb.WAITING_ON_SYSTEM

    def search_attributes(self) -> list[SearchAttributeUpdate[Any]]:
        """What operators filter by."""
        state = self.model.state
        due = self.due()
        escalated = any(r.escalations for r in self.recipients.values()) or bool(
            self.record.disclosure.approval_escalations
        )
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.CASE_KIND.value_set(self.kind.value),
            sa.CASE_STATE.value_set(state.value),
            sa.URGENCY.value_set(code(pb.Urgency, self.record.urgency)),
            sa.PURPOSE.value_set("SAFEGUARDING"),
            sa.HOLDING_AGENCY.value_set([self.holder]),
            sa.RECIPIENT_AGENCY.value_set(
                list(self.recipients or self.disclosure.recipient_agency_ids)
            ),
            sa.WAITING_ON.value_set(code(pb.WaitingOn, self.waiting_on())),
            sa.ESCALATED.value_set(escalated),
            sa.NEXT_DEADLINE.value_set(due)
            if due is not None and state is not dm.State.CLOSED
            else sa.NEXT_DEADLINE.value_unset(),
            sa.OVERRIDE_USED.value_set(not self.disclosure.consent.HasField("consent")),
        ]
        if self.record.outcome != pb.OUTCOME_UNSPECIFIED:
            updates.append(sa.OUTCOME.value_set(code(pb.Outcome, self.record.outcome)))
        return updates

    def current_details(self) -> str:
        """What the case waits for and until when, in plain words."""
        state = self.model.state
        if state is dm.State.CLOSED:
            return f"Closed: {pb.Outcome.Name(self.record.outcome)}."
        details = (
            f"{self.kind.value} disclosure by {self.holder}: {state.value}, waiting on "
            f"{code(pb.WaitingOn, self.waiting_on()).lower()}"
        )
        due = self.due()
        if due is not None:
            details += f" until {due:%Y-%m-%d %H:%M} UTC"
        return details + "."

    # -- the record's words ----------------------------------------------------------------

    def consent_position(self) -> str:
        """The detail of the record's ``ConsentPositionRecorded`` entry."""
        position = self.disclosure.consent
        if position.HasField("consent"):
            detail = f"consent={pb.ConsentStatus.Name(position.consent.status)}"
        else:
            without = position.without_consent
            detail = (
                f"without_consent state={pb.ConsentStatus.Name(without.consent_state)} "
                f"reason={pb.OverrideReason.Name(without.reason_code)}"
            )
        if self.model.needs_approval:
            detail += " approval_required"
        return detail

    def basis_of_sharing(self) -> pb.SharingBasis:
        """What every delivered item is shared on: the consent on record, or the lawful basis
        without consent (an override, approved where the kind's policy wanted it)."""
        position = self.disclosure.consent
        if position.HasField("consent"):
            return pb.SharingBasis(
                kind=pb.BASIS_KIND_CONSENT,
                consent_record_id=position.consent.record_id,
                consent_version=position.consent.version,
                decided_at=self.record.entries[0].at,
            )
        approval = self.record.disclosure.approval
        return pb.SharingBasis(
            kind=pb.BASIS_KIND_OVERRIDE,
            override_reason=position.without_consent.reason_code,
            decided_at=approval.decided_at
            if approval.HasField("decided_at")
            else self.record.entries[0].at,
        )

    def basis(self) -> str:
        """The record's basis of a disclosure made."""
        position = self.disclosure.consent
        if position.HasField("consent"):
            why = "with consent on record"
        else:
            without = position.without_consent
            why = (
                f"without consent ({pb.ConsentStatus.Name(without.consent_state)}) on the "
                f"lawful basis {pb.OverrideReason.Name(without.reason_code)}"
            )
            if self.model.approved:
                why += ", approved"
        recipients = ", ".join(self.recipients)
        routed = self.record.disclosure.routed_because
        return (
            f"Disclosed by {self.holder} to {recipients} {why}"
            + (f"; routed because {routed}" if routed else "")
            + "."
        )


def caveat_codes(caveats: Iterable[pb.HandlingCaveat.ValueType]) -> str:
    """The handling caveats as the record writes them: codes, comma-separated."""
    return ",".join(code(pb.HandlingCaveat, c) for c in caveats)
