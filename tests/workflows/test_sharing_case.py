"""The SharingCase workflow on the time-skipping server, with fake agency activities
registered under the real names on the real per-agency task queues."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import (
    EXTRACT_RECORDS,
    LOOKUP_CONSENT,
    RECEIVE_DELIVERY,
    ApplicationErrorType,
    agency_task_queue,
)
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from tests.factories import given_consent, sharing_request, timestamp
from workflows import search_attributes as sa
from workflows.ids import case_ref_for, case_workflow_id
from workflows.rejections import Rejection
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class FakeAgencies:
    """What the fake holder answers, and what the fake recipient received."""

    consent: pb.ConsentRecord = field(default_factory=given_consent)
    lookup_error: str | None = None
    lookup_gate: asyncio.Event | None = None
    items: list[pb.RecordItem] = field(
        default_factory=lambda: [
            pb.RecordItem(
                item_id="item-1",
                category=pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
                kind=pb.ITEM_KIND_FACT,
                source="attendance office",
                recorded_at=timestamp(dt.datetime(2026, 10, 1, tzinfo=dt.UTC)),
                content="attendance 71% this term",
            ),
            pb.RecordItem(
                item_id="item-2",
                category=pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,
                kind=pb.ITEM_KIND_OPINION,
                content="not asked for: must never be delivered",
            ),
        ]
    )
    deliveries: list[agency_pb.ReceiveDeliveryRequest] = field(default_factory=list)

    @activity.defn(name=LOOKUP_CONSENT)
    async def lookup_consent(
        self, request: agency_pb.LookupConsentRequest
    ) -> agency_pb.LookupConsentResponse:
        if self.lookup_gate is not None:
            await self.lookup_gate.wait()
        if self.lookup_error:
            raise ApplicationError(
                "LookupConsent refused",
                self.lookup_error,
                type=ApplicationErrorType.AGENCY_REJECTED,
                non_retryable=True,
            )
        return agency_pb.LookupConsentResponse(consent=self.consent)

    @activity.defn(name=EXTRACT_RECORDS)
    async def extract_records(
        self, request: agency_pb.ExtractRecordsRequest
    ) -> agency_pb.ExtractRecordsResponse:
        return agency_pb.ExtractRecordsResponse(items=self.items)

    @activity.defn(name=RECEIVE_DELIVERY)
    async def receive_delivery(
        self, request: agency_pb.ReceiveDeliveryRequest
    ) -> agency_pb.ReceiveDeliveryResponse:
        self.deliveries.append(request)
        return agency_pb.ReceiveDeliveryResponse(
            receipt=pb.DeliveryReceipt(
                delivery_id=request.delivery_id,
                item_count=len(request.items),
                content_digest=request.content_digest,
            )
        )


@dataclass
class Case:
    """A started case and its agencies."""

    handle: WorkflowHandle[SharingCase, pb.DecisionRecord]
    request: pb.SharingRequest
    agencies: FakeAgencies


@asynccontextmanager
async def running_case(
    env: WorkflowEnvironment, agencies: FakeAgencies, **request_args: object
) -> AsyncIterator[Case]:
    """Start a case with a hub worker and the two agencies' fake adapters running."""
    suffix = uuid.uuid4().hex[:8]
    holder, recipient = f"holder-{suffix}", f"recipient-{suffix}"
    request = sharing_request(
        requesting_agency_id=recipient,
        holding_agency_id=holder,
        **request_args,  # type: ignore[arg-type]
    )
    hub_queue = f"hub-{suffix}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(env.client, task_queue=hub_queue, workflows=[SharingCase])
        )
        await stack.enter_async_context(
            Worker(
                env.client,
                task_queue=agency_task_queue(holder),
                activities=[agencies.lookup_consent, agencies.extract_records],
            )
        )
        await stack.enter_async_context(
            Worker(
                env.client,
                task_queue=agency_task_queue(recipient),
                activities=[agencies.receive_delivery],
            )
        )
        handle = await env.client.start_workflow(
            SharingCase.run,
            request,
            id=case_workflow_id(case_ref_for(recipient, request.request_id)),
            task_queue=hub_queue,
        )
        yield Case(handle, request, agencies)


async def wait_for_state(case: Case, state: pb.CaseState.ValueType) -> pb.CaseView:
    """Query until the case reaches ``state`` (bounded: about 20 s of real time)."""
    for _ in range(400):
        view = await case.handle.query(SharingCase.case_view)
        if view.state == state:
            return view
        await asyncio.sleep(0.05)
    events = [e.detail for e in view.record.entries]
    raise AssertionError(f"case never reached {pb.CaseState.Name(state)}: {view.state} {events}")


def acknowledgement(
    agency_id: str,
    status: pb.AcknowledgementStatus.ValueType = pb.ACKNOWLEDGEMENT_STATUS_ACTIONED,
) -> pb.Acknowledgement:
    return pb.Acknowledgement(
        practitioner=pb.Practitioner(user_id="dsl-7", role="designated_safeguarding_lead"),
        status=status,
        use="added to the child protection enquiry",
        feedback="thank you",
        agency_id=agency_id,
    )


async def test_covering_consent_delivers_only_asked_categories_and_closes_on_acknowledgement(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with running_case(time_skipping, FakeAgencies()) as case:
        view = await wait_for_state(case, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        assert view.waiting_on == pb.WAITING_ON_RECIPIENT
        assert view.HasField("next_deadline")

        recipient = case.request.requesting_agency_id
        after = await case.handle.execute_update(
            SharingCase.acknowledge, acknowledgement(recipient)
        )
        record = await case.handle.result()

    assert after.record.acknowledgement.status == pb.ACKNOWLEDGEMENT_STATUS_ACTIONED
    assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert "consent" in record.basis and "mother" in record.basis
    [delivery] = case.agencies.deliveries
    assert [i.item_id for i in delivery.items] == ["item-1"]
    assert [i.item_id for i in record.shared_items] == ["item-1"]
    assert record.receipt.delivery_id == delivery.delivery_id
    assert [e.event for e in record.entries] == [
        "RequestReceived",
        "ConsentChecked",
        "RecordsDelivered",
        "Acknowledged",
        "CaseClosed",
    ]
    upserted = await upserted_search_attributes(case.handle)
    assert upserted[sa.OUTCOME.name] == "SHARED_WITH_CONSENT"
    assert upserted[sa.CASE_STATE.name] == "CLOSED"
    assert upserted[sa.CONSENT_STATUS.name] == "GIVEN"
    assert upserted[sa.WAITING_ON.name] == "UNSPECIFIED"
    assert upserted[sa.HOLDING_AGENCY.name] == list(case.request.holding_agency_ids)


async def upserted_search_attributes(handle: WorkflowHandle) -> dict[str, object]:
    """The search attributes as the workflow last upserted them, read from its history.

    (The time-skipping server cannot describe an unset Datetime attribute, so read the events.)
    """
    latest: dict[str, object] = {}
    async for event in handle.fetch_history_events():
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            for name, payload in fields.indexed_fields.items():
                latest[name] = json.loads(payload.data) if payload.data else None
    return latest


@pytest.mark.parametrize(
    ("consent", "reason"),
    [
        (given_consent(status=pb.CONSENT_STATUS_REFUSED), "consent_refused"),
        (given_consent(status=pb.CONSENT_STATUS_WITHDRAWN), "consent_withdrawn"),
        (
            given_consent(valid_until=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
            "consent_expired",
        ),
        (given_consent(purposes=[pb.PURPOSE_EDUCATION]), "purpose_not_covered"),
    ],
)
async def test_consent_that_does_not_cover_closes_not_shared_with_reasons_and_delivers_nothing(
    time_skipping: WorkflowEnvironment, consent: pb.ConsentRecord, reason: str
) -> None:
    async with running_case(time_skipping, FakeAgencies(consent=consent)) as case:
        record = await case.handle.result()
    assert record.outcome == pb.OUTCOME_NOT_SHARED
    assert reason in record.basis
    assert case.agencies.deliveries == []
    assert record.entries[-2].event == "DecidedNotToShare"


async def test_holder_that_does_not_know_the_child_closes_not_shared(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with running_case(time_skipping, FakeAgencies(lookup_error="NOT_FOUND")) as case:
        record = await case.handle.result()
    assert record.outcome == pb.OUTCOME_NOT_SHARED
    assert "consent_lookup_refused:NOT_FOUND" in record.basis


async def test_missed_acknowledgement_deadline_reminds_and_keeps_the_case_open(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with running_case(time_skipping, FakeAgencies(), urgency=pb.URGENCY_RED) as case:
        await wait_for_state(case, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        # RED: the recipient acknowledges within 2 hours; let two deadlines pass.
        await time_skipping.sleep(dt.timedelta(hours=4, minutes=30))
        view = await case.handle.query(SharingCase.case_view)
        assert view.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
        overdue = [e for e in view.record.entries if e.event == "AcknowledgementOverdue"]
        assert [e.detail for e in overdue] == ["reminder=1", "reminder=2"]
        await case.handle.execute_update(
            SharingCase.acknowledge, acknowledgement(case.request.requesting_agency_id)
        )
        record = await case.handle.result()
    assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT


async def test_rejected_acknowledgements_say_why_and_leave_no_trace(
    time_skipping: WorkflowEnvironment,
) -> None:
    agencies = FakeAgencies(lookup_gate=asyncio.Event())
    async with running_case(time_skipping, agencies) as case:
        recipient = case.request.requesting_agency_id
        holder = case.request.holding_agency_ids[0]
        await wait_for_state(case, pb.CASE_STATE_CHECKING_CONSENT)
        early = await rejection(case, acknowledgement(recipient))
        assert early.type == Rejection.OUT_OF_TURN
        assert "CHECKING_CONSENT" in early.message

        agencies.lookup_gate.set()  # type: ignore[union-attr]
        await wait_for_state(case, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
        assert (await rejection(case, acknowledgement(holder))).type == Rejection.NOT_PERMITTED
        invalid = acknowledgement(recipient, status=pb.ACKNOWLEDGEMENT_STATUS_UNSPECIFIED)
        assert (await rejection(case, invalid)).type == Rejection.INVALID

        await case.handle.execute_update(SharingCase.acknowledge, acknowledgement(recipient))
        record = await case.handle.result()

    # 👉 Validators reject before history: only the accepted update was written.
    history = await case.handle.fetch_history()
    accepted = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert len(accepted) == 1
    assert [e.event for e in record.entries].count("Acknowledged") == 1


async def rejection(case: Case, ack: pb.Acknowledgement) -> ApplicationError:
    """The ApplicationError an update validator rejected ``ack`` with."""
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await case.handle.execute_update(SharingCase.acknowledge, ack)
    assert isinstance(failure.value.cause, ApplicationError)
    return failure.value.cause
