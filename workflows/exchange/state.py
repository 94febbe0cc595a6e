"""What one holder's exchange knows as it runs: its input, its model, its record and the
helpers that write them (the record keeper, the escalation ladder).

``HolderExchange`` holds one ``ExchangeState``; the steps of the exchange
(``workflows.exchange.*``) are functions of it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping

from temporalio import workflow

from workflows import memo_view
from workflows.commands import AppliedCommands
from workflows.domain.deadlines import (
    DEFAULT_TIMESCALES,
    Escalation,
    Timescales,
    WorkingCalendar,
    calendar_of,
    timescales_of,
)
from workflows.domain.exchange import Exchange
from workflows.domain.vocabulary import State, Step, WaitingOn, timestamp, urgency_of
from workflows.exchange import patches
from workflows.exchange.view import details, holder_record, search_attributes, sync_categories
from workflows.ladder import SAFEGUARDING_LEAD_ROLE, Ladder
from workflows.record_keeper import RecordKeeper, Upserts

with workflow.unsafe.imports_passed_through():
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb


class ExchangeState:
    """One holder's exchange as it stands."""

    def __init__(self, exchange: pb.HolderExchangeInput) -> None:
        self.input = exchange
        self.request = exchange.request
        self.holder = exchange.holding_agency_id
        self.recipient = exchange.request.requesting_agency_id
        self.case_ref = exchange.case_ref
        self.holder_calendar, self.recipient_calendar, self.timescales = _calendars(exchange)
        self.model = Exchange(
            holder=self.holder,
            recipient=self.recipient,
            urgency=urgency_of(exchange.urgency or exchange.request.urgency),
        )
        self.record = pb.HolderRecord(holding_agency_id=self.holder)
        self.urgency_version = 0
        self.step: Step | None = None
        self.step_started: dt.datetime | None = None
        self.next_deadline: dt.datetime | None = None
        self.delivered_at: dt.datetime | None = None
        self.delivering_since: dt.datetime | None = None
        self.operator_alerted = False
        self.consent_integrity = False
        self.notice_pending = False
        self.notice_retries: asyncio.Task[None] | None = None
        self.delivery_ids: list[str] = []
        """Per category: every delivery made, in order."""
        self.bases: dict[str, pb.SharingBasis] = {}
        """Per category: the basis of each authorised category, as it was authorised."""
        self.commands = AppliedCommands()
        """Which command ids this run has applied (``workflows.commands``)."""
        self.prompt_withdrawal = workflow.patched(patches.PROMPT_WITHDRAWAL)
        """The newest patch: it implies every one before it (one marker, not two)."""
        self.views = self.prompt_withdrawal or workflow.patched(patches.VIEW_IN_MEMO)
        self.compact = self.views or workflow.patched(patches.COMPACT_HISTORIES)
        self.sealed = self.patched(patches.SEALED_COMMANDS)
        """Commands must carry the gateway's seal (every exchange started since sealing)."""
        self.withdrawal_retried = False
        """A withdrawal has already cut one delivery pause short (prompt withdrawal)."""
        memo = memo_view.ViewInMemo(self.view) if self.views else None
        """The holder's record, kept in the exchange's memo for readers that need no worker."""
        self.keeper = RecordKeeper(
            self.record,
            attributes=lambda: search_attributes(self),
            details=lambda: details(self),
            upserts=Upserts.ONCE_PER_TASK if self.compact else Upserts.EVERY,
            memo=memo,
            refresh=lambda: sync_categories(self) if self.model.per_category else None,
        )
        self.ladder = Ladder(
            self.keeper, self.case_ref, sender=self.holder, addressee=self.addressee,
            tags=self.urgency_tag,
        )  # fmt: skip

    def patched(self, patch: str) -> bool:
        """Whether ``patch`` (one from before compact histories) applies to this run."""
        return self.compact or workflow.patched(patch)

    def note(self, event: str, agency_id: str, user_id: str, detail: str) -> None:
        """Append an entry to the holder's record."""
        self.keeper.note(event, agency_id, user_id, detail)

    def publish(self) -> None:
        """Bring the operators' view up to date."""
        self.keeper.publish()

    def view(self) -> pb.HolderRecord:
        """The holder's record as it stands, with its state, whose move it is, its deadline."""
        return holder_record(self)

    def waiting_on(self) -> WaitingOn:
        """Whose move it is (a failing delivery waits on the operator)."""
        if self.model.state is State.DELIVERING and self.record.delivery_failures:
            return WaitingOn.OPERATOR
        return self.model.waiting_on

    def responsible(self, step: Step) -> str:
        """The agency whose move ``step`` is."""
        return self.recipient if step is Step.RECIPIENT_ACKNOWLEDGES else self.holder

    def asked_categories(self) -> list[pb.InformationCategory.ValueType]:
        """The categories the request asks for, each once, in its order."""
        return list(dict.fromkeys(c.category for c in self.request.categories))

    def asked_names(self) -> list[str]:
        """The names of the categories asked for."""
        return [pb.InformationCategory.Name(c) for c in self.asked_categories()]

    def lookup_request(self) -> agency_pb.LookupConsentRequest:
        """Ask the holder's system for its consent record for this request."""
        return agency_pb.LookupConsentRequest(
            case_ref=self.case_ref,
            subjects=self.request.subjects,
            purpose=self.request.purpose,
            recipient_agency_id=self.recipient,
            categories=[c.category for c in self.request.categories],
        )

    def addressee(self, step: Step, rung: Escalation) -> tuple[str, str]:
        """Who a notification is for, as ``agency.v1`` requires one: (user id, role).

        The reminder goes to the practitioner whose move it is when the case knows them (the
        requester for an acknowledgement, the proposer or the share-first decider for an
        override); otherwise, and for the lead's rung, to the agency's safeguarding lead.
        """
        if rung is Escalation.REMINDER:
            user = ""
            if step is Step.RECIPIENT_ACKNOWLEDGES:
                user = self.request.requester.user_id
            elif step is Step.OVERRIDE_DECISION:
                user = (
                    self.record.override_proposal.actor.practitioner.user_id
                    or self.record.share_first.actor.practitioner.user_id
                )
            if user:
                return user, ""
        return "", SAFEGUARDING_LEAD_ROLE

    def urgency_tag(self) -> Mapping[str, str]:
        """The urgency, as a missed deadline's metric tags it."""
        return {"urgency": self.model.urgency.value}

    def operator_escalation(self, step: str, agency_id: str) -> pb.Escalation:
        """Record an escalation of ``step`` straight to the partnership operator (the caller
        alerts the operator)."""
        escalation = pb.Escalation(
            step=step, level=Escalation.PARTNERSHIP_OPERATOR.value, agency_id=agency_id,
            at=timestamp(workflow.now()),
        )  # fmt: skip
        self.record.escalations.append(escalation)
        return escalation


def _calendars(
    exchange: pb.HolderExchangeInput,
) -> tuple[WorkingCalendar, WorkingCalendar, Timescales]:
    """The holder's and the recipient's calendars and the timescales of the exchange."""
    # 👉 The calendars and timescales the protocol gate resolved when the case opened, as
    # recorded data; an exchange opened before cases recorded them keeps the defaults.
    holder = (
        calendar_of(exchange.holder_calendar)
        if exchange.HasField("holder_calendar")
        else WorkingCalendar()
    )
    recipient = (
        calendar_of(exchange.recipient_calendar)
        if exchange.HasField("recipient_calendar")
        else holder
    )
    timescales = (
        timescales_of(exchange.timescales)
        if exchange.HasField("timescales")
        else DEFAULT_TIMESCALES
    )
    return holder, recipient, timescales
