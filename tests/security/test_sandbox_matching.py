"""The sandbox agency matches a child on NHS number AND name AND date of birth.

A request naming another child with Amara's NHS number used to receive Amara's records; it is
now refused with FAILED_PRECONDITION, over real mTLS against the real sandbox server.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.agency.v1 import agency_service_pb2_grpc as agency_grpc
from protos.sharing.v1 import case_pb2 as pb
from tests.agency_adapters.agency_test_support import StartSandbox, child_subject, unique_agency_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

CASE_REF = "abcdefghijklmnopqrst"
HEALTH = pb.INFORMATION_CATEGORY_HEALTH_SUMMARY


def amaras_number(**changes: str) -> pb.Subject:
    subject = child_subject("consent-given")
    for field, value in changes.items():
        setattr(subject, field, value)
    return subject


async def test_an_nhs_number_with_another_childs_details_is_refused(
    start_sandbox: StartSandbox, adapter_credentials: Callable[[str], grpc.ChannelCredentials]
) -> None:
    gp = await start_sandbox(unique_agency_id("gp"))
    async with grpc.aio.secure_channel(gp.target, adapter_credentials(gp.agency_id)) as channel:
        stub = agency_grpc.AgencyServiceStub(channel)
        for other in (
            amaras_number(given_name="Bella", family_name="Other-Test"),
            amaras_number(date_of_birth="2017-01-01"),
            amaras_number(family_name="Okafor"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as lookup:
                await stub.LookupConsent(
                    agency_pb.LookupConsentRequest(case_ref=CASE_REF, subjects=[other]), timeout=5
                )
            assert lookup.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            details = lookup.value.details() or ""
            assert (
                "Amara" not in details and "Okafor" not in details and "9990000018" not in details
            )
            with pytest.raises(grpc.aio.AioRpcError) as extract:
                await stub.ExtractRecords(
                    agency_pb.ExtractRecordsRequest(
                        case_ref=CASE_REF, subjects=[other], categories=[HEALTH]
                    ),
                    timeout=5,
                )
            assert extract.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_the_right_child_matches_whatever_the_case_and_spacing(
    start_sandbox: StartSandbox, adapter_credentials: Callable[[str], grpc.ChannelCredentials]
) -> None:
    gp = await start_sandbox(unique_agency_id("gp"))
    async with grpc.aio.secure_channel(gp.target, adapter_credentials(gp.agency_id)) as channel:
        stub = agency_grpc.AgencyServiceStub(channel)
        subject = amaras_number(given_name="  AMARA ", family_name="okafor-test")
        response = await stub.ExtractRecords(
            agency_pb.ExtractRecordsRequest(
                case_ref=CASE_REF, subjects=[subject], categories=[HEALTH]
            ),
            timeout=5,
        )
        assert response.items, "the right child, spelt differently, still matches"
