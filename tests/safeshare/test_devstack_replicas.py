"""`safeshare dev --replicas 2`: two hubs, two gateways and two adapters per agency, the hubs
under Worker Versioning; the demo cases flow through both gateways as one target, and every
replica is polling or serving."""

from __future__ import annotations

import random
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
)
from temporalio.client import Client

from activities.agency import agency_task_queue
from protos.sharing.v1 import case_pb2 as pb
from safeshare.client import CaseClient
from safeshare.hub import HUB_DEPLOYMENT
from safeshare.pki import DevPki
from safeshare.tls import TlsFiles, channel_credentials
from tests.safeshare.test_devstack import AGENCIES, Ports, _free, connect, dev_stack, until
from workflows.ids import HUB_TASK_QUEUE

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), pytest.mark.asyncio(loop_scope="session")]


def replica_ports() -> Ports:
    """Twelve consecutive free ports: two for the gateways, then the agencies'."""
    for _ in range(200):
        base = random.randrange(20000, 32000)
        if all(_free(base + offset) for offset in range(12)):
            return Ports(
                temporal=base, ui=base + 1, gateway=base + 2, first_agency=base + 4, codec=base + 8
            )
    raise RuntimeError("no free ports")


async def health_of(address: str, tls: TlsFiles) -> int:
    async with grpc.aio.secure_channel(address, channel_credentials(tls)) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        return reply.status


async def pollers(client: Client, queue: str, kind: TaskQueueType.ValueType) -> set[str]:
    reply = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace="default", task_queue=TaskQueue(name=queue), task_queue_type=kind
        )
    )
    return {poller.identity for poller in reply.pollers}


async def test_two_of_every_part_serve_one_target(tmp_path: Path) -> None:
    data_dir, ports = tmp_path / "data", replica_ports()
    gateways = [f"127.0.0.1:{ports.gateway}", f"127.0.0.1:{ports.gateway + 1}"]
    async with dev_stack(
        data_dir, ports, "--replicas", "2", "--hub-build-id", "dev-1", "--metrics-port", "0"
    ) as stack:
        assert f"gateway={','.join(gateways)}" in stack.ready_line
        pki = DevPki(data_dir / "dev" / "pki")
        for address in gateways:
            assert await health_of(address, pki.agency("riverside-gp")) == (
                health_pb2.HealthCheckResponse.SERVING
            )
        async with CaseClient.connect(",".join(gateways), pki.agency("northshire-csc")) as csc:
            demo_1 = await csc.get(stack.demo_refs["demo-1"])
        assert demo_1.record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT

        temporal = await connect(data_dir, ports)
        workflow = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        activity = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY

        async def two_hubs() -> set[str] | None:
            seen = await pollers(temporal, HUB_TASK_QUEUE, workflow)
            return seen if len(seen) >= 2 else None

        await until(two_hubs, "two hub workers polling")
        for agency in AGENCIES:

            async def two_adapters(agency: str = agency) -> set[str] | None:
                seen = await pollers(temporal, agency_task_queue(agency), activity)
                return seen if len(seen) >= 2 else None

            await until(two_adapters, f"two adapters of {agency} polling")

        deployment = await temporal.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace="default", deployment_name=HUB_DEPLOYMENT)
        )
        routing = deployment.worker_deployment_info.routing_config
        assert routing.current_deployment_version.build_id == "dev-1"
