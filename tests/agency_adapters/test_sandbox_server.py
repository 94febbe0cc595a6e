"""The sandbox agency over real mutual TLS: each RPC, its refusals, and who may connect."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
import pytest_asyncio
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from activities.agency import content_digest
from agency_adapters.sandbox_agency.seed import demo_consents
from agency_adapters.sandbox_agency.server import SERVICE_NAME
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.agency.v1 import agency_service_pb2_grpc as agency_grpc
from protos.sharing.v1 import case_pb2 as pb
from safeshare.pki import DevPki
from tests.agency_adapters.agency_test_support import (
    UNKNOWN_CHILD,
    Sandbox,
    StartSandbox,
    child_subject,
    unique_agency_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CASE_REF = "abcdefghijklmnopqrst"


@pytest_asyncio.fixture(loop_scope="session")
async def gp(start_sandbox: StartSandbox) -> Sandbox:
    return await start_sandbox(unique_agency_id("gp"))


@pytest_asyncio.fixture(loop_scope="session")
async def channel(
    gp: Sandbox, adapter_credentials: Callable[[str], grpc.ChannelCredentials]
) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.secure_channel(gp.target, adapter_credentials(gp.agency_id)) as channel:
        yield channel


async def _code_of(call: Awaitable[object]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    return failure.value.code()


async def test_lookup_consent_returns_the_childs_record(channel: grpc.aio.Channel) -> None:
    stub = agency_grpc.AgencyServiceStub(channel)

    response = await stub.LookupConsent(
        agency_pb.LookupConsentRequest(
            case_ref=CASE_REF,
            subjects=[child_subject("consent-given")],
            purpose=pb.PURPOSE_SAFEGUARDING,
            recipient_agency_id="northshire-csc",
            categories=[pb.INFORMATION_CATEGORY_HEALTH_SUMMARY],
        ),
        timeout=5,
    )

    assert response.consent == demo_consents()["consent-given"]
    assert response.consent.status == pb.CONSENT_STATUS_GIVEN


async def test_lookup_consent_without_a_record_is_not_recorded(
    channel: grpc.aio.Channel,
) -> None:
    stub = agency_grpc.AgencyServiceStub(channel)

    response = await stub.LookupConsent(
        agency_pb.LookupConsentRequest(
            case_ref=CASE_REF, subjects=[child_subject("consent-not-recorded", by_nhs=False)]
        ),
        timeout=5,
    )

    assert response.consent == pb.ConsentRecord(status=pb.CONSENT_STATUS_NOT_RECORDED)


async def test_lookup_consent_for_an_unknown_child_is_not_found_without_personal_data(
    channel: grpc.aio.Channel,
) -> None:
    stub = agency_grpc.AgencyServiceStub(channel)

    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.LookupConsent(
            agency_pb.LookupConsentRequest(case_ref=CASE_REF, subjects=[UNKNOWN_CHILD]), timeout=5
        )

    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    assert failure.value.details() == "subject not known to this agency"


async def test_a_request_without_a_child_subject_is_invalid(channel: grpc.aio.Channel) -> None:
    stub = agency_grpc.AgencyServiceStub(channel)
    parent = child_subject("consent-given")
    parent.role = pb.SUBJECT_ROLE_PARENT_OR_CARER

    code = await _code_of(
        stub.LookupConsent(
            agency_pb.LookupConsentRequest(case_ref=CASE_REF, subjects=[parent]), timeout=5
        )
    )

    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_extract_records_returns_the_requested_categories_only(
    channel: grpc.aio.Channel, gp: Sandbox
) -> None:
    stub = agency_grpc.AgencyServiceStub(channel)

    response = await stub.ExtractRecords(
        agency_pb.ExtractRecordsRequest(
            case_ref=CASE_REF,
            subjects=[child_subject("consent-given")],
            # POLICE_INCIDENTS is not held by a GP: asking for it alongside is not an error.
            categories=[
                pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,
                pb.INFORMATION_CATEGORY_POLICE_INCIDENTS,
            ],
        ),
        timeout=5,
    )

    assert response.items
    assert {item.category for item in response.items} == {pb.INFORMATION_CATEGORY_HEALTH_SUMMARY}
    assert all(item.item_id.startswith(f"{gp.agency_id}-consent-given-") for item in response.items)


async def test_extract_records_for_an_unknown_child_is_not_found(
    channel: grpc.aio.Channel,
) -> None:
    stub = agency_grpc.AgencyServiceStub(channel)

    code = await _code_of(
        stub.ExtractRecords(
            agency_pb.ExtractRecordsRequest(
                case_ref=CASE_REF,
                subjects=[UNKNOWN_CHILD],
                categories=[pb.INFORMATION_CATEGORY_HEALTH_SUMMARY],
            ),
            timeout=5,
        )
    )

    assert code == grpc.StatusCode.NOT_FOUND


async def test_extract_records_in_categories_not_held_is_a_failed_precondition(
    channel: grpc.aio.Channel,
) -> None:
    stub = agency_grpc.AgencyServiceStub(channel)

    code = await _code_of(
        stub.ExtractRecords(
            agency_pb.ExtractRecordsRequest(
                case_ref=CASE_REF,
                subjects=[child_subject("consent-given")],
                categories=[pb.INFORMATION_CATEGORY_POLICE_INCIDENTS],
            ),
            timeout=5,
        )
    )

    assert code == grpc.StatusCode.FAILED_PRECONDITION


def _delivery(items: list[pb.RecordItem]) -> agency_pb.ReceiveDeliveryRequest:
    return agency_pb.ReceiveDeliveryRequest(
        delivery_id=f"{CASE_REF}.northshire-gp.1",
        case_ref=CASE_REF,
        holding_agency_id="northshire-gp",
        subjects=[child_subject("consent-given")],
        items=items,
        content_digest=content_digest(items),
    )


ITEMS = [
    pb.RecordItem(
        item_id="northshire-gp-1",
        category=pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,
        kind=pb.ITEM_KIND_FACT,
        source="GP surgery",
        content="Missed two appointments.",
    )
]


async def test_receive_delivery_stores_once_and_repeats_the_first_receipt(
    channel: grpc.aio.Channel, gp: Sandbox
) -> None:
    stub = agency_grpc.AgencyServiceStub(channel)
    request = _delivery(ITEMS)

    first = (await stub.ReceiveDelivery(request, timeout=5)).receipt
    again = (await stub.ReceiveDelivery(request, timeout=5)).receipt

    assert not first.duplicate and again.duplicate
    assert first.item_count == 1 and first.content_digest == request.content_digest
    assert again.received_at == first.received_at
    assert len(gp.store.deliveries()) == 1
    assert gp.store.delivered_items(request.delivery_id) == ITEMS


async def test_receive_delivery_with_a_wrong_digest_is_invalid_and_stores_nothing(
    channel: grpc.aio.Channel, gp: Sandbox
) -> None:
    stub = agency_grpc.AgencyServiceStub(channel)
    request = _delivery(ITEMS)
    request.items[0].content = "Altered on the way."

    code = await _code_of(stub.ReceiveDelivery(request, timeout=5))

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert gp.store.deliveries() == []


async def test_health_reports_the_agency_service_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)

    response = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)

    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_client_without_a_certificate_is_refused(gp: Sandbox, pki: DevPki) -> None:
    # It trusts the server, so only the missing client certificate can fail the handshake.
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca_path.read_bytes())
    async with grpc.aio.secure_channel(gp.target, credentials) as channel:
        code = await _code_of(
            agency_grpc.AgencyServiceStub(channel).LookupConsent(
                agency_pb.LookupConsentRequest(subjects=[child_subject("consent-given")]),
                timeout=5,
            )
        )

    assert code == grpc.StatusCode.UNAVAILABLE
    assert gp.store.deliveries() == []


async def test_a_client_certificate_from_another_ca_is_refused(gp: Sandbox, pki: DevPki) -> None:
    stranger = trustme.CA().issue_cert(f"adapter.{gp.agency_id}.invalid")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_path.read_bytes(),
        private_key=stranger.private_key_pem.bytes(),
        certificate_chain=b"".join(blob.bytes() for blob in stranger.cert_chain_pems),
    )
    async with grpc.aio.secure_channel(gp.target, credentials) as channel:
        code = await _code_of(
            agency_grpc.AgencyServiceStub(channel).LookupConsent(
                agency_pb.LookupConsentRequest(subjects=[child_subject("consent-given")]),
                timeout=5,
            )
        )

    assert code == grpc.StatusCode.UNAVAILABLE
