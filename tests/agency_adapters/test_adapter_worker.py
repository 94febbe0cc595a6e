"""The adapter worker on a real Temporal dev server, polling its agency's queue."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import grpc
import pytest
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from activities.names import LOOKUP_CONSENT
from agency_adapters.worker import build_adapter_worker, open_agency_channel
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from tests.agency_adapters.agency_test_support import StartSandbox, child_subject, unique_agency_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


# Unsandboxed: this module imports grpc and the sandbox agency, which the workflow sandbox
# would re-import on every run.
@workflow.defn(sandboxed=False)
class LookupConsentOnce:
    """Calls the agency activity by name, as the SharingCase workflow does."""

    @workflow.run
    async def run(self, request: agency_pb.LookupConsentRequest) -> agency_pb.LookupConsentResponse:
        agency_id = workflow.memo_value("agency_id", type_hint=str)
        return await workflow.execute_activity(
            LOOKUP_CONSENT,
            request,
            task_queue=agency_task_queue(agency_id),
            result_type=agency_pb.LookupConsentResponse,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_the_worker_answers_lookup_consent_on_its_agencys_queue(
    dev_server: WorkflowEnvironment,
    start_sandbox: StartSandbox,
    adapter_credentials: Callable[[str], grpc.ChannelCredentials],
) -> None:
    agency_id = unique_agency_id("gp")
    sandbox = await start_sandbox(agency_id)
    client = dev_server.client
    hub_queue = f"test-hub-{uuid.uuid4()}"

    async with (
        open_agency_channel(sandbox.target, adapter_credentials(agency_id)) as channel,
        build_adapter_worker(client, agency_id, channel, call_timeout=5),
        Worker(client, task_queue=hub_queue, workflows=[LookupConsentOnce]),
    ):
        response = await client.execute_workflow(
            LookupConsentOnce.run,
            agency_pb.LookupConsentRequest(
                case_ref="abcdefghijklmnopqrst",
                subjects=[child_subject("consent-given")],
                purpose=pb.PURPOSE_SAFEGUARDING,
            ),
            id=f"test-lookup-{uuid.uuid4()}",
            memo={"agency_id": agency_id},
            task_queue=hub_queue,
            execution_timeout=timedelta(seconds=30),
        )

    assert response.consent.status == pb.CONSENT_STATUS_GIVEN
    assert response.consent.given_by_relationship == "mother"
