"""The sandbox agency's caller check, its new RPCs, its fault toggles and its control service."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Protocol

import grpc
import pytest
import pytest_asyncio

from activities.agency import content_digest
from agency_adapters.sandbox_agency.faults import FaultError, FaultInjector
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.agency.v1 import agency_service_pb2_grpc as agency_grpc
from protos.agency.v1.sandbox_control_pb2 import Faults
from protos.sharing.v1 import case_pb2 as pb
from safeshare.pki import DevPki
from safeshare.sandbox_admin import SandboxAdminError, control_sandbox
from safeshare.tls import TlsFiles, channel_credentials
from tests.agency_adapters.agency_test_support import (
    Sandbox,
    StartSandbox,
    child_subject,
    unique_agency_id,
)

if TYPE_CHECKING:
    from protos.agency.v1.agency_service_pb2_grpc import AgencyServiceAsyncStub

pytestmark = pytest.mark.asyncio(loop_scope="session")

CASE_REF = "faultsabcdefghijklmn"
LOOKUP = agency_pb.LookupConsentRequest(
    case_ref=CASE_REF, subjects=[child_subject("consent-given")]
)
ITEMS = [
    pb.RecordItem(
        item_id="gp-1",
        category=pb.INFORMATION_CATEGORY_HEALTH_SUMMARY,
        kind=pb.ITEM_KIND_FACT,
        source="GP surgery",
        content="Missed two appointments.",
    )
]
DELIVERY = agency_pb.ReceiveDeliveryRequest(
    delivery_id=f"{CASE_REF}.gp.1",
    case_ref=CASE_REF,
    holding_agency_id="northshire-gp",
    items=ITEMS,
    content_digest=content_digest(ITEMS),
)


class Connect(Protocol):
    """A stub on a channel to a sandbox, as its adapter or with other TLS files."""

    def __call__(self, sandbox: Sandbox, tls: TlsFiles | None = None) -> AgencyServiceAsyncStub: ...


@pytest_asyncio.fixture(loop_scope="session")
async def connect(pki: DevPki) -> AsyncIterator[Connect]:
    """See :class:`Connect`; channels close after the test."""
    channels: list[grpc.aio.Channel] = []

    def connect(sandbox: Sandbox, tls: TlsFiles | None = None) -> AgencyServiceAsyncStub:
        credentials = channel_credentials(tls or pki.adapter(sandbox.agency_id))
        channels.append(grpc.aio.secure_channel(sandbox.target, credentials))
        return agency_grpc.AgencyServiceStub(channels[-1])

    yield connect
    for channel in channels:
        await channel.close()


async def _code_of(call: Awaitable[object]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    return failure.value.code()


# -- who may call ---------------------------------------------------------------------------


async def test_another_agencys_adapter_certificate_is_permission_denied(
    start_sandbox: StartSandbox, connect: Connect, pki: DevPki
) -> None:
    gp = await start_sandbox(unique_agency_id("gp"))
    other = pki.adapter(unique_agency_id("school"))  # same CA, CN adapter.<other agency>

    assert await _code_of(connect(gp, other).LookupConsent(LOOKUP, timeout=5)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert await _code_of(connect(gp, other).ReceiveDelivery(DELIVERY, timeout=5)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    # The agency's own certificate (CN=<agency id>) is not the adapter's either.
    assert await _code_of(
        connect(gp, pki.agency(gp.agency_id)).LookupConsent(LOOKUP, timeout=5)
    ) == (grpc.StatusCode.PERMISSION_DENIED)
    assert gp.store.deliveries() == []
    assert not gp.faults.calls
    # And the right one is answered.
    assert (await connect(gp).LookupConsent(LOOKUP, timeout=5)).consent.status == (
        pb.CONSENT_STATUS_GIVEN
    )


# -- the new RPCs ---------------------------------------------------------------------------


async def test_notify_practitioner_is_stored_once_per_id(
    start_sandbox: StartSandbox, connect: Connect
) -> None:
    school = await start_sandbox(unique_agency_id("school"))
    stub = connect(school)
    request = agency_pb.NotifyPractitionerRequest(
        notification_id=f"{CASE_REF}.task.1",
        case_ref=CASE_REF,
        kind=agency_pb.NOTIFICATION_KIND_TASK,
        practitioner_user_id="dsl-17",
        step="holder_responds",
        text=f"Case {CASE_REF} is waiting for your consent check.",
    )
    request.due_at.FromSeconds(1_800_000_000)

    first = await stub.NotifyPractitioner(request, timeout=5)
    again = await stub.NotifyPractitioner(request, timeout=5)

    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.received_at == first.received_at
    assert school.store.notifications() == [request]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("notification_id", "", grpc.StatusCode.INVALID_ARGUMENT),
        ("kind", agency_pb.NOTIFICATION_KIND_UNSPECIFIED, grpc.StatusCode.INVALID_ARGUMENT),
        ("practitioner_role", "", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_a_notification_that_cannot_be_sent_is_refused(
    start_sandbox: StartSandbox, connect: Connect, field: str, value: object, code: grpc.StatusCode
) -> None:
    school = await start_sandbox(unique_agency_id("school"))
    request = agency_pb.NotifyPractitionerRequest(
        notification_id="n-1",
        case_ref=CASE_REF,
        kind=agency_pb.NOTIFICATION_KIND_ESCALATION,
        practitioner_role="designated_safeguarding_lead",
    )
    setattr(request, field, value)

    assert await _code_of(connect(school).NotifyPractitioner(request, timeout=5)) == code
    assert school.store.notifications() == []


async def test_consent_withdrawn_counts_the_deliveries_held_and_is_stored_once(
    start_sandbox: StartSandbox, connect: Connect
) -> None:
    csc = await start_sandbox(unique_agency_id("csc"))
    stub = connect(csc)
    await stub.ReceiveDelivery(DELIVERY, timeout=5)
    notice = agency_pb.ReceiveConsentWithdrawnRequest(
        notice_id=f"{CASE_REF}.withdrawn",
        case_ref=CASE_REF,
        delivery_ids=[DELIVERY.delivery_id, "never-delivered.1"],
        holding_agency_id="northshire-gp",
    )
    notice.withdrawn_at.FromSeconds(1_800_000_000)

    first = await stub.ReceiveConsentWithdrawn(notice, timeout=5)
    again = await stub.ReceiveConsentWithdrawn(notice, timeout=5)

    assert (first.deliveries_known, first.deliveries_unknown, first.duplicate) == (1, 1, False)
    assert (again.deliveries_known, again.duplicate) == (1, True)
    assert csc.store.withdrawals() == [notice]
    empty = agency_pb.ReceiveConsentWithdrawnRequest(notice_id="w-2", case_ref=CASE_REF)
    assert await _code_of(stub.ReceiveConsentWithdrawn(empty, timeout=5)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


# -- fault toggles, one call at a time ------------------------------------------------------


async def test_unavailable_set_at_start_fails_every_call_until_cleared(
    start_sandbox: StartSandbox, connect: Connect
) -> None:
    gp = await start_sandbox(unique_agency_id("gp"), faults=Faults(unavailable=True))
    stub = connect(gp)

    for _ in range(3):
        assert await _code_of(stub.LookupConsent(LOOKUP, timeout=5)) == grpc.StatusCode.UNAVAILABLE
    gp.set_faults()

    assert (await stub.LookupConsent(LOOKUP, timeout=5)).consent.status == pb.CONSENT_STATUS_GIVEN
    assert gp.faults.calls["LookupConsent"] == 4


async def test_fail_next_fails_exactly_that_many_calls_with_the_chosen_code(
    start_sandbox: StartSandbox, connect: Connect
) -> None:
    gp = await start_sandbox(unique_agency_id("gp"))
    stub = connect(gp)
    gp.set_faults(fail_next=2, fail_code="RESOURCE_EXHAUSTED")

    codes = [await _code_of(stub.LookupConsent(LOOKUP, timeout=5)) for _ in range(2)]
    answer = await stub.LookupConsent(LOOKUP, timeout=5)

    assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
    assert answer.consent.status == pb.CONSENT_STATUS_GIVEN
    assert gp.faults.get().fail_next == 0


async def test_slow_makes_a_short_deadline_expire_and_faults_can_target_one_rpc(
    start_sandbox: StartSandbox, connect: Connect
) -> None:
    gp = await start_sandbox(unique_agency_id("gp"))
    stub = connect(gp)
    gp.set_faults(delay_ms=2000, rpcs=["LookupConsent"])

    code = await _code_of(stub.LookupConsent(LOOKUP, timeout=0.2))
    receipt = await stub.ReceiveDelivery(DELIVERY, timeout=1)

    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert not receipt.receipt.duplicate


async def test_a_dropped_reply_has_committed_and_the_repeat_gets_the_first_receipt(
    start_sandbox: StartSandbox, connect: Connect
) -> None:
    csc = await start_sandbox(unique_agency_id("csc"))
    stub = connect(csc)
    csc.set_faults(drop_replies_after_commit=1)

    code = await _code_of(stub.ReceiveDelivery(DELIVERY, timeout=5))
    stored_after_drop = len(csc.store.deliveries())
    again = await stub.ReceiveDelivery(DELIVERY, timeout=5)

    assert code == grpc.StatusCode.UNAVAILABLE
    assert stored_after_drop == 1
    assert again.receipt.duplicate
    assert len(csc.store.deliveries()) == 1
    assert csc.store.delivered_items() == ITEMS


async def test_an_unknown_fail_code_is_refused() -> None:
    with pytest.raises(FaultError):
        FaultInjector(Faults(fail_code="NOT_A_CODE"))
    with pytest.raises(FaultError):
        FaultInjector(Faults(fail_code="OK"))


# -- the control service, over the wire ------------------------------------------------------


async def test_faults_set_at_run_time_through_the_control_service(
    start_sandbox: StartSandbox, connect: Connect, pki: DevPki
) -> None:
    csc = await start_sandbox(unique_agency_id("csc"))
    admin_tls = pki.agency(csc.agency_id)

    state = await control_sandbox(csc.target, admin_tls, Faults(fail_next=1, fail_code="ABORTED"))
    code = await _code_of(connect(csc).ReceiveDelivery(DELIVERY, timeout=5))
    await connect(csc).ReceiveDelivery(DELIVERY, timeout=5)
    after = await control_sandbox(csc.target, admin_tls)

    assert state["faults"] == {"failNext": 1, "failCode": "ABORTED"}
    assert code == grpc.StatusCode.ABORTED
    assert after["faults"] == {"failCode": "ABORTED"}
    assert after["calls"] == {"ReceiveDelivery": 2}
    received = after["received"]
    assert isinstance(received, dict)
    [delivery] = received["deliveries"]
    assert (delivery["deliveryId"], delivery["itemIds"]) == (DELIVERY.delivery_id, ["gp-1"])
    with pytest.raises(SandboxAdminError, match="INVALID_ARGUMENT"):
        await control_sandbox(csc.target, admin_tls, Faults(fail_code="NOPE"))


async def test_the_sandbox_faults_command_sets_faults_on_a_running_sandbox(
    start_sandbox: StartSandbox, pki: DevPki
) -> None:
    gp = await start_sandbox(unique_agency_id("gp"))
    tls = pki.agency(gp.agency_id)
    args = [
        "-m", "safeshare", "sandbox-faults", "--target", gp.target,
        "--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key),
    ]  # fmt: skip

    ok = await _run(*args, "--fail-next", "1", "--fail-code", "not_found", "--rpc", "LookupConsent")
    bad = await _run(*args, "--fail-code", "BOGUS")

    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["faults"] == {
        "failNext": 1,
        "failCode": "NOT_FOUND",
        "rpcs": ["LookupConsent"],
    }
    assert gp.faults.get() == Faults(fail_next=1, fail_code="NOT_FOUND", rpcs=["LookupConsent"])
    assert bad.returncode == 2
    assert gp.faults.get().fail_next == 1  # a refused command changed nothing


async def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
