"""Fixtures shared by the Case API tests: the gateway over real mTLS on the dev server, with
the real hub worker and the fake agencies (``tests/safeshare/gateway_support.py``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from safeshare import tls
from safeshare.gateway import CaseServiceServicer, create_gateway_server
from safeshare.pki import DevPki
from tests.factories import given_consent
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import TEST_SIGNER
from tests.safeshare.gateway_support import Gateway, running_workers


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(
    dev_server: WorkflowEnvironment, pki: DevPki, registry: Registry
) -> AsyncIterator[Gateway]:
    client = dev_server.client
    # Consent given for every purpose, unless a test marks the case refused.
    fakes = FakeAgencies(default_consent=given_consent(purposes=list(pb.Purpose.values())[1:]))
    hub_queue = f"hub-test-{uuid.uuid4()}"
    async with running_workers(client, hub_queue, fakes):
        servicer = CaseServiceServicer(client, registry, hub_queue, signer=TEST_SIGNER)
        servicer.poll_interval = dt.timedelta(seconds=0.2)  # WatchCase tests finish sooner
        server, port = await create_gateway_server(
            client,
            registry,
            tls.server_credentials(pki.gateway()),
            hub_task_queue=hub_queue,
            servicer=servicer,
            signer=TEST_SIGNER,
        )
        gw = Gateway(client, port, pki, fakes, servicer)
        try:
            yield gw
        finally:
            for channel in gw.channels:
                await channel.close()
            await server.stop(None)
