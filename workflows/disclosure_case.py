"""DisclosureCase: a holder tells partners without being asked.

disclosure → protocol gate (hub activity: holder and recipients current signatories, providers
bound, the discloser trained; the routing and every party's calendar, recorded in history) →
the holder's consent position (consent on record, or the lawful basis and reason for sharing
without it; an approver's decision where the partnership's policy for the kind wants one) →
extraction of the approved categories from the holder's system (its adapter) → delivery to
each recipient's adapter, every item carrying the disclosure's handling caveats →
acknowledgement by each recipient under the kind's deadline (before the next school day, by
urgency, five school days), a missed one climbing the ladder (reminder, the recipient's
safeguarding lead, the partnership operator) and never closing the case by itself → close with
the decision record. A disclosure considered and not made is recorded and closed at once.

The model is ``workflows.domain.disclosure`` (every Update's validator asks it); steps,
outcomes and the ladder's rungs are the sharing case's (``workflows.domain``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import memo_view, names, seal
from workflows import search_attributes as sa
from workflows.commands import AppliedCommands
from workflows.domain import disclosure as dm
from workflows.domain import practitioners
from workflows.domain.deadlines import (
    DEFAULT_TIMESCALES,
    Escalation,
    WorkingCalendar,
    calendar_of,
    escalation_times,
    timescales_of,
)
from workflows.domain.refusal import Refusal, Rule
from workflows.domain.vocabulary import (
    Actor,
    Outcome,
    Step,
    actor_of,
    proto_outcome,
    timestamp,
    urgency_of,
)
from workflows.ids import case_ref_from_workflow_id

with workflow.unsafe.imports_passed_through():
    from activities.agency import (
        AGENCY_CALL_TIMEOUT,
        ApplicationErrorType,
        agency_task_queue,
        content_digest,
        error_code,
    )
    from activities.names import (
        APPROVERS_OF,
        DISCLOSURE_GATE,
        EXTRACT_RECORDS,
        NOTIFY_OPERATOR,
        NOTIFY_PRACTITIONER,
        RECEIVE_DELIVERY,
    )
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

GATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
AGENCY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=6,
    non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
)
# 👉 A notification that cannot get through must not hold up the ladder: a bounded burst,
# then the next rung (and the operator) hears of it instead.
NOTIFY_BURST = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
)
AGENCY_START_TO_CLOSE = AGENCY_CALL_TIMEOUT + timedelta(seconds=10)
DELIVERY_RETRY_PAUSE = timedelta(minutes=30)
SAFEGUARDING_LEAD_ROLE = "designated_safeguarding_lead"
APPROVAL_PERIOD = timedelta(hours=1)
"""An approver's decision on a disclosure without consent is chased after an hour."""
DISCLOSURE_NAMED_APPROVERS = "disclosure-named-approvers"
"""A disclosure's approval is decided only by an approver the registry names for the holder
(when it names any), as an exchange's override is; checked where an approval is decided."""
SEALED_DISCLOSURES_PATCH = "gateway-sealed-disclosures"
"""The gate checks the gateway's seal on the input (a record of a disclosure not made too) and
every decision and acknowledgement must carry one; disclosures started before take the old
branch (nothing checked)."""


@workflow.defn(name=names.DISCLOSURE_CASE)
class DisclosureCase:
    """One disclosure. Its result is the decision record, with ``disclosure`` set."""

    @workflow.init
    def __init__(self, case: pb.DisclosureCaseInput) -> None:
        self._case_ref = case_ref_from_workflow_id(workflow.info().workflow_id)
        self._record = pb.DecisionRecord(case_ref=self._case_ref)
        self._commands = AppliedCommands()
        """Which command ids this run has applied (``workflows.commands``)."""
        disclosure_record = self._record.disclosure
        if case.HasField("not_made"):
            disclosure_record.not_made.CopyFrom(case.not_made)
            disclosure_record.kind = case.not_made.kind
            disclosure_record.holding_agency_id = case.not_made.holding_agency_id
            self._disclosure = pb.Disclosure(
                kind=case.not_made.kind, holding_agency_id=case.not_made.holding_agency_id,
                recipient_agency_ids=case.not_made.recipient_agency_ids,
            )  # fmt: skip
        else:
            disclosure_record.disclosure.CopyFrom(case.disclosure)
            disclosure_record.kind = case.disclosure.kind
            disclosure_record.holding_agency_id = case.disclosure.holding_agency_id
            self._disclosure = case.disclosure
        self._holder = self._disclosure.holding_agency_id
        self._kind = dm.Kind(pb.DisclosureKind.Name(self._disclosure.kind).split("KIND_", 1)[1])
        self._urgency = (
            urgency_of(self._disclosure.concern.urgency)
            if self._disclosure.HasField("concern")
            else None
        )
        self._record.urgency = (
            self._disclosure.concern.urgency
            if self._disclosure.HasField("concern")
            else pb.URGENCY_RED
            if self._kind is dm.Kind.OPERATION_ENCOMPASS
            else pb.URGENCY_GREEN
        )
        with_consent = self._disclosure.consent.HasField("consent")
        self._model = dm.Disclosure(
            holder=self._holder,
            discloser=self._disclosure.discloser.user_id,
            kind=self._kind,
            with_consent=with_consent,
            needs_approval=dm.approval_required(self._kind, self._urgency, with_consent),
        )
        self._calendars: dict[str, WorkingCalendar] = {}
        self._school_calendars: set[str] = set()
        self._timescales = DEFAULT_TIMESCALES
        self._next_deadline: dt.datetime | None = None
        self._recipients: dict[str, pb.RecipientRecord] = {}
        self._memo = (
            memo_view.ViewInMemo(self.case_view) if workflow.patched(memo_view.PATCH) else None
        )
        """The disclosure's view, kept in its memo for readers that need no worker."""
        self._sealed = workflow.patched(SEALED_DISCLOSURES_PATCH)
        """Commands must carry the gateway's seal (every disclosure started since sealing)."""

    # -- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, case: pb.DisclosureCaseInput) -> pb.DecisionRecord:
        """Run the disclosure to its close and return its decision record."""
        if self._memo is not None:
            self._memo.start()
        kind = self._kind.value
        workflow.metric_meter().create_counter("safeshare_disclosures_opened").add(
            1, {"kind": kind}
        )
        if case.HasField("not_made"):
            not_made = case.not_made
            if self._sealed:
                routed = await self._gate(
                    pb.DisclosureGateCheck(not_made=not_made, start_seal=case.gateway_seal)
                )
                if not routed.gate.passed:
                    self._model.apply(dm.GateRefused())
                    self._record.basis = "Rejected by the protocol gate: " + ", ".join(
                        routed.gate.reasons
                    )
                    return self._close(Outcome.REJECTED_BY_PROTOCOL_GATE)
            self._note("DisclosureNotMade", self._holder, not_made.decided_by.user_id,
                       f"kind={kind} reasons={','.join(not_made.reasons)}")  # fmt: skip
            self._record.basis = (
                f"Not disclosed by {self._holder}: considered and not made: "
                + ",".join(not_made.reasons)
            )
            return self._close(Outcome.NOT_SHARED)
        disclosure = case.disclosure
        self._note("DisclosureReceived", self._holder, disclosure.discloser.user_id,
                   f"kind={kind} recipients={','.join(disclosure.recipient_agency_ids)} "
                   f"caveats={','.join(_caveat_codes(disclosure.caveats))}")  # fmt: skip
        self._publish()
        check = pb.DisclosureGateCheck(disclosure=disclosure)
        if self._sealed:
            check.start_seal.CopyFrom(case.gateway_seal)
        routed = await self._gate(check)
        gate = routed.gate
        self._record.gate.CopyFrom(gate)
        self._record.disclosure.routed_because = routed.routed_because
        self._note("ProtocolGateChecked", "", "",
                   "passed" if gate.passed else "failed:" + ",".join(gate.reasons))  # fmt: skip
        if not gate.passed:
            self._model.apply(dm.GateRefused())
            self._record.basis = "Rejected by the protocol gate: " + ", ".join(gate.reasons)
            return self._close(Outcome.REJECTED_BY_PROTOCOL_GATE)
        if routed.routed_because:
            self._note("DisclosureRouted", "", "",
                       f"to={','.join(routed.recipient_agency_ids)} "
                       f"because={routed.routed_because}")  # fmt: skip
        self._calendars = {c.agency_id: calendar_of(c) for c in gate.calendars}
        self._school_calendars = {c.agency_id for c in gate.calendars if c.school_terms}
        if gate.HasField("timescales"):
            self._timescales = timescales_of(gate.timescales)
        for recipient in routed.recipient_agency_ids:
            self._recipients[recipient] = pb.RecipientRecord(
                recipient_agency_id=recipient, state=pb.CASE_STATE_DELIVERING
            )
        self._model.apply(dm.GatePassed(tuple(routed.recipient_agency_ids)))
        self._note_consent_position(disclosure)
        self._publish()

        if self._model.state is dm.State.AWAITING_OVERRIDE_DECISION:
            await self._wait_for_approval()
            if self._model.state is dm.State.CLOSED:
                reason = self._record.disclosure.approval.reason and "approval_rejected"
                self._record.basis = f"Not disclosed by {self._holder}: {reason}"
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._close(Outcome.NOT_SHARED)

        items = await self._items(disclosure)
        await asyncio.gather(*(self._deliver_and_wait(r, items) for r in self._recipients))
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._record.basis = self._basis()
        return self._close(self._model.outcome)

    async def _gate(self, check: pb.DisclosureGateCheck) -> pb.DisclosureGateResult:
        check.at.CopyFrom(timestamp(workflow.now()))
        routed = await workflow.execute_activity(
            DISCLOSURE_GATE,
            check,
            result_type=pb.DisclosureGateResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=GATE_RETRY,
            summary="Check the Information Sharing Protocol for a disclosure",
        )
        if check.HasField("not_made"):
            # Only the seal is checked for a record of a disclosure not made: the record
            # names the check only when it refused.
            self._record.gate.CopyFrom(routed.gate)
            if not routed.gate.passed:
                self._note("ProtocolGateChecked", "", "",
                           "failed:" + ",".join(routed.gate.reasons))  # fmt: skip
        return routed

    def _check_seal(self, command: Any) -> None:
        """Refuse the update in hand unless the gateway sealed ``command`` for this disclosure
        (the key comes from the gate's result: nothing is accepted before it is known)."""
        if not self._sealed:
            return
        update = workflow.current_update_info()
        if update is None or not self._record.HasField("gate"):
            raise ApplicationError(
                "the disclosure is still being checked; retry shortly",
                type=Rule.OUT_OF_TURN.value,
            )
        try:
            seal.check(self._record.gate.gateway_public_key, workflow.info().workflow_id,
                       command, update.id)  # fmt: skip
        except seal.SealError as err:
            raise ApplicationError(str(err), type=Rule.NOT_PERMITTED.value) from None

    def _note_consent_position(self, disclosure: pb.Disclosure) -> None:
        position = disclosure.consent
        if position.HasField("consent"):
            detail = f"consent={pb.ConsentStatus.Name(position.consent.status)}"
        else:
            without = position.without_consent
            detail = (
                f"without_consent state={pb.ConsentStatus.Name(without.consent_state)} "
                f"reason={pb.OverrideReason.Name(without.reason_code)}"
            )
        if self._model.needs_approval:
            detail += " approval_required"
        self._note("ConsentPositionRecorded", self._holder, disclosure.discloser.user_id, detail)

    # -- the approver's decision ---------------------------------------------------------

    async def _wait_for_approval(self) -> None:
        started = workflow.now()
        due = started + APPROVAL_PERIOD
        self._next_deadline = due
        self._publish()
        await self._ladder(
            lambda: self._model.state is not dm.State.AWAITING_OVERRIDE_DECISION,
            Step.OVERRIDE_DECISION, self._holder, due, APPROVAL_PERIOD, None,
        )  # fmt: skip
        self._next_deadline = None

    @workflow.update
    async def decide_disclosure(self, decision: pb.DisclosureApproval) -> pb.CaseView:
        """An approver at the holder approves or rejects a disclosure without consent."""
        self._commands.applied()
        if workflow.patched(DISCLOSURE_NAMED_APPROVERS):
            await self._named_approver(decision)
        decided = pb.DisclosureApproval()
        decided.CopyFrom(decision)
        decided.decided_at.CopyFrom(timestamp(workflow.now()))
        self._record.disclosure.approval.CopyFrom(decided)
        self._note("DisclosureDecided", decided.actor.agency_id,
                   decided.actor.practitioner.user_id,
                   f"approve={decided.approve} role={decided.actor.practitioner.role}")  # fmt: skip
        self._model.apply(dm.Decide(actor_of(decided.actor), decided.approve))
        self._publish()
        return self.case_view()

    async def _named_approver(self, decision: pb.DisclosureApproval) -> None:
        """Refuse a decider the registry does not name as one of the holder's approvers (when
        it names any), and a decision the disclosure moved past while the registry was read.

        Raises:
            ApplicationError: NotPermitted or OutOfTurn, with the reason.
        """
        try:
            named = await workflow.execute_activity(
                APPROVERS_OF,
                self._holder,
                result_type=list[str],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NOTIFY_BURST,
                summary=f"Who may decide {self._holder}'s disclosures",
            )
        except ActivityError as err:
            raise ApplicationError(
                "the registry's approvers could not be read; try again",
                type=Rule.OUT_OF_TURN.value,
            ) from err
        approvers = {practitioners.canonical_user_id(a) for a in named} - {None}
        user = practitioners.canonical_user_id(decision.actor.practitioner.user_id)
        if approvers and user not in approvers:
            self._note("DisclosureDecisionRefused", decision.actor.agency_id,
                       decision.actor.practitioner.user_id, "not_a_named_approver")  # fmt: skip
            raise ApplicationError(
                f"not an approver the partnership registry names for {self._holder}",
                type=Rule.NOT_PERMITTED.value,
            )
        self._refuse_if(self._model.check(dm.Decide(actor_of(decision.actor), True)))

    @decide_disclosure.validator
    def _validate_decide(self, decision: pb.DisclosureApproval) -> None:
        self._check_seal(decision)
        self._commands.check()
        if not decision.reason.strip():
            raise ApplicationError("required: decision.reason", type=Rule.INVALID.value)
        self._refuse_if(self._model.check(dm.Decide(actor_of(decision.actor), True)))

    # -- extraction and delivery ----------------------------------------------------------

    async def _items(self, disclosure: pb.Disclosure) -> list[pb.RecordItem]:
        """The dataset as items, and the approved categories from the holder's system, each
        carrying the disclosure's caveats."""
        items = dataset_items(self._case_ref, disclosure, workflow.now())
        categories = list(dict.fromkeys(disclosure.categories))
        if categories:
            try:
                extracted = await workflow.execute_activity(
                    EXTRACT_RECORDS,
                    agency_pb.ExtractRecordsRequest(
                        case_ref=self._case_ref,
                        subjects=disclosure.subjects,
                        categories=categories,
                    ),
                    task_queue=agency_task_queue(self._holder),
                    result_type=agency_pb.ExtractRecordsResponse,
                    start_to_close_timeout=AGENCY_START_TO_CLOSE,
                    heartbeat_timeout=timedelta(seconds=10),
                    retry_policy=AGENCY_RETRY,
                    summary=f"Extract {len(categories)} categories at {self._holder}",
                )
            except ActivityError as err:
                # The dataset is the disclosure: it goes without the extra records.
                self._note("ExtractionRefused", self._holder, "",
                           f"code={error_code(err)}")  # fmt: skip
            else:
                # Defence in depth: nothing outside the disclosed categories leaves the hub.
                allowed = set(categories)
                items.extend(i for i in extracted.items if i.category in allowed)
                self._note("RecordsExtracted", self._holder, "",
                           f"items={len(extracted.items)}")  # fmt: skip
        for item in items:
            del item.caveats[:]
            item.caveats.extend(disclosure.caveats)
        return items

    async def _deliver_and_wait(self, recipient: str, items: list[pb.RecordItem]) -> None:
        record = self._recipients[recipient]
        request = agency_pb.ReceiveDeliveryRequest(
            # 👉 Derived from the case: every retry and replay presents the same id, so the
            # recipient stores the delivery once.
            delivery_id=f"{self._case_ref}.{recipient}.1",
            case_ref=self._case_ref,
            holding_agency_id=self._holder,
            subjects=self._disclosure.subjects,
            items=items,
            content_digest=content_digest(items),
            item_bases=[agency_pb.ItemBasis(item_id=i.item_id, basis=self._basis_of_sharing())
                        for i in items],
        )  # fmt: skip
        alerted = False
        while True:
            try:
                response = await workflow.execute_activity(
                    RECEIVE_DELIVERY,
                    request,
                    task_queue=agency_task_queue(recipient),
                    result_type=agency_pb.ReceiveDeliveryResponse,
                    start_to_close_timeout=AGENCY_START_TO_CLOSE,
                    heartbeat_timeout=timedelta(seconds=10),
                    retry_policy=AGENCY_RETRY,
                    summary=f"Deliver the disclosure to {recipient}",
                )
            except ActivityError as err:
                record.delivery_failures += 1
                record.waiting_on = pb.WAITING_ON_OPERATOR
                self._note("DeliveryFailing", recipient, "", f"code={error_code(err)}")
                if not alerted:
                    alerted = True
                    escalation = pb.Escalation(
                        step="delivery", level=Escalation.PARTNERSHIP_OPERATOR.value,
                        agency_id=recipient, at=timestamp(workflow.now()),
                    )  # fmt: skip
                    record.escalations.append(escalation)
                    await self._alert_operator(escalation)
                self._publish()
                await workflow.sleep(DELIVERY_RETRY_PAUSE, summary="Retry the failing delivery")
                continue
            break
        delivered_at = workflow.now()
        record.receipt.CopyFrom(response.receipt)
        record.shared_items.extend(
            pb.SharedItem(item_id=i.item_id, category=i.category, kind=i.kind,
                          holding_agency_id=self._holder)
            for i in items
        )  # fmt: skip
        self._note("RecordsDelivered", recipient, "",
                   f"delivery_id={response.receipt.delivery_id} items={response.receipt.item_count}"
                   f" digest={response.receipt.content_digest} charge=none "
                   f"caveats={','.join(_caveat_codes(self._disclosure.caveats))}")  # fmt: skip
        self._model.apply(dm.Delivered(recipient))
        deadline = dm.acknowledge_by(
            self._kind, self._urgency, delivered_at,
            self._calendars.get(recipient, WorkingCalendar()),
            to_a_school=recipient in self._school_calendars,
            timescales=self._timescales,
        )  # fmt: skip
        record.acknowledge_by.CopyFrom(timestamp(deadline.due))
        record.state = pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
        record.waiting_on = pb.WAITING_ON_RECIPIENT
        self._note("AcknowledgementDue", recipient, "",
                   f"by={deadline.due:%Y-%m-%dT%H:%MZ} rule={deadline.rule}")  # fmt: skip
        self._publish()
        await self._ladder(
            lambda: recipient in self._model.acknowledged,
            Step.RECIPIENT_ACKNOWLEDGES, recipient, deadline.due, deadline.ladder_period, record,
        )  # fmt: skip
        record.state = pb.CASE_STATE_CLOSED
        record.waiting_on = pb.WAITING_ON_UNSPECIFIED
        acknowledged_at = record.acknowledgement.acknowledged_at.ToDatetime(dt.UTC)
        record.deadline_met = acknowledged_at <= deadline.due
        self._publish()

    # -- the escalation ladder -------------------------------------------------------------

    async def _ladder(
        self,
        done: Any,
        step: Step,
        agency_id: str,
        due: dt.datetime,
        period: timedelta,
        record: pb.RecipientRecord | None,
    ) -> None:
        """Wait until ``done()``, climbing the sharing case's ladder after ``due``: reminder,
        the agency's safeguarding lead, the partnership operator; then wait on. Never closes."""
        for at, rung in escalation_times(due, period):
            try:
                await workflow.wait_condition(
                    done,
                    timeout=max(at - workflow.now(), timedelta(seconds=1)),
                    timeout_summary=f"{step.value} {rung.value} due",
                )
                return
            except TimeoutError:
                pass
            escalation = pb.Escalation(
                step=step.value,
                level=rung.value,
                agency_id="" if rung is Escalation.PARTNERSHIP_OPERATOR else agency_id,
                at=timestamp(workflow.now()),
            )
            (record.escalations if record is not None else self._approval_escalations).append(
                escalation
            )
            self._note("DeadlineMissed", escalation.agency_id, "",
                       f"step={step.value} level={rung.value}")  # fmt: skip
            workflow.logger.info("deadline_missed", extra={"step": step.value, "rung": rung.value})
            workflow.metric_meter().create_counter("safeshare_deadlines_missed").add(
                1, {"step": step.value, "level": rung.value}
            )
            if rung is Escalation.PARTNERSHIP_OPERATOR:
                await self._alert_operator(escalation)
            else:
                code = await self._notify(agency_id, step, rung, due)
                if code is not None:
                    self._note("NotificationRefused", agency_id, "",
                               f"step={step.value} level={rung.value} code={code}")  # fmt: skip
            self._publish()
        await workflow.wait_condition(done)

    @property
    def _approval_escalations(self) -> Any:
        return self._record.disclosure.approval_escalations

    async def _notify(
        self, agency_id: str, step: Step, rung: Escalation, due: dt.datetime
    ) -> str | None:
        try:
            await workflow.execute_activity(
                NOTIFY_PRACTITIONER,
                agency_pb.NotifyPractitionerRequest(
                    notification_id=f"{self._case_ref}.{agency_id}.{step.value}.{rung.value}",
                    case_ref=self._case_ref,
                    kind=agency_pb.NOTIFICATION_KIND_REMINDER
                    if rung is Escalation.REMINDER
                    else agency_pb.NOTIFICATION_KIND_ESCALATION,
                    practitioner_role=SAFEGUARDING_LEAD_ROLE,
                    step=step.value,
                    due_at=timestamp(due),
                    text=f"SafeShare disclosure {self._case_ref}: {step.value.replace('_', ' ')} "
                    f"was due {due:%Y-%m-%d %H:%M} UTC.",
                ),
                task_queue=agency_task_queue(agency_id),
                result_type=agency_pb.NotifyPractitionerResponse,
                start_to_close_timeout=AGENCY_START_TO_CLOSE,
                retry_policy=NOTIFY_BURST,
                summary=f"{rung.value} to {agency_id} for {step.value}",
            )
        except ActivityError as err:
            return error_code(err)
        return None

    async def _alert_operator(self, escalation: pb.Escalation) -> None:
        """Alert the operator; a failing alert is recorded and logged, never raised."""
        try:
            await workflow.execute_activity(
                NOTIFY_OPERATOR,
                escalation,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NOTIFY_BURST,
                summary=f"Alert the partnership operator: {escalation.step}",
            )
        except ActivityError as err:
            self._note("OperatorAlertFailed", escalation.agency_id, "",
                       f"step={escalation.step} code={error_code(err)}")  # fmt: skip

    # -- the recipients' acknowledgements -------------------------------------------------

    @workflow.update
    async def acknowledge(self, acknowledgement: pb.Acknowledgement) -> pb.CaseView:
        """A recipient acknowledges its delivery (who, received or actioned, use, feedback)."""
        self._commands.applied()
        ack = pb.Acknowledgement()
        ack.CopyFrom(acknowledgement)
        ack.acknowledged_at.CopyFrom(timestamp(workflow.now()))
        ack.holding_agency_id = self._holder
        self._recipients[ack.agency_id].acknowledgement.CopyFrom(ack)
        self._note("Acknowledged", ack.agency_id, ack.practitioner.user_id,
                   f"status={pb.AcknowledgementStatus.Name(ack.status)}")  # fmt: skip
        self._model.apply(dm.Acknowledge(Actor(ack.agency_id, ack.practitioner.user_id)))
        self._publish()
        return self.case_view()

    @acknowledge.validator
    def _validate_acknowledge(self, acknowledgement: pb.Acknowledgement) -> None:
        self._check_seal(acknowledgement)
        self._commands.check()
        actor = Actor(acknowledgement.agency_id, acknowledgement.practitioner.user_id)
        self._refuse_if(self._model.check(dm.Acknowledge(actor)))
        if acknowledgement.status == pb.ACKNOWLEDGEMENT_STATUS_UNSPECIFIED:
            raise ApplicationError("required: acknowledgement.status", type=Rule.INVALID.value)
        if not acknowledgement.practitioner.user_id:
            raise ApplicationError(
                "required: acknowledgement.practitioner.user_id", type=Rule.INVALID.value
            )

    def _refuse_if(self, refusal: Refusal | None) -> None:
        # 👉 Validators run before anything is written to history.
        if refusal is not None:
            raise ApplicationError(refusal.message, type=refusal.rule.value)

    # -- the record and the operators' view -----------------------------------------------

    @workflow.query
    def case_view(self) -> pb.CaseView:
        """The case as the workflow knows it (the same query name as a request's case)."""
        record = pb.DecisionRecord()
        record.CopyFrom(self._record)
        del record.disclosure.recipients[:]
        record.disclosure.recipients.extend(self._recipients.values())
        view = pb.CaseView(
            case_ref=self._case_ref,
            state=pb.CaseState.Value(f"CASE_STATE_{self._model.state.value}"),
            waiting_on=self._waiting_on(),
            record=record,
        )
        if self._next_deadline is not None:
            view.next_deadline.CopyFrom(timestamp(self._next_deadline))
        else:
            pending = [
                r.acknowledge_by.ToDatetime(dt.UTC)
                for r in self._recipients.values()
                if r.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
            ]
            if pending:
                view.next_deadline.CopyFrom(timestamp(min(pending)))
        return view

    def _waiting_on(self) -> pb.WaitingOn.ValueType:
        state = self._model.state
        if state is dm.State.AWAITING_OVERRIDE_DECISION:
            return pb.WAITING_ON_APPROVER
        if state is dm.State.CLOSED:
            return pb.WAITING_ON_UNSPECIFIED
        if any(r.waiting_on == pb.WAITING_ON_OPERATOR for r in self._recipients.values()):
            return pb.WAITING_ON_OPERATOR
        if any(r.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
               for r in self._recipients.values()):  # fmt: skip
            return pb.WAITING_ON_RECIPIENT
        return pb.WAITING_ON_SYSTEM

    def _basis_of_sharing(self) -> pb.SharingBasis:
        """What every delivered item is shared on: the consent on record, or the lawful basis
        without consent (an override, approved where the kind's policy wanted it)."""
        position = self._disclosure.consent
        if position.HasField("consent"):
            return pb.SharingBasis(
                kind=pb.BASIS_KIND_CONSENT,
                consent_record_id=position.consent.record_id,
                consent_version=position.consent.version,
                decided_at=self._record.entries[0].at,
            )
        approval = self._record.disclosure.approval
        return pb.SharingBasis(
            kind=pb.BASIS_KIND_OVERRIDE,
            override_reason=position.without_consent.reason_code,
            decided_at=approval.decided_at
            if approval.HasField("decided_at")
            else self._record.entries[0].at,
        )

    def _basis(self) -> str:
        position = self._disclosure.consent
        if position.HasField("consent"):
            why = "with consent on record"
        else:
            without = position.without_consent
            why = (
                f"without consent ({pb.ConsentStatus.Name(without.consent_state)}) on the "
                f"lawful basis {pb.OverrideReason.Name(without.reason_code)}"
            )
            if self._model.approved:
                why += ", approved"
        recipients = ", ".join(self._recipients)
        routed = self._record.disclosure.routed_because
        return (
            f"Disclosed by {self._holder} to {recipients} {why}"
            + (f"; routed because {routed}" if routed else "")
            + "."
        )

    def _close(self, outcome: Outcome) -> pb.DecisionRecord:
        self._model.state = dm.State.CLOSED
        self._model.outcome = outcome
        self._record.outcome = proto_outcome(outcome)
        del self._record.disclosure.recipients[:]
        self._record.disclosure.recipients.extend(self._recipients.values())
        self._note("CaseClosed", "", "", f"outcome={outcome.value}")
        workflow.metric_meter().create_counter("safeshare_cases_closed").add(
            1, {"outcome": outcome.value}
        )
        self._publish()
        if self._memo is not None:
            self._memo.flush()  # the last task: nothing runs after the workflow completes
        return self._record

    def _note(self, event: str, agency_id: str, user_id: str, detail: str) -> None:
        if self._memo is not None:
            self._memo.changed()
        self._record.entries.append(
            pb.DecisionEntry(at=timestamp(workflow.now()), event=event,
                             agency_id=agency_id, user_id=user_id, detail=detail)
        )  # fmt: skip

    def _publish(self) -> None:
        if self._memo is not None:
            self._memo.changed()
        state = self._model.state
        escalated = any(r.escalations for r in self._recipients.values()) or bool(
            self._record.disclosure.approval_escalations
        )
        view = self.case_view()
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.CASE_KIND.value_set(self._kind.value),
            sa.CASE_STATE.value_set(state.value),
            sa.URGENCY.value_set(pb.Urgency.Name(self._record.urgency).removeprefix("URGENCY_")),
            sa.PURPOSE.value_set("SAFEGUARDING"),
            sa.HOLDING_AGENCY.value_set([self._holder]),
            sa.RECIPIENT_AGENCY.value_set(
                list(self._recipients or self._disclosure.recipient_agency_ids)
            ),
            sa.WAITING_ON.value_set(pb.WaitingOn.Name(view.waiting_on).removeprefix("WAITING_ON_")),
            sa.ESCALATED.value_set(escalated),
            sa.NEXT_DEADLINE.value_set(view.next_deadline.ToDatetime(dt.UTC))
            if view.HasField("next_deadline") and state is not dm.State.CLOSED
            else sa.NEXT_DEADLINE.value_unset(),
            sa.OVERRIDE_USED.value_set(not self._disclosure.consent.HasField("consent")),
        ]
        if self._record.outcome != pb.OUTCOME_UNSPECIFIED:
            updates.append(
                sa.OUTCOME.value_set(pb.Outcome.Name(self._record.outcome).removeprefix("OUTCOME_"))
            )
        workflow.upsert_search_attributes(updates)
        if state is dm.State.CLOSED:
            details = f"Closed: {pb.Outcome.Name(self._record.outcome)}."
        else:
            details = (
                f"{self._kind.value} disclosure by {self._holder}: {state.value}, waiting on "
                f"{pb.WaitingOn.Name(view.waiting_on).removeprefix('WAITING_ON_').lower()}"
            )
            if view.HasField("next_deadline"):
                details += f" until {view.next_deadline.ToDatetime(dt.UTC):%Y-%m-%d %H:%M} UTC"
            details += "."
        workflow.set_current_details(details)


def _caveat_codes(caveats: Any) -> list[str]:
    return [pb.HandlingCaveat.Name(c).removeprefix("HANDLING_CAVEAT_") for c in caveats]


def dataset_items(case_ref: str, disclosure: pb.Disclosure, at: dt.datetime) -> list[pb.RecordItem]:
    """The kind's fixed dataset as record items (facts, from the holder), so the recipient's
    system stores it like any delivered record, each item with its caveats."""
    fields: list[tuple[str, pb.InformationCategory.ValueType, str]] = []
    if disclosure.HasField("operation_encompass"):
        oe = disclosure.operation_encompass
        category = pb.INFORMATION_CATEGORY_POLICE_INCIDENTS
        fields = [
            ("police_reference", category, oe.police_reference),
            ("incident_at", category, oe.incident_at.ToDatetime(dt.UTC).isoformat()),
            ("incident_place", category, oe.incident_place),
            ("child_present", category,
             pb.ChildPresence.Name(oe.child_present).removeprefix("CHILD_PRESENCE_")),
            ("voice_of_the_child", category, oe.voice_of_the_child),
            ("circumstances", category, oe.circumstances),
        ]  # fmt: skip
    elif disclosure.HasField("concern"):
        concern = disclosure.concern
        category = pb.INFORMATION_CATEGORY_WELFARE_CONCERNS
        fields = [
            ("urgency", category, pb.Urgency.Name(concern.urgency).removeprefix("URGENCY_")),
            ("concern", category, concern.concern),
            ("action_taken", category, concern.action_taken),
        ]
    elif disclosure.HasField("child_protection_file"):
        cp = disclosure.child_protection_file
        category = pb.INFORMATION_CATEGORY_SOCIAL_CARE_INVOLVEMENT
        fields = [
            ("file_reference", category, cp.file_reference),
            ("starts_at_new_school_on", category, cp.starts_at_new_school_on),
            ("contents_summary", category, cp.contents_summary),
        ]
    items = []
    for name, category, content in fields:
        item = pb.RecordItem(
            item_id=f"{case_ref}.{name}", category=category, kind=pb.ITEM_KIND_FACT,
            source=disclosure.holding_agency_id, content=f"{name}: {content}",
        )  # fmt: skip
        item.recorded_at.CopyFrom(timestamp(at))
        items.append(item)
    return items
