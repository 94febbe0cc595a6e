"""The agency activities against a real sandbox: answers pass through, failures map to types."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio
import structlog
from structlog.testing import capture_logs
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.agency import ApplicationErrorType, content_digest
from agency_adapters.activities import AgencyActivities
from agency_adapters.worker import open_agency_channel
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.agency.v1 import agency_service_pb2_grpc as agency_grpc
from protos.sharing.v1 import case_pb2 as pb
from tests.agency_adapters.agency_test_support import (
    CHILDREN,
    UNKNOWN_CHILD,
    Sandbox,
    StartSandbox,
    child_subject,
    unique_agency_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CASE_REF = "abcdefghijklmnopqrst"
NAMES = [part for child in CHILDREN.values() for part in (child.given_name, child.family_name)]


@pytest_asyncio.fixture(loop_scope="session")
async def connect(
    adapter_credentials: Callable[[str], grpc.ChannelCredentials],
) -> AsyncIterator[Callable[[Sandbox], AgencyActivities]]:
    """Agency activities on an adapter channel to a sandbox; channels close after the test."""
    channels: list[grpc.aio.Channel] = []

    def connect(sandbox: Sandbox) -> AgencyActivities:
        channels.append(open_agency_channel(sandbox.target, adapter_credentials(sandbox.agency_id)))
        stub = agency_grpc.AgencyServiceStub(channels[-1])
        return AgencyActivities(stub, sandbox.agency_id, call_timeout=5)

    yield connect
    for channel in channels:
        await channel.close()


def _assert_no_names(text: str) -> None:
    assert not [name for name in NAMES if name in text], text


async def test_lookup_consent_returns_the_agencys_answer_and_logs_facts_only(
    start_sandbox: StartSandbox, connect: Callable[[Sandbox], AgencyActivities]
) -> None:
    sandbox = await start_sandbox(unique_agency_id("school"))
    agency = connect(sandbox)

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = await ActivityEnvironment().run(
            agency.lookup_consent,
            agency_pb.LookupConsentRequest(
                case_ref=CASE_REF, subjects=[child_subject("consent-refused")]
            ),
        )

    assert response.consent.status == pb.CONSENT_STATUS_REFUSED
    assert response.consent.given_by_relationship == "father"
    [entry] = [entry for entry in logs if entry["event"] == "consent_looked_up"]
    assert entry["status"] == "CONSENT_STATUS_REFUSED"
    assert (entry["case_ref"], entry["agency_id"], entry["rpc"]) == (
        CASE_REF,
        sandbox.agency_id,
        "LookupConsent",
    )
    _assert_no_names(repr(logs))


async def test_extract_then_deliver_between_two_sandboxes(
    start_sandbox: StartSandbox, connect: Callable[[Sandbox], AgencyActivities]
) -> None:
    school = await start_sandbox(unique_agency_id("school"))
    csc = await start_sandbox(unique_agency_id("csc"))
    env = ActivityEnvironment()

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        extracted = await env.run(
            connect(school).extract_records,
            agency_pb.ExtractRecordsRequest(
                case_ref=CASE_REF,
                subjects=[child_subject("consent-given")],
                categories=[pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE],
            ),
        )
        delivery = agency_pb.ReceiveDeliveryRequest(
            delivery_id=f"{CASE_REF}.{school.agency_id}.1",
            case_ref=CASE_REF,
            holding_agency_id=school.agency_id,
            subjects=[child_subject("consent-given")],
            items=extracted.items,
            content_digest=content_digest(extracted.items),
        )
        deliver = connect(csc).receive_delivery
        first = await env.run(deliver, delivery)
        again = await env.run(deliver, delivery)

    assert extracted.items
    assert first.receipt.item_count == len(extracted.items)
    assert not first.receipt.duplicate and again.receipt.duplicate
    assert csc.store.delivered_items(delivery.delivery_id) == list(extracted.items)
    events = [(entry["event"], entry.get("item_count")) for entry in logs]
    assert ("records_extracted", len(extracted.items)) in events
    assert [entry["duplicate"] for entry in logs if entry["event"] == "delivery_received"] == [
        False,
        True,
    ]
    # Record contents stay out of the logs.
    _assert_no_names(repr(logs))
    assert all(item.content not in repr(logs) for item in extracted.items)


async def test_an_unknown_child_is_a_non_retryable_rejection(
    start_sandbox: StartSandbox, connect: Callable[[Sandbox], AgencyActivities]
) -> None:
    sandbox = await start_sandbox(unique_agency_id("gp"))
    agency = connect(sandbox)

    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(
            agency.lookup_consent,
            agency_pb.LookupConsentRequest(case_ref=CASE_REF, subjects=[UNKNOWN_CHILD]),
        )

    error = failure.value
    assert error.type == ApplicationErrorType.AGENCY_REJECTED
    assert error.non_retryable
    assert error.details[0] == "NOT_FOUND"
    assert UNKNOWN_CHILD.family_name not in str(error)


async def test_a_stopped_agency_is_a_retryable_unavailable(
    start_sandbox: StartSandbox, connect: Callable[[Sandbox], AgencyActivities]
) -> None:
    sandbox = await start_sandbox(unique_agency_id("police"))
    agency = connect(sandbox)
    await sandbox.server.stop(None)

    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(
            agency.lookup_consent,
            agency_pb.LookupConsentRequest(
                case_ref=CASE_REF, subjects=[child_subject("consent-given")]
            ),
        )

    error = failure.value
    assert error.type == ApplicationErrorType.AGENCY_UNAVAILABLE
    assert not error.non_retryable
    assert error.details[0] == "UNAVAILABLE"
    _assert_no_names(str(error))


class _LeakyStub:
    """An agency whose error details quote the child, as a careless real system might."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code

    async def LookupConsent(self, request: Any, **_: Any) -> Any:
        raise grpc.aio.AioRpcError(
            self.code,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            details="no consent for Amara Okafor-Test (9990000018)",
        )


@pytest.mark.parametrize("code", [grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INTERNAL])
async def test_the_agencys_error_details_never_reach_the_temporal_failure(
    code: grpc.StatusCode,
) -> None:
    agency = AgencyActivities(_LeakyStub(code), "northshire-gp")  # type: ignore[arg-type]

    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(
            agency.lookup_consent, agency_pb.LookupConsentRequest(case_ref=CASE_REF)
        )

    # What Temporal would store: the failure and its whole cause chain.
    stored = Failure()
    DataConverter.default.failure_converter.to_failure(
        failure.value, DataConverter.default.payload_converter, stored
    )
    assert str(stored)
    assert "Okafor" not in str(stored) and "9990000018" not in str(stored)
    assert not stored.HasField("cause")
