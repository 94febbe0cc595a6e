"""The adapter as an operator runs it: ``python -m safeshare adapter`` in its own process.

A case survives its recipient's adapter being killed mid-delivery (a new adapter finishes it,
and the recipient holds each record once); SIGTERM lets an in-flight activity finish.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.names import LOOKUP_CONSENT
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from safeshare.hub import build_hub_worker
from safeshare.pki import DevPki
from tests.agency_adapters.agency_test_support import (
    Sandbox,
    StartSandbox,
    child_subject,
    unique_agency_id,
)
from tests.agency_adapters.agency_workflows import CallAgency, MiniCase
from tests.eventually import eventually
from tests.factories import sharing_request
from tests.gateway_seal import gateway_key_file, sealing_client
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id
from workflows.sharing_case import SharingCase

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
CASE_REF = "processabcdefghijklm"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AdapterProcess:
    """One ``safeshare adapter`` subprocess with a health port."""

    def __init__(self, process: asyncio.subprocess.Process, health_port: int) -> None:
        self.process = process
        self.health_port = health_port

    async def health(self) -> int | None:
        """The health status, or None when it does not answer."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.health_port}") as channel:
            try:
                response = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            except grpc.aio.AioRpcError:
                return None
        return int(response.status)

    async def wait_serving(self, within: float = 20) -> None:
        """Poll health until SERVING (the worker polls its queue)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while await self.health() != health_pb2.HealthCheckResponse.SERVING:
            assert self.process.returncode is None, "adapter exited"
            assert loop.time() < deadline, "adapter never reported SERVING"
            await asyncio.sleep(0.1)

    async def wait_exit(self, within: float = 20) -> int:
        """The exit code, once the process has exited."""
        return await asyncio.wait_for(self.process.wait(), within)


StartAdapter = Callable[[Sandbox], Awaitable[AdapterProcess]]


@pytest_asyncio.fixture(loop_scope="session")
async def start_adapter(
    dev_server: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> AsyncIterator[StartAdapter]:
    """Start adapter processes for sandboxes (SERVING on return); all killed after the test."""
    target = dev_server.client.service_client.config.target_host
    started: list[AdapterProcess] = []

    async def start(sandbox: Sandbox) -> AdapterProcess:
        tls = pki.adapter(sandbox.agency_id)
        health_port = _free_port()
        log = (tmp_path / f"adapter-{sandbox.agency_id}-{len(started)}.log").open("wb")
        process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "safeshare", "adapter",
                "--agency", sandbox.agency_id, "--target", sandbox.target,
                "--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key),
                "--temporal-address", target, "--namespace", dev_server.client.namespace,
                "--health-port", str(health_port),
                "--claim-check-dir", str(tmp_path / "claims"),
                "--call-timeout", "10", "--log-format", "json",
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            # The test's own workers use the dev server's plain client, so payloads match.
            env={**os.environ, "SAFESHARE_PLAINTEXT_PAYLOADS": "1"},
        )  # fmt: skip
        log.close()
        started.append(AdapterProcess(process, health_port))
        await started[-1].wait_serving()
        return started[-1]

    yield start
    for adapter in started:
        if adapter.process.returncode is None:
            adapter.process.kill()
            await adapter.process.wait()


async def test_a_killed_adapter_is_replaced_and_the_recipient_holds_each_record_once(
    dev_server: WorkflowEnvironment, start_sandbox: StartSandbox, start_adapter: StartAdapter
) -> None:
    school = await start_sandbox(unique_agency_id("school"))
    csc = await start_sandbox(unique_agency_id("csc"))
    # Slow enough that the delivery is surely in flight when the adapter dies.
    csc.set_faults(delay_ms=1500, rpcs=["ReceiveDelivery"])
    await start_adapter(school)
    doomed = await start_adapter(csc)
    client = dev_server.client
    hub_queue = f"test-hub-{uuid.uuid4()}"

    async with Worker(client, task_queue=hub_queue, workflows=[MiniCase]):
        handle = await client.start_workflow(
            MiniCase.run,
            agency_pb.ExtractRecordsRequest(
                case_ref=CASE_REF,
                subjects=[child_subject("consent-given")],
                categories=[
                    pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
                    pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
                ],
            ),
            id=f"test-minicase-{uuid.uuid4()}",
            task_queue=hub_queue,
            memo={"holder": school.agency_id, "recipient": csc.agency_id},
            execution_timeout=timedelta(seconds=40),
        )
        await eventually(
            lambda: csc.faults.calls["ReceiveDelivery"], what="a delivery call", within=20
        )
        doomed.process.send_signal(signal.SIGKILL)
        assert await doomed.wait_exit() == -signal.SIGKILL
        await start_adapter(csc)
        result = await handle.result()

    assert isinstance(result, agency_pb.ReceiveDeliveryResponse)
    assert csc.faults.calls["ReceiveDelivery"] >= 2
    [delivery] = csc.store.deliveries()
    assert result.receipt.delivery_id == delivery.delivery_id
    delivered = [item.item_id for item in csc.store.delivered_items()]
    assert delivered and set(Counter(delivered).values()) == {1}
    assert len(delivered) == result.receipt.item_count == delivery.item_count


async def test_sigterm_lets_the_in_flight_activity_finish_then_exits_cleanly(
    dev_server: WorkflowEnvironment, start_sandbox: StartSandbox, start_adapter: StartAdapter
) -> None:
    gp = await start_sandbox(unique_agency_id("gp"))
    gp.set_faults(delay_ms=1500)
    adapter = await start_adapter(gp)
    client = dev_server.client
    hub_queue = f"test-hub-{uuid.uuid4()}"

    async with Worker(client, task_queue=hub_queue, workflows=[CallAgency]):
        handle = await client.start_workflow(
            CallAgency.run,
            agency_pb.LookupConsentRequest(
                case_ref=CASE_REF, subjects=[child_subject("consent-given")]
            ),
            id=f"test-sigterm-{uuid.uuid4()}",
            task_queue=hub_queue,
            # One attempt only: success proves the in-flight call was finished, not retried.
            memo={"activity": LOOKUP_CONSENT, "agency_id": gp.agency_id, "max_attempts": 1},
            execution_timeout=timedelta(seconds=30),
        )
        await eventually(lambda: gp.faults.calls["LookupConsent"], what="a lookup call", within=20)
        adapter.process.send_signal(signal.SIGTERM)
        result = await handle.result()
        exit_code = await adapter.wait_exit()

    assert isinstance(result, agency_pb.LookupConsentResponse)
    assert result.consent.status == pb.CONSENT_STATUS_GIVEN
    assert gp.faults.calls["LookupConsent"] == 1
    assert exit_code == 0


async def test_a_real_sharing_case_survives_its_recipient_adapter_being_killed(
    dev_server: WorkflowEnvironment,
    start_sandbox: StartSandbox,
    start_adapter: StartAdapter,
    tmp_path: Path,
) -> None:
    school = await start_sandbox(unique_agency_id("school"))
    csc = await start_sandbox(unique_agency_id("csc"))
    csc.set_faults(delay_ms=1500, rpcs=["ReceiveDelivery"])
    await start_adapter(school)
    doomed = await start_adapter(csc)
    registry = tmp_path / "registry.toml"
    registry.write_text(
        'registry_version = 1\nprotocol_version = "2026.1"\n'
        + "".join(
            f'[[agencies]]\nid = "{agency}"\nname = "{agency}"\nkind = "statutory"\n'
            f'signed_protocol_version = "2026.1"\nreview_date = 2099-01-01\n'
            for agency in (school.agency_id, csc.agency_id)
        )
    )
    request = sharing_request(
        requesting_agency_id=csc.agency_id,
        holding_agency_id=school.agency_id,
        categories=(
            pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE,
            pb.INFORMATION_CATEGORY_WELFARE_CONCERNS,
        ),
    )
    ref = case_ref_for(csc.agency_id, request.request_id)
    client = sealing_client(dev_server.client)  # it plays the gateway
    hub_queue = f"test-hub-{uuid.uuid4()}"
    async with build_hub_worker(
        client, registry, task_queue=hub_queue, gateway_key_path=gateway_key_file()
    ):
        handle = await client.start_workflow(
            SharingCase.run, request, id=case_workflow_id(ref), task_queue=hub_queue
        )
        await eventually(
            lambda: csc.faults.calls["ReceiveDelivery"], what="a delivery call", within=30
        )
        doomed.process.send_signal(signal.SIGKILL)
        assert await doomed.wait_exit() == -signal.SIGKILL
        await start_adapter(csc)
        exchange = client.get_workflow_handle_for(
            HolderExchange.run, holder_exchange_workflow_id(ref, school.agency_id)
        )
        for _ in range(300):
            view = await exchange.query(HolderExchange.holder_record)
            if view.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT:
                break
            await asyncio.sleep(0.1)
        await exchange.execute_update(
            HolderExchange.acknowledge,
            pb.Acknowledgement(
                practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
                status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
                agency_id=csc.agency_id,
            ),
        )
        record = await handle.result()

    assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert csc.faults.calls["ReceiveDelivery"] >= 2  # the killed attempt, then the retry
    [delivery] = csc.store.deliveries()
    delivered = [item.item_id for item in csc.store.delivered_items()]
    assert delivered and set(Counter(delivered).values()) == {1}
    assert sorted(delivered) == sorted(i.item_id for i in record.holders[0].shared_items)
    assert delivery.delivery_id == record.holders[0].receipt.delivery_id
