"""Fixtures shared by the Case API tests: the gateway over real mTLS on the dev server, with
the real hub worker and the fake agencies (``tests/safeshare/gateway_support.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from safeshare.pki import DevPki
from tests.factories import given_consent
from tests.fake_agencies import FakeAgencies
from tests.safeshare.gateway_support import Gateway, serving


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(
    dev_server: WorkflowEnvironment, pki: DevPki, registry: Registry
) -> AsyncIterator[Gateway]:
    # Consent given for every purpose, unless a test marks the case refused.
    fakes = FakeAgencies(default_consent=given_consent(purposes=list(pb.Purpose.values())[1:]))
    async with serving(dev_server.client, registry, pki, fakes) as gateway:
        yield gateway
