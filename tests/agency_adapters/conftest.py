"""Sandbox agencies on real mTLS ports, and the credentials to call them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from agency_adapters.sandbox_agency.server import SandboxAgency, create_sandbox_server
from protos.agency.v1.sandbox_control_pb2 import Faults
from safeshare.pki import DevPki
from safeshare.tls import channel_credentials, server_credentials
from tests.agency_adapters.agency_test_support import Sandbox, StartSandbox


@pytest_asyncio.fixture(loop_scope="session")
async def start_sandbox(pki: DevPki, tmp_path: Path) -> AsyncIterator[StartSandbox]:
    """Start sandbox agencies by id on port 0; all are stopped when the test ends."""
    running: list[SandboxAgency] = []

    async def start(agency_id: str, *, faults: Faults | None = None) -> Sandbox:
        agency = await create_sandbox_server(
            agency_id,
            tmp_path / f"{agency_id}.db",
            server_credentials(pki.agency(agency_id)),
            faults=faults,
        )
        running.append(agency)
        return Sandbox(agency_id, agency.server, agency.port, agency.store, agency.faults)

    yield start
    for agency in running:
        await agency.stop(None)


@pytest.fixture
def adapter_credentials(pki: DevPki) -> Callable[[str], grpc.ChannelCredentials]:
    """The channel credentials of SafeShare's adapter for an agency (client cert + CA)."""
    return lambda agency_id: channel_credentials(pki.adapter(agency_id))
