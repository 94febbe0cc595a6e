"""Metrics: a real hub process with ``--metrics-port`` runs a case to its
close, and its Prometheus endpoint shows Temporal's SDK series and SafeShare's own; the
gateway counts each Case API call by RPC and status."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare.access.log import AccessLog
from safeshare.gateway.server import create_gateway_server
from safeshare.gateway.signing import GatewaySigner, load_signing_key
from safeshare.metrics import runtime_for
from safeshare.pki import DevPki
from safeshare.temporal import TemporalSettings, connect_temporal
from safeshare.tls import channel_credentials, server_credentials
from tests.eventually import eventually
from tests.factories import sharing_request
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import TEST_SIGNER
from tests.workflows.harness import CSC, SCHOOL
from workflows.holder_exchange import HolderExchange
from workflows.ids import (
    HUB_TASK_QUEUE,
    case_ref_for,
    case_workflow_id,
    holder_exchange_workflow_id,
)
from workflows.seal import START
from workflows.sharing_case import SharingCase

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


async def _until_scraped(port: int, *wanted: str) -> str:
    """Poll the endpoint (bounded) until every wanted fragment is in one scrape."""
    return await eventually(
        lambda: asyncio.to_thread(_scrape, port),
        lambda text: all(w in text for w in wanted),
        what=f"metrics showed {list(wanted)}",
        within=60,
        every=0.5,
        retry_on=(OSError,),
        last=lambda text: f"{[w for w in wanted if w not in text]} missing from\n{text[-3000:]}",
    )


@asynccontextmanager
async def hub_process(
    env: WorkflowEnvironment, metrics_port: int, log: Path
) -> AsyncIterator[GatewaySigner]:
    """`python -m safeshare hub --metrics-port` against the test server, payloads in the clear
    (the test's own client has no codec)."""
    signing_key, gateway_key = DevPki(log.parent / "pki").gateway_signing_key()
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "safeshare", "hub",
            "--temporal-address", env.client.service_client.config.target_host,
            "--namespace", env.client.namespace, "--metrics-port", str(metrics_port),
            "--log-format", "json", "--gateway-key", str(gateway_key),
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "SAFESHARE_PLAINTEXT_PAYLOADS": "1"},
        )  # fmt: skip
    try:
        yield load_signing_key(signing_key)  # the hub checks the gateway's seals: the test seals
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def _state(client: Client, workflow_id: str) -> pb.HolderRecord | None:
    try:
        return await client.get_workflow_handle(workflow_id).query(HolderExchange.holder_record)
    except Exception:  # not started yet, or no worker has answered yet
        return None


async def test_hub_metrics_show_sdk_series_and_cases_by_outcome(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    client, agencies, port = dev_server.client, FakeAgencies(), _free_port()
    request = sharing_request(requesting_agency_id=CSC, holding_agency_id=SCHOOL)
    ref = case_ref_for(CSC, request.request_id)
    async with AsyncExitStack() as stack:
        signer = await stack.enter_async_context(
            hub_process(dev_server, port, tmp_path / "hub.log")
        )
        for agency in (CSC, SCHOOL):
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=agency_task_queue(agency),
                    activities=agencies.activities_for(agency),
                )
            )
        request = signer.sealed(request, case_workflow_id(ref), START)
        handle = await client.start_workflow(
            SharingCase.run, request, id=case_workflow_id(ref), task_queue=HUB_TASK_QUEUE
        )
        exchange_id = holder_exchange_workflow_id(ref, SCHOOL)
        for _ in range(240):
            state = await _state(client, exchange_id)
            if state and state.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT:
                break
            await asyncio.sleep(0.25)
        else:
            pytest.fail(
                f"the exchange never awaited acknowledgement:\n{(tmp_path / 'hub.log').read_text()[-3000:]}"
            )
        ack = pb.Acknowledgement(
            practitioner=pb.Practitioner(user_id="sw-1", role="social_worker"),
            status=pb.ACKNOWLEDGEMENT_STATUS_ACTIONED,
            use="strategy discussion",
            agency_id=CSC,
        )
        await client.get_workflow_handle(exchange_id).execute_update(
            HolderExchange.acknowledge, signer.sealed(ack, exchange_id, "ack-1"), id="ack-1"
        )
        record = await asyncio.wait_for(handle.result(), 60)
        assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT

        text = await _until_scraped(
            port,
            "safeshare_cases_closed{",
            'outcome="SHARED_WITH_CONSENT"',
            "safeshare_cases_opened",
            "safeshare_delivery_latency",
        )
    # Temporal's own SDK series from the hub's worker and client.
    assert "temporal_workflow_completed" in text
    assert "temporal_activity_execution_latency" in text or "temporal_request" in text
    closed = [line for line in text.splitlines() if line.startswith("safeshare_cases_closed{")]
    assert any('outcome="SHARED_WITH_CONSENT"' in line and line.endswith(" 1") for line in closed)
    # Labels are codes only: no child's name, no case reference.
    assert "Okafor" not in text and ref not in text


async def test_gateway_counts_requests_by_rpc_and_status_and_access_events(
    dev_server: WorkflowEnvironment, pki: DevPki, registry: Registry, tmp_path: Path
) -> None:
    port = _free_port()
    client = await connect_temporal(
        TemporalSettings(
            address=dev_server.client.service_client.config.target_host,
            namespace=dev_server.client.namespace,
            metrics_address=f"127.0.0.1:{port}",
        )
    )
    assert client.service_client.config.runtime is runtime_for(f"127.0.0.1:{port}")
    log = AccessLog(tmp_path / "access.db", Ed25519PrivateKey.generate())
    server, gateway_port = await create_gateway_server(
        client, registry, server_credentials(pki.gateway()), access_log=log, signer=TEST_SIGNER
    )
    channel = grpc.aio.secure_channel(
        f"127.0.0.1:{gateway_port}", channel_credentials(pki.agency(CSC))
    )
    try:
        stub = service_grpc.CaseServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetCase(service_pb.GetCaseRequest(case_ref="not a case ref"))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # A read of a case that is not there (or not the caller's) is a refused access event.
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetCase(service_pb.GetCaseRequest(case_ref="a" * 20))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        text = await _until_scraped(port, "safeshare_gateway_requests{", "safeshare_access_events{")
    finally:
        await channel.close()
        await server.stop(None)
    lines = [x for x in text.splitlines() if x.startswith("safeshare_gateway_requests{")]
    [invalid] = [x for x in lines if 'code="INVALID_ARGUMENT"' in x]
    assert 'rpc="GetCase"' in invalid and invalid.endswith(" 1")
    [refusal] = [x for x in text.splitlines() if x.startswith("safeshare_access_events{")]
    for label in ('channel="case_api"', 'action="view"', 'outcome="refused"'):
        assert label in refusal
    assert refusal.endswith(" 1")
    assert [(e.outcome.value, e.reason) for e in log.events()] == [("refused", "no_such_case")]


def test_a_taken_metrics_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    _, gateway_key = DevPki(tmp_path / "pki").gateway_signing_key()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "safeshare", "hub", "--metrics-port", str(port),
             "--temporal-address", "127.0.0.1:1", "--gateway-key", str(gateway_key)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={**os.environ, "SAFESHARE_PLAINTEXT_PAYLOADS": "1"},
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"safeshare: error: cannot serve metrics on 127.0.0.1:{port}")
    assert "Traceback" not in result.stderr
