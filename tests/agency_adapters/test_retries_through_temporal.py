"""Fault toggles against a real adapter worker and Temporal: retried where they should be.

Each test drives one agency activity by name from a workflow with a fast retry policy and
counts, at the sandbox, how many calls arrived: Temporal is the one retry layer, so the count
is exactly the number of attempts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Protocol

import grpc
import pytest
import pytest_asyncio
from google.protobuf.message import Message
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import ApplicationErrorType, content_digest
from activities.names import (
    EXTRACT_RECORDS,
    LOOKUP_CONSENT,
    NOTIFY_PRACTITIONER,
    RECEIVE_CONSENT_WITHDRAWN,
    RECEIVE_DELIVERY,
)
from agency_adapters.worker import build_adapter_worker, open_agency_channel
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from tests.agency_adapters.agency_test_support import (
    Sandbox,
    StartSandbox,
    child_subject,
    unique_agency_id,
)
from tests.agency_adapters.agency_workflows import CallAgency

pytestmark = pytest.mark.asyncio(loop_scope="session")

CASE_REF = "retrytestsabcdefghij"
LOOKUP = agency_pb.LookupConsentRequest(
    case_ref=CASE_REF, subjects=[child_subject("consent-given")]
)


class Call(Protocol):
    async def __call__(
        self,
        activity: str,
        request: Message,
        *,
        max_attempts: int = 5,
        heartbeat_timeout_ms: int = 0,
    ) -> Message: ...


StartAdapter = Callable[[Sandbox, float], Awaitable[Call]]
"""Runs an adapter worker for a sandbox, with a gRPC call deadline in seconds."""


@pytest_asyncio.fixture(loop_scope="session")
async def adapter(
    dev_server: WorkflowEnvironment,
    adapter_credentials: Callable[[str], grpc.ChannelCredentials],
) -> AsyncIterator[StartAdapter]:
    """Adapter workers for sandboxes, and a hub worker running :class:`CallAgency`."""
    client = dev_server.client
    hub_queue = f"test-hub-{uuid.uuid4()}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(client, task_queue=hub_queue, workflows=[CallAgency])
        )

        async def start(sandbox: Sandbox, call_timeout: float) -> Call:
            channel = open_agency_channel(sandbox.target, adapter_credentials(sandbox.agency_id))
            stack.push_async_callback(channel.close)
            await stack.enter_async_context(
                build_adapter_worker(client, sandbox.agency_id, channel, call_timeout=call_timeout)
            )

            async def call(
                activity: str,
                request: Message,
                *,
                max_attempts: int = 5,
                heartbeat_timeout_ms: int = 0,
            ) -> Message:
                return await client.execute_workflow(
                    CallAgency.run,
                    request,
                    id=f"test-call-{uuid.uuid4()}",
                    task_queue=hub_queue,
                    memo={
                        "activity": activity,
                        "agency_id": sandbox.agency_id,
                        "max_attempts": max_attempts,
                        "heartbeat_timeout_ms": heartbeat_timeout_ms,
                    },
                    execution_timeout=timedelta(seconds=30),
                )

            return call

        yield start


def _cause(failure: pytest.ExceptionInfo[WorkflowFailureError]) -> ApplicationError:
    activity_error = failure.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_failing_the_next_two_calls_is_retried_until_it_succeeds(
    start_sandbox: StartSandbox, adapter: StartAdapter
) -> None:
    sandbox = await start_sandbox(unique_agency_id("gp"))
    call = await adapter(sandbox, 5)
    sandbox.set_faults(fail_next=2, fail_code="UNAVAILABLE")

    response = await call(LOOKUP_CONSENT, LOOKUP)

    assert isinstance(response, agency_pb.LookupConsentResponse)
    assert response.consent.status == pb.CONSENT_STATUS_GIVEN
    assert sandbox.faults.calls["LookupConsent"] == 3


async def test_an_unavailable_agency_is_retried_until_attempts_run_out(
    start_sandbox: StartSandbox, adapter: StartAdapter
) -> None:
    sandbox = await start_sandbox(unique_agency_id("gp"))
    call = await adapter(sandbox, 5)
    sandbox.set_faults(unavailable=True)

    with pytest.raises(WorkflowFailureError) as failure:
        await call(LOOKUP_CONSENT, LOOKUP, max_attempts=3)

    cause = _cause(failure)
    assert cause.type == ApplicationErrorType.AGENCY_UNAVAILABLE
    assert cause.details == ("UNAVAILABLE",)
    assert sandbox.faults.calls["LookupConsent"] == 3


@pytest.mark.parametrize("code", ["NOT_FOUND", "FAILED_PRECONDITION", "PERMISSION_DENIED"])
async def test_a_refusal_is_never_retried(
    start_sandbox: StartSandbox, adapter: StartAdapter, code: str
) -> None:
    sandbox = await start_sandbox(unique_agency_id("gp"))
    call = await adapter(sandbox, 5)
    sandbox.set_faults(fail_next=1, fail_code=code)

    with pytest.raises(WorkflowFailureError) as failure:
        await call(LOOKUP_CONSENT, LOOKUP, max_attempts=5)

    cause = _cause(failure)
    assert (cause.type, cause.non_retryable) == (ApplicationErrorType.AGENCY_REJECTED, True)
    assert cause.details == (code,)
    assert sandbox.faults.calls["LookupConsent"] == 1


async def test_a_category_not_held_fails_once_and_for_good(
    start_sandbox: StartSandbox, adapter: StartAdapter
) -> None:
    sandbox = await start_sandbox(unique_agency_id("gp"))
    call = await adapter(sandbox, 5)

    with pytest.raises(WorkflowFailureError) as failure:
        await call(
            EXTRACT_RECORDS,
            agency_pb.ExtractRecordsRequest(
                case_ref=CASE_REF,
                subjects=[child_subject("consent-given")],
                categories=[pb.INFORMATION_CATEGORY_POLICE_INCIDENTS],
            ),
        )

    assert _cause(failure).details == ("FAILED_PRECONDITION",)
    assert sandbox.faults.calls["ExtractRecords"] == 1


async def test_a_slow_agency_hits_the_call_deadline_and_is_retried(
    start_sandbox: StartSandbox, adapter: StartAdapter
) -> None:
    sandbox = await start_sandbox(unique_agency_id("gp"))
    call = await adapter(sandbox, 0.3)
    sandbox.set_faults(delay_ms=1500)

    with pytest.raises(WorkflowFailureError) as failure:
        await call(LOOKUP_CONSENT, LOOKUP, max_attempts=2)

    cause = _cause(failure)
    assert (cause.type, cause.details) == (
        ApplicationErrorType.AGENCY_UNAVAILABLE,
        ("DEADLINE_EXCEEDED",),
    )
    assert sandbox.faults.calls["LookupConsent"] == 2


async def test_a_long_extraction_heartbeats_through_a_short_heartbeat_timeout(
    start_sandbox: StartSandbox, adapter: StartAdapter
) -> None:
    sandbox = await start_sandbox(unique_agency_id("school"))
    call = await adapter(sandbox, 10)
    # The call takes 2.5 heartbeat timeouts: only heartbeats while in flight keep it alive.
    sandbox.set_faults(delay_ms=2500, rpcs=["ExtractRecords"])

    response = await call(
        EXTRACT_RECORDS,
        agency_pb.ExtractRecordsRequest(
            case_ref=CASE_REF,
            subjects=[child_subject("consent-given")],
            categories=[pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE],
        ),
        max_attempts=1,
        heartbeat_timeout_ms=1000,
    )

    assert isinstance(response, agency_pb.ExtractRecordsResponse)
    assert response.items
    assert sandbox.faults.calls["ExtractRecords"] == 1


async def test_a_reply_dropped_after_commit_is_retried_and_stored_once(
    start_sandbox: StartSandbox, adapter: StartAdapter
) -> None:
    sandbox = await start_sandbox(unique_agency_id("csc"))
    call = await adapter(sandbox, 5)
    sandbox.set_faults(drop_replies_after_commit=1)
    items = [
        pb.RecordItem(
            item_id="gp-1",
            category=pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,
            kind=pb.ITEM_KIND_FACT,
            source="GP surgery",
            content="Missed two appointments.",
        )
    ]
    delivery = agency_pb.ReceiveDeliveryRequest(
        delivery_id=f"{CASE_REF}.gp.1",
        case_ref=CASE_REF,
        holding_agency_id="northshire-gp",
        subjects=[child_subject("consent-given")],
        items=items,
        content_digest=content_digest(items),
    )

    response = await call(RECEIVE_DELIVERY, delivery)

    assert isinstance(response, agency_pb.ReceiveDeliveryResponse)
    # The second attempt found the first one's commit: the receipt says so.
    assert response.receipt.duplicate
    assert sandbox.faults.calls["ReceiveDelivery"] == 2
    assert [row.delivery_id for row in sandbox.store.deliveries()] == [delivery.delivery_id]
    assert sandbox.store.delivered_items() == items


async def test_notify_practitioner_and_consent_withdrawn_run_through_the_worker(
    start_sandbox: StartSandbox, adapter: StartAdapter
) -> None:
    sandbox = await start_sandbox(unique_agency_id("school"))
    call = await adapter(sandbox, 5)
    sandbox.set_faults(fail_next=1)
    notification = agency_pb.NotifyPractitionerRequest(
        notification_id=f"{CASE_REF}.reminder.1",
        case_ref=CASE_REF,
        kind=agency_pb.NOTIFICATION_KIND_REMINDER,
        practitioner_role="designated_safeguarding_lead",
        step="holder_responds",
        text=f"Case {CASE_REF}: a response is due.",
    )

    notified = await call(NOTIFY_PRACTITIONER, notification)
    withdrawn = await call(
        RECEIVE_CONSENT_WITHDRAWN,
        agency_pb.ReceiveConsentWithdrawnRequest(
            notice_id=f"{CASE_REF}.withdrawn", case_ref=CASE_REF, delivery_ids=["unknown.1"]
        ),
    )

    assert isinstance(notified, agency_pb.NotifyPractitionerResponse)
    assert (notified.notification_id, notified.duplicate) == (notification.notification_id, False)
    assert sandbox.store.notifications() == [notification]
    assert sandbox.faults.calls["NotifyPractitioner"] == 2
    assert isinstance(withdrawn, agency_pb.ReceiveConsentWithdrawnResponse)
    assert (withdrawn.deliveries_known, withdrawn.deliveries_unknown) == (0, 1)
    assert [n.notice_id for n in sandbox.store.withdrawals()] == [withdrawn.notice_id]
