"""The gateway picks up an operator's registry change without a restart."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from partnership.errors import RegistryError
from partnership.registry_file import DEFAULT_REGISTRY_PATH, RegistrySource, load_registry
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.gateway import create_gateway_server
from safeshare.operators.registry_store import add_agency
from safeshare.pki import DevPki
from tests.factories import sharing_request
from tests.gateway_seal import TEST_SIGNER

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_new_agency_can_call_once_the_registry_file_names_it(
    dev_server: WorkflowEnvironment, pki: DevPki, tmp_path: Path
) -> None:
    registry_path = tmp_path / "registry.toml"
    shutil.copyfile(DEFAULT_REGISTRY_PATH, registry_path)
    newcomer = f"newcomer-{uuid.uuid4().hex[:6]}"
    server, port = await create_gateway_server(
        dev_server.client,
        RegistrySource(registry_path),
        tls.server_credentials(pki.gateway()),
        hub_task_queue=f"unpolled-{uuid.uuid4().hex[:6]}",
        signer=TEST_SIGNER,
    )
    request = service_pb.SubmitRequestRequest(
        request=sharing_request(holding_agency_id="oakfield-primary")
    )
    try:
        async with grpc.aio.secure_channel(
            f"127.0.0.1:{port}", tls.channel_credentials(pki.agency(newcomer))
        ) as channel:
            stub = service_grpc.CaseServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as before:
                await stub.SubmitRequest(request, timeout=10)
            assert before.value.code() == grpc.StatusCode.PERMISSION_DENIED

            add_agency(
                registry_path,
                by="operator-1",
                agency_id=newcomer,
                name="Newcomer Youth Service",
                kind="statutory",
                signed_protocol_version="2026.1",
                review_date=dt.date(2027, 9, 30),
            )
            submitted = await stub.SubmitRequest(request, timeout=10)
            assert submitted.created

            # A malformed edit keeps the last good registry: the newcomer is not locked out.
            registry_path.write_text(registry_path.read_text() + "\nthis is not toml [[\n")
            again = await stub.SubmitRequest(request, timeout=10)
            assert again.case_ref == submitted.case_ref and not again.created

            # So does an edit that breaks the schema's rules (the newcomer made a commissioned
            # provider bound to nobody), and the gateway says why, naming the agency.
            registry_path.write_text(
                registry_path.read_text()
                .replace("this is not toml [[", "")
                .replace(
                    'kind = "statutory"\nsigned_protocol_version = "2026.1"\n'
                    "review_date = 2027-09-30\n\n[[changes]]",
                    'kind = "commissioned"\nsigned_protocol_version = "2026.1"\n'
                    "review_date = 2027-09-30\n\n[[changes]]",
                )
            )
            with pytest.raises(RegistryError, match="bound to no commissioner"):
                load_registry(registry_path)
            with capture_logs() as logs:
                third = await stub.SubmitRequest(request, timeout=10)
            assert third.case_ref == submitted.case_ref
            refused = [e for e in logs if e["event"] == "registry_reload_refused"]
            assert [(e["agency_id"], e["code"]) for e in refused] == [(newcomer, "binding")]
    finally:
        await server.stop(None)
