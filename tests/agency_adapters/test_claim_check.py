"""Records too large for a Temporal payload: claim-checked end to end, or refused clearly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import (
    CLAIM_CHECK_FAILED,
    MAX_ACTIVITY_PAYLOAD_BYTES,
    PAYLOAD_TOO_LARGE,
    content_digest,
)
from agency_adapters.activities import AgencyActivities
from agency_adapters.claims import ClaimError, ClaimStore
from agency_adapters.sandbox_agency.rows import Child
from agency_adapters.worker import build_adapter_worker, open_agency_channel
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.agency.v1 import agency_service_pb2_grpc as agency_grpc
from protos.sharing.v1 import case_pb2 as pb
from tests.agency_adapters.agency_test_support import Sandbox, StartSandbox, unique_agency_id
from tests.agency_adapters.agency_workflows import MiniCase

pytestmark = pytest.mark.asyncio(loop_scope="session")

CASE_REF = "claimcheckabcdefghij"
BIG_CHILD = Child("big-record", "Ada", "Large-Test", "2016-01-01", "9990000115", "ZZ99 7GH")
BIG_SUBJECT = pb.Subject(  # the sandbox matches a child on NHS number, name and date of birth
    role=pb.SUBJECT_ROLE_CHILD,
    nhs_number=BIG_CHILD.nhs_number,
    given_name=BIG_CHILD.given_name,
    family_name=BIG_CHILD.family_name,
    date_of_birth=BIG_CHILD.date_of_birth,
)
HEALTH = pb.INFORMATION_CATEGORY_HEALTH_SUMMARY


def _big_items(agency_id: str) -> list[pb.RecordItem]:
    # Three items of 150 KiB each: the extraction (~450 KiB) is over the payload limit.
    return [
        pb.RecordItem(
            item_id=f"{agency_id}-big-{n}",
            category=category,
            kind=pb.ITEM_KIND_FACT,
            source="GP surgery",
            recorded_at=Timestamp(seconds=1_750_000_000 + n),
            content=f"Scanned letter {n}. " + "x" * (150 * 1024),
        )
        for n, category in enumerate(
            (HEALTH, HEALTH, pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT), start=1
        )
    ]


@pytest_asyncio.fixture(loop_scope="session")
async def connect(
    adapter_credentials: Callable[[str], grpc.ChannelCredentials],
) -> AsyncIterator[Callable[[Sandbox, ClaimStore | None], AgencyActivities]]:
    channels: list[grpc.aio.Channel] = []

    def connect(sandbox: Sandbox, claims: ClaimStore | None) -> AgencyActivities:
        channels.append(open_agency_channel(sandbox.target, adapter_credentials(sandbox.agency_id)))
        stub = agency_grpc.AgencyServiceStub(channels[-1])
        return AgencyActivities(stub, sandbox.agency_id, call_timeout=5, claims=claims)

    yield connect
    for channel in channels:
        await channel.close()


async def _big_gp(start_sandbox: StartSandbox) -> tuple[Sandbox, list[pb.RecordItem]]:
    gp = await start_sandbox(unique_agency_id("gp"))
    items = _big_items(gp.agency_id)
    gp.store.add_children([BIG_CHILD], {}, {BIG_CHILD.key: items})
    return gp, items


def _extract(categories: list[pb.InformationCategory.ValueType]) -> agency_pb.ExtractRecordsRequest:
    return agency_pb.ExtractRecordsRequest(
        case_ref=CASE_REF, subjects=[BIG_SUBJECT], categories=categories
    )


async def test_a_large_extraction_is_claim_checked_and_delivered_whole(
    start_sandbox: StartSandbox,
    connect: Callable[[Sandbox, ClaimStore | None], AgencyActivities],
    tmp_path: Path,
) -> None:
    gp, items = await _big_gp(start_sandbox)
    csc = await start_sandbox(unique_agency_id("csc"))
    claims = ClaimStore(tmp_path / "claims")
    env = ActivityEnvironment()

    extracted = await env.run(
        connect(gp, claims).extract_records,
        _extract([HEALTH, pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT]),
    )

    # Only the reference, digest and content-less items travel through the history.
    assert extracted.claim_ref.startswith("sha256:")
    assert extracted.ByteSize() < MAX_ACTIVITY_PAYLOAD_BYTES // 10
    assert [item.item_id for item in extracted.items] == [item.item_id for item in items]
    assert all(not item.content for item in extracted.items)
    assert extracted.content_digest == content_digest(items)

    # The workflow keeps only what it approved (here: health) and passes the claim on.
    kept = [item for item in extracted.items if item.category == HEALTH]
    receipt = await env.run(
        connect(csc, claims).receive_delivery,
        agency_pb.ReceiveDeliveryRequest(
            delivery_id=f"{CASE_REF}.{gp.agency_id}.1",
            case_ref=CASE_REF,
            holding_agency_id=gp.agency_id,
            subjects=[BIG_SUBJECT],
            items=kept,
            content_digest=content_digest(kept),
            claim_ref=extracted.claim_ref,
            claim_digest=extracted.claim_digest,
        ),
    )

    assert csc.store.delivered_items() == items[:2]
    assert receipt.receipt.item_count == 2
    assert receipt.receipt.content_digest == content_digest(items[:2])


async def test_a_large_case_through_temporal_keeps_the_content_out_of_the_history(
    dev_server: WorkflowEnvironment,
    start_sandbox: StartSandbox,
    adapter_credentials: Callable[[str], grpc.ChannelCredentials],
    tmp_path: Path,
) -> None:
    gp, items = await _big_gp(start_sandbox)
    csc = await start_sandbox(unique_agency_id("csc"))
    claims = ClaimStore(tmp_path / "claims")
    client = dev_server.client
    hub_queue = f"test-hub-{uuid.uuid4()}"

    async with AsyncExitStack() as stack:
        for sandbox in (gp, csc):
            channel = open_agency_channel(sandbox.target, adapter_credentials(sandbox.agency_id))
            stack.push_async_callback(channel.close)
            await stack.enter_async_context(
                build_adapter_worker(client, sandbox.agency_id, channel, claims=claims)
            )
        await stack.enter_async_context(Worker(client, task_queue=hub_queue, workflows=[MiniCase]))
        handle = await client.start_workflow(
            MiniCase.run,
            _extract([HEALTH]),
            id=f"test-bigcase-{uuid.uuid4()}",
            task_queue=hub_queue,
            memo={"holder": gp.agency_id, "recipient": csc.agency_id},
            execution_timeout=timedelta(seconds=30),
        )
        result = await handle.result()

    assert isinstance(result, agency_pb.ReceiveDeliveryResponse)
    assert csc.store.delivered_items() == items[:2]
    history = await handle.fetch_history()
    payloads = [
        payload
        for event in history.events
        for payload in [
            *event.activity_task_scheduled_event_attributes.input.payloads,
            *event.activity_task_completed_event_attributes.result.payloads,
        ]
    ]
    assert payloads
    assert max(payload.ByteSize() for payload in payloads) < MAX_ACTIVITY_PAYLOAD_BYTES // 10
    assert all(b"Scanned letter" not in payload.data for payload in payloads)


async def test_without_a_claim_store_a_large_extraction_is_refused_not_retried(
    start_sandbox: StartSandbox,
    connect: Callable[[Sandbox, ClaimStore | None], AgencyActivities],
) -> None:
    gp, _ = await _big_gp(start_sandbox)

    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(connect(gp, None).extract_records, _extract([HEALTH]))

    assert failure.value.type == PAYLOAD_TOO_LARGE
    assert failure.value.non_retryable
    assert "no claim-check store" in failure.value.message
    assert "Scanned letter" not in str(failure.value)


async def test_a_small_extraction_stays_inline(
    start_sandbox: StartSandbox,
    connect: Callable[[Sandbox, ClaimStore | None], AgencyActivities],
    tmp_path: Path,
) -> None:
    gp = await start_sandbox(unique_agency_id("gp"))
    claims = ClaimStore(tmp_path / "claims")

    extracted = await ActivityEnvironment().run(
        connect(gp, claims).extract_records,
        agency_pb.ExtractRecordsRequest(
            case_ref=CASE_REF,
            subjects=[
                pb.Subject(
                    role=pb.SUBJECT_ROLE_CHILD,
                    nhs_number="9990000018",
                    given_name="Amara",
                    family_name="Okafor-Test",
                    date_of_birth="2016-03-14",
                )
            ],
            categories=[HEALTH],
        ),
    )

    assert extracted.items and all(item.content for item in extracted.items)
    assert not extracted.claim_ref
    assert not (tmp_path / "claims").exists()


async def test_a_tampered_claim_is_refused_and_nothing_is_delivered(
    start_sandbox: StartSandbox,
    connect: Callable[[Sandbox, ClaimStore | None], AgencyActivities],
    tmp_path: Path,
) -> None:
    gp, _ = await _big_gp(start_sandbox)
    csc = await start_sandbox(unique_agency_id("csc"))
    claims = ClaimStore(tmp_path / "claims")
    env = ActivityEnvironment()
    extracted = await env.run(connect(gp, claims).extract_records, _extract([HEALTH]))
    [blob] = [path for path in (tmp_path / "claims").rglob("*") if path.is_file()]
    blob.write_bytes(blob.read_bytes().replace(b"Scanned", b"Altered"))

    with pytest.raises(ApplicationError) as failure:
        await env.run(
            connect(csc, claims).receive_delivery,
            agency_pb.ReceiveDeliveryRequest(
                delivery_id=f"{CASE_REF}.{gp.agency_id}.1",
                case_ref=CASE_REF,
                holding_agency_id=gp.agency_id,
                items=extracted.items,
                claim_ref=extracted.claim_ref,
                claim_digest=extracted.claim_digest,
            ),
        )

    assert (failure.value.type, failure.value.non_retryable) == (CLAIM_CHECK_FAILED, True)
    assert csc.store.deliveries() == []


async def test_the_claim_store_is_content_addressed_and_checks_what_it_reads(
    tmp_path: Path,
) -> None:
    store = ClaimStore(tmp_path)

    ref, digest = store.put(b"records")
    again = store.put(b"records")

    assert again == (ref, digest)
    assert store.get(ref, digest) == b"records"
    for bad_ref, bad_digest in [
        ("sha256:" + "0" * 64, "0" * 64),
        ("../../etc/passwd", digest),
        (ref, "0" * 64),
    ]:
        with pytest.raises(ClaimError):
            store.get(bad_ref, bad_digest)


class _OversizedStub:
    """An agency whose answer our channel refuses as too large, or that is overloaded."""

    def __init__(self, details: str) -> None:
        self.details = details

    async def ExtractRecords(self, request: object, **_: object) -> object:
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            details=self.details,
        )


@pytest.mark.parametrize(
    ("details", "error_type", "non_retryable"),
    [
        ("Received message larger than max (40000000 vs. 33554432)", PAYLOAD_TOO_LARGE, True),
        ("agency overloaded", "AgencyUnavailable", False),
    ],
)
async def test_an_answer_over_the_message_limit_is_refused_but_overload_is_retried(
    details: str, error_type: str, non_retryable: bool
) -> None:
    agency = AgencyActivities(_OversizedStub(details), "riverside-gp")  # type: ignore[arg-type]

    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(agency.extract_records, _extract([HEALTH]))

    assert (failure.value.type, failure.value.non_retryable) == (error_type, non_retryable)
