"""A closed case is read from its result: GetCase answers with no hub worker running (a query
would make the hub replay the whole case, and cannot be answered at all without one)."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from temporalio.testing import WorkflowEnvironment

from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.gateway import CaseServiceServicer, create_gateway_server, party_view
from safeshare.pki import DevPki
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import TEST_SIGNER
from tests.safeshare.gateway_support import (
    CSC,
    SCHOOL,
    WAIT,
    acknowledgement,
    new_request,
    running_workers,
    wait_for_state,
)
from workflows.domain.case_view import closed_case_view
from workflows.ids import case_ref_for, case_workflow_id
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_closed_case_is_read_without_a_hub_worker(
    dev_server: WorkflowEnvironment, pki: DevPki, registry: Registry
) -> None:
    client = dev_server.client
    hub_queue = f"hub-closed-{uuid.uuid4()}"
    servicer = CaseServiceServicer(client, registry, hub_queue, signer=TEST_SIGNER)
    server, port = await create_gateway_server(
        client, registry, tls.server_credentials(pki.gateway()),
        hub_task_queue=hub_queue, servicer=servicer, signer=TEST_SIGNER,
    )  # fmt: skip
    channel = grpc.aio.secure_channel(f"127.0.0.1:{port}", tls.channel_credentials(pki.agency(CSC)))
    try:
        csc = service_grpc.CaseServiceStub(channel)
        call = new_request()
        case_ref = case_ref_for(CSC, call.request.request_id)
        fakes = FakeAgencies()
        async with running_workers(client, hub_queue, fakes):
            await csc.SubmitRequest(call)
            await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
            await csc.Acknowledge(acknowledgement(case_ref))
            handle = client.get_workflow_handle_for(SharingCase.run, case_workflow_id(case_ref))
            final = await asyncio.wait_for(handle.result(), WAIT.total_seconds())
        # Every worker of this case has stopped.

        read = await csc.GetCase(service_pb.GetCaseRequest(case_ref=case_ref), timeout=5)

        assert read.case.state == pb.CASE_STATE_CLOSED
        assert read.case.waiting_on == pb.WAITING_ON_UNSPECIFIED
        # The requester's view of the final record (safeshare.gateway.party_view).
        requester = party_view.Party(CSC, party_view.Role.REQUESTER)
        assert read.case == party_view.view_for(requester, closed_case_view(case_ref, final))
        assert read.case.record.holders[0].holding_agency_id == SCHOOL
        assert read.case.record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    finally:
        await channel.close()
        await server.stop(None)
