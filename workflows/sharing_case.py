"""The SharingCase workflow: one sharing case from request to close.

request -> consent check (holder's adapter) -> extract (holder's adapter) -> deliver
(recipient's adapter) -> acknowledgement (an Update from the recipient) -> close, returning the
decision record. Consent that does not cover the request closes the case as not shared, with
every reason recorded.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import case_model
from workflows import search_attributes as sa
from workflows.case_model import State, Step
from workflows.ids import case_ref_from_workflow_id
from workflows.rejections import Rejection

# 👉 Generated protobuf modules and activity names are deterministic and side-effect free;
# passing them through the sandbox avoids re-importing them for every workflow run.
with workflow.unsafe.imports_passed_through():
    from google.protobuf.timestamp_pb2 import Timestamp

    from activities.agency import (
        AGENCY_CALL_TIMEOUT,
        EXTRACT_RECORDS,
        LOOKUP_CONSENT,
        RECEIVE_DELIVERY,
        ApplicationErrorType,
        agency_task_queue,
        content_digest,
    )
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

# 👉 Temporal is the one retry layer: the adapter makes each gRPC call once, with a deadline
# below the activity's start-to-close timeout, and raises non-retryable errors for refusals.
AGENCY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
)
AGENCY_START_TO_CLOSE = AGENCY_CALL_TIMEOUT + timedelta(seconds=10)


def _timestamp(at: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _urgency(request: pb.SharingRequest) -> case_model.Urgency:
    return case_model.Urgency(pb.Urgency.Name(request.urgency).removeprefix("URGENCY_"))


def _consent_facts(consent: pb.ConsentRecord) -> case_model.Consent:
    return case_model.Consent(
        status=pb.ConsentStatus.Name(consent.status).removeprefix("CONSENT_STATUS_"),
        purposes={pb.Purpose.Name(p) for p in consent.purposes},
        recipients=set(consent.recipient_agency_ids),
        categories={pb.InformationCategory.Name(c) for c in consent.categories},
        valid_from=consent.valid_from.ToDatetime(dt.UTC)
        if consent.HasField("valid_from")
        else None,
        valid_until=(
            consent.valid_until.ToDatetime(dt.UTC) if consent.HasField("valid_until") else None
        ),
    )


@workflow.defn
class SharingCase:
    """One sharing case. Its result is the complete decision record."""

    @workflow.init
    def __init__(self, request: pb.SharingRequest) -> None:
        self._request = request
        self._case_ref = case_ref_from_workflow_id(workflow.info().workflow_id)
        self._progress = case_model.CaseProgress()
        self._record = pb.DecisionRecord(case_ref=self._case_ref, request=request)
        self._next_deadline: dt.datetime | None = None
        self._acknowledgement: pb.Acknowledgement | None = None

    @workflow.run
    async def run(self, request: pb.SharingRequest) -> pb.DecisionRecord:
        """Run the case to its close and return its decision record."""
        self._note("RequestReceived", request.requesting_agency_id, request.requester.user_id,
                   f"purpose={pb.Purpose.Name(request.purpose)} "
                   f"urgency={pb.Urgency.Name(request.urgency)} "
                   f"basis={request.lawful_basis!r}")  # fmt: skip
        self._publish()
        # The walking skeleton serves one holding agency per case; the gateway enforces it.
        holder = request.holding_agency_ids[0]
        recipient = request.requesting_agency_id

        self._move(State.CHECKING_CONSENT, Step.HOLDER_RESPONDS)
        try:
            consent = await self._lookup_consent(holder, recipient)
        except ActivityError as err:
            return self._close_not_shared(holder, f"consent_lookup_refused:{_error_code(err)}")
        self._record.consent.CopyFrom(consent)
        cover = case_model.consent_cover(
            _consent_facts(consent),
            case_model.Asked(
                purpose=pb.Purpose.Name(request.purpose),
                recipient=recipient,
                categories={pb.InformationCategory.Name(c.category) for c in request.categories},
                at=workflow.now(),
            ),
        )
        self._note("ConsentChecked", holder, "",
                   f"status={pb.ConsentStatus.Name(consent.status)} "
                   f"covers={cover.covers} {' '.join(cover.reasons)}".strip())  # fmt: skip
        self._publish()
        if not cover.covers:
            reasons = ",".join(cover.reasons)
            return self._close_not_shared(holder, f"consent_does_not_cover:{reasons}")

        self._move(State.DELIVERING, None)
        try:
            items = await self._extract(holder)
            receipt = await self._deliver(holder, recipient, items)
        except ActivityError as err:
            return self._close_not_shared(holder, f"delivery_refused:{_error_code(err)}")
        self._record.receipt.CopyFrom(receipt)
        self._record.shared_items.extend(
            pb.SharedItem(item_id=i.item_id, category=i.category, kind=i.kind,
                          holding_agency_id=holder)
            for i in items
        )  # fmt: skip
        self._note("RecordsDelivered", recipient, "",
                   f"delivery_id={receipt.delivery_id} items={receipt.item_count} "
                   f"digest={receipt.content_digest} charge=none")  # fmt: skip

        self._move(State.AWAITING_ACKNOWLEDGEMENT, Step.RECIPIENT_ACKNOWLEDGES)
        await self._await_acknowledgement(recipient)

        self._record.outcome = pb.OUTCOME_SHARED_WITH_CONSENT
        self._record.basis = (
            f"Shared with consent held by {holder} "
            f"({self._record.consent.given_by_relationship or 'unspecified'}, "
            f"verified by {self._record.consent.verification or 'unspecified'})."
        )
        self._close()
        return self._record

    @workflow.update
    async def acknowledge(self, acknowledgement: pb.Acknowledgement) -> pb.CaseView:
        """The recipient acknowledges the delivery (who, received or actioned, use, feedback)."""
        ack = pb.Acknowledgement()
        ack.CopyFrom(acknowledgement)
        ack.acknowledged_at.CopyFrom(_timestamp(workflow.now()))
        self._acknowledgement = ack
        self._record.acknowledgement.CopyFrom(ack)
        self._note("Acknowledged", ack.agency_id, ack.practitioner.user_id,
                   f"status={pb.AcknowledgementStatus.Name(ack.status)}")  # fmt: skip
        return self.case_view()

    @acknowledge.validator
    def _validate_acknowledge(self, acknowledgement: pb.Acknowledgement) -> None:
        # 👉 A validator runs before anything is written to history: a rejected
        # acknowledgement leaves no trace in the case and the caller hears why at once.
        if acknowledgement.agency_id != self._request.requesting_agency_id:
            raise ApplicationError(
                "only the requesting agency acknowledges a delivery", type=Rejection.NOT_PERMITTED
            )
        if self._progress.state is not State.AWAITING_ACKNOWLEDGEMENT or self._acknowledgement:
            raise ApplicationError(
                f"case is {self._progress.state.value}, not awaiting acknowledgement",
                type=Rejection.OUT_OF_TURN,
            )
        if acknowledgement.status == pb.ACKNOWLEDGEMENT_STATUS_UNSPECIFIED:
            raise ApplicationError("acknowledgement.status is required", type=Rejection.INVALID)
        if not acknowledgement.practitioner.user_id:
            raise ApplicationError(
                "acknowledgement.practitioner.user_id is required", type=Rejection.INVALID
            )

    @workflow.query
    def case_view(self) -> pb.CaseView:
        """The case as it stands: state, whose move, next deadline and the record so far."""
        view = pb.CaseView(
            case_ref=self._case_ref,
            state=pb.CaseState.Value(f"CASE_STATE_{self._progress.state.value}"),
            waiting_on=pb.WaitingOn.Value(f"WAITING_ON_{self._progress.waiting_on.value}"),
            record=self._record,
        )
        if self._next_deadline is not None:
            view.next_deadline.CopyFrom(_timestamp(self._next_deadline))
        return view

    async def _lookup_consent(self, holder: str, recipient: str) -> pb.ConsentRecord:
        response = await workflow.execute_activity(
            LOOKUP_CONSENT,
            agency_pb.LookupConsentRequest(
                case_ref=self._case_ref,
                subjects=self._request.subjects,
                purpose=self._request.purpose,
                recipient_agency_id=recipient,
                categories=[c.category for c in self._request.categories],
            ),
            task_queue=agency_task_queue(holder),
            result_type=agency_pb.LookupConsentResponse,
            start_to_close_timeout=AGENCY_START_TO_CLOSE,
            retry_policy=AGENCY_RETRY,
            summary=f"Look up consent at {holder}",
        )
        return response.consent

    async def _extract(self, holder: str) -> list[pb.RecordItem]:
        response = await workflow.execute_activity(
            EXTRACT_RECORDS,
            agency_pb.ExtractRecordsRequest(
                case_ref=self._case_ref,
                subjects=self._request.subjects,
                categories=[c.category for c in self._request.categories],
            ),
            task_queue=agency_task_queue(holder),
            result_type=agency_pb.ExtractRecordsResponse,
            start_to_close_timeout=AGENCY_START_TO_CLOSE,
            retry_policy=AGENCY_RETRY,
            summary=f"Extract approved categories at {holder}",
        )
        asked = {c.category for c in self._request.categories}
        # Defence in depth: nothing outside the approved categories leaves the hub.
        return [item for item in response.items if item.category in asked]

    async def _deliver(
        self, holder: str, recipient: str, items: list[pb.RecordItem]
    ) -> pb.DeliveryReceipt:
        response = await workflow.execute_activity(
            RECEIVE_DELIVERY,
            agency_pb.ReceiveDeliveryRequest(
                # 👉 Derived from the case, not random: every retry, and every replay,
                # presents the same id, so the recipient stores the delivery once.
                delivery_id=f"{self._case_ref}.{holder}.1",
                case_ref=self._case_ref,
                holding_agency_id=holder,
                subjects=self._request.subjects,
                items=items,
                content_digest=content_digest(items),
            ),
            task_queue=agency_task_queue(recipient),
            result_type=agency_pb.ReceiveDeliveryResponse,
            start_to_close_timeout=AGENCY_START_TO_CLOSE,
            retry_policy=AGENCY_RETRY,
            summary=f"Deliver {len(items)} items from {holder} to {recipient}",
        )
        return response.receipt

    async def _await_acknowledgement(self, recipient: str) -> None:
        reminders = 0
        while self._acknowledgement is None:
            assert self._next_deadline is not None
            remaining = max(self._next_deadline - workflow.now(), timedelta(seconds=1))
            try:
                await workflow.wait_condition(
                    lambda: self._acknowledgement is not None,
                    timeout=remaining,
                    timeout_summary=f"Acknowledgement by {recipient} due",
                )
            except TimeoutError:
                # A missed deadline reminds; it never silently closes the case.
                reminders += 1
                self._note("AcknowledgementOverdue", recipient, "", f"reminder={reminders}")
                workflow.logger.info("acknowledgement_overdue", extra={"reminders": reminders})
                self._next_deadline = case_model.deadline(
                    _urgency(self._request), Step.RECIPIENT_ACKNOWLEDGES, workflow.now()
                )
                self._publish()

    def _move(self, target: State, step: Step | None) -> None:
        self._progress.move_to(target)
        self._next_deadline = (
            case_model.deadline(_urgency(self._request), step, workflow.now()) if step else None
        )
        self._publish()

    def _close_not_shared(self, holder: str, reason: str) -> pb.DecisionRecord:
        self._record.outcome = pb.OUTCOME_NOT_SHARED
        self._record.basis = f"Not shared by {holder}: {reason}"
        self._note("DecidedNotToShare", holder, "", reason)
        self._close()
        return self._record

    def _close(self) -> None:
        self._progress.move_to(State.CLOSED)
        self._next_deadline = None
        self._note("CaseClosed", "", "", f"outcome={pb.Outcome.Name(self._record.outcome)}")
        self._publish()

    def _note(self, event: str, agency_id: str, user_id: str, detail: str) -> None:
        self._record.entries.append(
            pb.DecisionEntry(
                at=_timestamp(workflow.now()),
                event=event,
                agency_id=agency_id,
                user_id=user_id,
                detail=detail,
            )
        )

    def _publish(self) -> None:
        """Keep the operators' view current: search attributes and current details."""
        request = self._request
        state = self._progress.state
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.CASE_STATE.value_set(state.value),
            sa.URGENCY.value_set(pb.Urgency.Name(request.urgency).removeprefix("URGENCY_")),
            sa.PURPOSE.value_set(pb.Purpose.Name(request.purpose).removeprefix("PURPOSE_")),
            sa.REQUESTING_AGENCY.value_set(request.requesting_agency_id),
            sa.HOLDING_AGENCY.value_set(list(request.holding_agency_ids)),
            sa.WAITING_ON.value_set(self._progress.waiting_on.value),
            sa.OVERRIDE_USED.value_set(False),
            sa.NEXT_DEADLINE.value_set(self._next_deadline)
            if self._next_deadline
            else sa.NEXT_DEADLINE.value_unset(),
        ]
        if self._record.HasField("consent"):
            updates.append(
                sa.CONSENT_STATUS.value_set(
                    pb.ConsentStatus.Name(self._record.consent.status).removeprefix(
                        "CONSENT_STATUS_"
                    )
                )
            )
        if self._record.outcome != pb.OUTCOME_UNSPECIFIED:
            updates.append(
                sa.OUTCOME.value_set(pb.Outcome.Name(self._record.outcome).removeprefix("OUTCOME_"))
            )
        workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        state = self._progress.state
        due = f" by {self._next_deadline:%Y-%m-%d %H:%M} UTC" if self._next_deadline else ""
        request = self._request
        if state is State.CHECKING_CONSENT:
            return f"Waiting for {request.holding_agency_ids[0]} to check consent{due}."
        if state is State.DELIVERING:
            return "Extracting and delivering the approved records."
        if state is State.AWAITING_ACKNOWLEDGEMENT:
            return f"Waiting for {request.requesting_agency_id} to acknowledge receipt{due}."
        if state is State.CLOSED:
            return f"Closed: {pb.Outcome.Name(self._record.outcome)}."
        return "Received; starting."


def _error_code(err: ActivityError) -> str:
    """A code for why an agency activity failed for good (never the agency's message)."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        return str(cause.details[0])
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return "unknown"
