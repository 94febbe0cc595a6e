"""Test workflows that call the agency activities by name, as the hub's workflows do.

Unsandboxed: the test modules that use them import grpc and the sandbox agency, which the
workflow sandbox would re-import on every run. Settings come from the memo, so each workflow
takes one message in and returns one message out.
"""

from __future__ import annotations

from datetime import timedelta

from google.protobuf.message import Message
from temporalio import workflow
from temporalio.common import RetryPolicy

from activities.agency import ApplicationErrorType, agency_task_queue, content_digest
from activities.names import (
    EXTRACT_RECORDS,
    LOOKUP_CONSENT,
    NOTIFY_PRACTITIONER,
    RECEIVE_CONSENT_WITHDRAWN,
    RECEIVE_DELIVERY,
)
from protos.agency.v1 import agency_service_pb2 as agency_pb

RESULT_TYPES: dict[str, type[Message]] = {
    LOOKUP_CONSENT: agency_pb.LookupConsentResponse,
    EXTRACT_RECORDS: agency_pb.ExtractRecordsResponse,
    RECEIVE_DELIVERY: agency_pb.ReceiveDeliveryResponse,
    NOTIFY_PRACTITIONER: agency_pb.NotifyPractitionerResponse,
    RECEIVE_CONSENT_WITHDRAWN: agency_pb.ReceiveConsentWithdrawnResponse,
}

# 👉 Short intervals so retries happen within a test; the AgencyRejected type is listed as
# the SharingCase workflow lists it, though the adapter marks those errors non-retryable anyway.
FAST_RETRY_INTERVAL = timedelta(milliseconds=50)


def _retry(max_attempts: int) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=FAST_RETRY_INTERVAL,
        backoff_coefficient=1.0,
        maximum_attempts=max_attempts,
        non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
    )


@workflow.defn(sandboxed=False)
class CallAgency:
    """One agency activity, by name, with the retry policy and timeouts in the memo."""

    @workflow.run
    async def run(self, request: Message) -> Message:
        """Call memo ``activity`` on agency memo ``agency_id``'s queue and return its answer."""
        name = workflow.memo_value("activity", type_hint=str)
        heartbeat_ms = workflow.memo_value("heartbeat_timeout_ms", 0, type_hint=int)
        return await workflow.execute_activity(
            name,
            request,
            task_queue=agency_task_queue(workflow.memo_value("agency_id", type_hint=str)),
            result_type=RESULT_TYPES[name],
            start_to_close_timeout=timedelta(seconds=20),
            heartbeat_timeout=timedelta(milliseconds=heartbeat_ms) if heartbeat_ms else None,
            retry_policy=_retry(workflow.memo_value("max_attempts", 5, type_hint=int)),
        )


@workflow.defn(sandboxed=False)
class MiniCase:
    """Consent, extract at the holder, deliver to the recipient: a case without the people.

    Passes a claim-checked extraction on as SharingCase should: the (content-less) items,
    with ``claim_ref`` and ``claim_digest`` copied into the delivery.
    """

    @workflow.run
    async def run(self, request: agency_pb.ExtractRecordsRequest) -> Message:
        """Run the three steps and return the recipient's ReceiveDeliveryResponse."""
        holder = workflow.memo_value("holder", type_hint=str)
        recipient = workflow.memo_value("recipient", type_hint=str)
        await _step(
            LOOKUP_CONSENT,
            agency_pb.LookupConsentRequest(case_ref=request.case_ref, subjects=request.subjects),
            holder,
        )
        extracted = await _step(EXTRACT_RECORDS, request, holder)
        assert isinstance(extracted, agency_pb.ExtractRecordsResponse)
        delivery = agency_pb.ReceiveDeliveryRequest(
            delivery_id=f"{request.case_ref}.{holder}.1",
            case_ref=request.case_ref,
            holding_agency_id=holder,
            subjects=request.subjects,
            items=extracted.items,
            content_digest=extracted.content_digest or content_digest(extracted.items),
            claim_ref=extracted.claim_ref,
            claim_digest=extracted.claim_digest,
        )
        return await _step(RECEIVE_DELIVERY, delivery, recipient)


async def _step(name: str, request: Message, agency_id: str) -> Message:
    # A short heartbeat timeout: a killed adapter's activity is retried within seconds.
    return await workflow.execute_activity(
        name,
        request,
        task_queue=agency_task_queue(agency_id),
        result_type=RESULT_TYPES[name],
        start_to_close_timeout=timedelta(seconds=20),
        heartbeat_timeout=timedelta(seconds=2),
        retry_policy=RetryPolicy(
            initial_interval=timedelta(milliseconds=200),
            non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
        ),
    )
