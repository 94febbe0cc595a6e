"""The gateway over real mTLS, against the dev server running the real SharingCase workflow.

Agency activities are fakes registered under the real names on the agencies' task queues; the
fake ExtractRecords can be held for one case, to catch that case before delivery.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sysconfig
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from structlog.testing import capture_logs
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RetryConfig, RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import EXTRACT_RECORDS, LOOKUP_CONSENT, RECEIVE_DELIVERY, agency_task_queue
from activities.registry import Registry
from protos.agency.v1 import agency_service_pb2 as agency_pb
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.gateway import create_gateway_server
from safeshare.gateway.server import CASE_SERVICE_NAME
from safeshare.pki import DevPki
from safeshare.tls import TlsFiles
from workflows.ids import case_ref_for, case_workflow_id
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.asyncio(loop_scope="session")

CSC = "northshire-csc"
SCHOOL = "oakfield-primary"
GP = "riverside-gp"
AGENCIES = (CSC, SCHOOL, GP)
WAIT = dt.timedelta(seconds=20)
TEMPORAL_CLI = Path(sysconfig.get_path("scripts")) / "temporal"


def _stamp(year: int) -> dt.datetime:
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC)


@dataclass
class FakeAgencies:
    """Fake agency systems: consent always given; extraction may be held per case."""

    held: dict[str, asyncio.Event] = field(default_factory=dict)

    @activity.defn(name=LOOKUP_CONSENT)
    async def lookup_consent(
        self, request: agency_pb.LookupConsentRequest
    ) -> agency_pb.LookupConsentResponse:
        consent = pb.ConsentRecord(
            status=pb.CONSENT_STATUS_GIVEN,
            given_by_relationship="mother",
            parental_responsibility=True,
            purposes=[p for p in pb.Purpose.values() if p],
            categories=[c for c in pb.InformationCategory.values() if c],
            verification="signed form",
        )
        consent.valid_from.FromDatetime(_stamp(2025))
        consent.valid_until.FromDatetime(_stamp(2030))
        return agency_pb.LookupConsentResponse(consent=consent)

    @activity.defn(name=EXTRACT_RECORDS)
    async def extract_records(
        self, request: agency_pb.ExtractRecordsRequest
    ) -> agency_pb.ExtractRecordsResponse:
        gate = self.held.get(request.case_ref)
        if gate is not None:
            await gate.wait()
        category = request.categories[0]
        items = [
            pb.RecordItem(
                item_id=f"item-{n}",
                category=category,
                kind=pb.ITEM_KIND_FACT,
                source="fake",
                content="fictional",
            )
            for n in (1, 2)
        ]
        return agency_pb.ExtractRecordsResponse(items=items)

    @activity.defn(name=RECEIVE_DELIVERY)
    async def receive_delivery(
        self, request: agency_pb.ReceiveDeliveryRequest
    ) -> agency_pb.ReceiveDeliveryResponse:
        receipt = pb.DeliveryReceipt(
            delivery_id=request.delivery_id,
            item_count=len(request.items),
            content_digest=request.content_digest,
        )
        receipt.received_at.GetCurrentTime()
        return agency_pb.ReceiveDeliveryResponse(receipt=receipt)


@dataclass
class Gateway:
    """The running gateway, what it talks to, and how to call it as someone."""

    client: Client
    port: int
    pki: DevPki
    fakes: FakeAgencies
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def stub_with(self, credentials: grpc.ChannelCredentials) -> service_grpc.CaseServiceAsyncStub:
        channel = grpc.aio.secure_channel(f"127.0.0.1:{self.port}", credentials)
        self.channels.append(channel)
        return service_grpc.CaseServiceStub(channel)

    def stub(self, files: TlsFiles) -> service_grpc.CaseServiceAsyncStub:
        return self.stub_with(tls.channel_credentials(files))

    def as_agency(self, agency_id: str) -> service_grpc.CaseServiceAsyncStub:
        return self.stub(self.pki.agency(agency_id))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(
    dev_server: WorkflowEnvironment, pki: DevPki, registry: Registry
) -> AsyncIterator[Gateway]:
    client = dev_server.client
    fakes = FakeAgencies()
    hub_queue = f"hub-test-{uuid.uuid4()}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(client, task_queue=hub_queue, workflows=[SharingCase])
        )
        for agency_id in AGENCIES:
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=agency_task_queue(agency_id),
                    activities=[
                        fakes.lookup_consent,
                        fakes.extract_records,
                        fakes.receive_delivery,
                    ],
                )
            )
        server, port = await create_gateway_server(
            client, registry, tls.server_credentials(pki.gateway()), hub_task_queue=hub_queue
        )
        gw = Gateway(client, port, pki, fakes)
        try:
            yield gw
        finally:
            for gate in fakes.held.values():
                gate.set()
            for channel in gw.channels:
                await channel.close()
            await server.stop(None)


def new_request(holder: str = SCHOOL) -> service_pb.SubmitRequestRequest:
    """A well-formed request with a fresh idempotency key."""
    req = pb.SharingRequest(
        request_id=str(uuid.uuid4()),
        requester=pb.Practitioner(user_id="sw-0042", role="social_worker"),
        holding_agency_ids=[holder],
        subjects=[
            pb.Subject(
                role=pb.SUBJECT_ROLE_CHILD,
                given_name="Testchild",
                family_name="Fictional",
                date_of_birth="2016-03-04",
            )
        ],
        purpose=pb.PURPOSE_SAFEGUARDING,
        lawful_basis="Children Act 1989 s47",
        categories=[
            pb.CategoryRequest(
                category=pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE, necessity="attendance"
            )
        ],
        urgency=pb.URGENCY_RED,
        family_aware=True,
    )
    req.requester.training_valid_until.FromDatetime(_stamp(2030))
    return service_pb.SubmitRequestRequest(request=req)


def violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations in a rich error status."""
    status = rpc_status.from_call(err)
    assert status is not None, "no rich status details"
    found: list[tuple[str, str]] = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        assert detail.Unpack(bad_request)
        found.extend((v.field, v.description) for v in bad_request.field_violations)
    return found


async def assert_no_case(client: Client, agency_id: str, request_id: str) -> None:
    """No workflow was started for this request."""
    handle = client.get_workflow_handle(case_workflow_id(case_ref_for(agency_id, request_id)))
    with pytest.raises(RPCError) as raised:
        await handle.describe()
    assert raised.value.status == RPCStatusCode.NOT_FOUND


async def wait_for_state(
    stub: service_grpc.CaseServiceAsyncStub, case_ref: str, state: pb.CaseState.ValueType
) -> pb.CaseView:
    """Poll GetCase until the case reaches ``state`` (bounded)."""
    view = pb.CaseView()
    for _ in range(400):
        view = (await stub.GetCase(service_pb.GetCaseRequest(case_ref=case_ref))).case
        if view.state == state:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"case stayed {pb.CaseState.Name(view.state)}")


def acknowledgement(case_ref: str) -> service_pb.AcknowledgeRequest:
    return service_pb.AcknowledgeRequest(
        case_ref=case_ref,
        acknowledgement=pb.Acknowledgement(
            practitioner=pb.Practitioner(user_id="sw-0042", role="social_worker"),
            status=pb.ACKNOWLEDGEMENT_STATUS_ACTIONED,
            use="strategy discussion",
        ),
    )


async def test_a_request_is_shared_acknowledged_and_closed(gateway: Gateway) -> None:
    csc = gateway.as_agency(CSC)
    call = new_request()
    call.request.requesting_agency_id = GP  # a body cannot choose the requesting agency

    submitted = await csc.SubmitRequest(call)

    assert submitted.created
    assert submitted.case_ref == case_ref_for(CSC, call.request.request_id)
    seen = (await csc.GetCase(service_pb.GetCaseRequest(case_ref=submitted.case_ref))).case
    assert seen.case_ref == submitted.case_ref
    assert seen.record.request.requesting_agency_id == CSC
    assert seen.record.request.subjects[0].given_name == "Testchild"
    holder_view = await gateway.as_agency(SCHOOL).GetCase(
        service_pb.GetCaseRequest(case_ref=submitted.case_ref)
    )
    assert holder_view.case.case_ref == submitted.case_ref
    await wait_for_state(csc, submitted.case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)

    acked = await csc.Acknowledge(acknowledgement(submitted.case_ref))

    assert acked.case.record.acknowledgement.agency_id == CSC
    handle = gateway.client.get_workflow_handle_for(
        SharingCase.run, case_workflow_id(submitted.case_ref)
    )
    record = await asyncio.wait_for(handle.result(), WAIT.total_seconds())
    assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert len(record.shared_items) == 2
    closed = await csc.GetCase(service_pb.GetCaseRequest(case_ref=submitted.case_ref))
    assert closed.case.state == pb.CASE_STATE_CLOSED
    assert closed.case.record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    summary = await (await handle.describe()).static_summary()
    assert summary == f"RED SAFEGUARDING: {CSC} asks {SCHOOL}"

    # A closed case is still the case of its request id: resubmitting never reopens it.
    again = await csc.SubmitRequest(call)
    assert (again.case_ref, again.created) == (submitted.case_ref, False)
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await csc.Acknowledge(acknowledgement(submitted.case_ref))
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_resubmitted_request_returns_its_case(gateway: Gateway) -> None:
    csc = gateway.as_agency(CSC)
    call = new_request()

    first = await csc.SubmitRequest(call)
    handle = gateway.client.get_workflow_handle(case_workflow_id(first.case_ref))
    run_id = (await handle.describe()).run_id
    second = await csc.SubmitRequest(call)

    assert first.created
    assert (second.case_ref, second.created) == (first.case_ref, False)
    assert (await handle.describe()).run_id == run_id
    runs = [w async for w in gateway.client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert [w.run_id for w in runs] == [run_id]


def _no_subjects(req: pb.SharingRequest) -> None:
    del req.subjects[:]


def _no_child(req: pb.SharingRequest) -> None:
    req.subjects[0].role = pb.SUBJECT_ROLE_PARENT_OR_CARER


def _bad_dob(req: pb.SharingRequest) -> None:
    req.subjects[0].date_of_birth = "2016-02-30"


def _no_purpose(req: pb.SharingRequest) -> None:
    req.purpose = pb.PURPOSE_UNSPECIFIED


def _several_faults(req: pb.SharingRequest) -> None:
    _bad_dob(req)
    _no_purpose(req)
    req.holding_agency_ids.append(GP)
    req.categories[0].necessity = ""


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (_no_subjects, ["request.subjects"]),
        (_no_child, ["request.subjects"]),
        (_bad_dob, ["request.subjects[0].date_of_birth"]),
        (_no_purpose, ["request.purpose"]),
        (
            _several_faults,
            [
                "request.holding_agency_ids",
                "request.subjects[0].date_of_birth",
                "request.purpose",
                "request.categories[0].necessity",
            ],
        ),
    ],
)
async def test_a_malformed_request_lists_its_faults_and_opens_no_case(
    gateway: Gateway, change: Callable[[pb.SharingRequest], None], fields: list[str]
) -> None:
    call = new_request()
    change(call.request)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.as_agency(CSC).SubmitRequest(call)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(raised.value)] == fields
    assert "2016-02-30" not in (raised.value.details() or "")
    await assert_no_case(gateway.client, CSC, call.request.request_id)


async def test_an_unknown_holding_agency_is_not_found(gateway: Gateway) -> None:
    call = new_request(holder="nowhere-housing")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.as_agency(CSC).SubmitRequest(call)

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert violations(raised.value) == [("request.holding_agency_ids[0]", "not a partner agency")]
    await assert_no_case(gateway.client, CSC, call.request.request_id)


async def test_an_agency_cannot_ask_itself(gateway: Gateway) -> None:
    call = new_request(holder=CSC)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.as_agency(CSC).SubmitRequest(call)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(raised.value)] == ["request.holding_agency_ids[0]"]
    await assert_no_case(gateway.client, CSC, call.request.request_id)


async def test_another_agencys_case_looks_like_no_case(gateway: Gateway) -> None:
    submitted = await gateway.as_agency(CSC).SubmitRequest(new_request())
    gp = gateway.as_agency(GP)

    with pytest.raises(grpc.aio.AioRpcError) as theirs:
        # The forged header names the requester; identity comes from the certificate only.
        await gp.GetCase(
            service_pb.GetCaseRequest(case_ref=submitted.case_ref),
            metadata=(("x-agency-id", CSC),),
        )
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await gp.GetCase(service_pb.GetCaseRequest(case_ref=case_ref_for(GP, "never-sent")))

    assert theirs.value.code() == missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert theirs.value.details() == missing.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as ack:
        await gp.Acknowledge(acknowledgement(submitted.case_ref))
    assert ack.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_malformed_case_ref_is_invalid(gateway: Gateway) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.as_agency(CSC).GetCase(service_pb.GetCaseRequest(case_ref="case-1"))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(raised.value)] == ["case_ref"]


async def test_acknowledgements_out_of_turn_or_by_the_holder_are_refused(
    gateway: Gateway,
) -> None:
    csc, school = gateway.as_agency(CSC), gateway.as_agency(SCHOOL)
    call = new_request()
    case_ref = case_ref_for(CSC, call.request.request_id)
    gate = gateway.fakes.held[case_ref] = asyncio.Event()
    await csc.SubmitRequest(call)
    await wait_for_state(csc, case_ref, pb.CASE_STATE_DELIVERING)

    with pytest.raises(grpc.aio.AioRpcError) as early:
        await csc.Acknowledge(acknowledgement(case_ref))
    with pytest.raises(grpc.aio.AioRpcError) as by_holder:
        await school.Acknowledge(acknowledgement(case_ref))
    gate.set()
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    incomplete = acknowledgement(case_ref)
    incomplete.acknowledgement.status = pb.ACKNOWLEDGEMENT_STATUS_UNSPECIFIED
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await csc.Acknowledge(incomplete)
    with pytest.raises(grpc.aio.AioRpcError) as absent:
        await csc.Acknowledge(service_pb.AcknowledgeRequest(case_ref=case_ref))
    await csc.Acknowledge(acknowledgement(case_ref))
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await csc.Acknowledge(acknowledgement(case_ref))

    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert by_holder.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(invalid.value)] == ["acknowledgement.status"]
    assert absent.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(absent.value)] == ["acknowledgement"]
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    handle = gateway.client.get_workflow_handle_for(SharingCase.run, case_workflow_id(case_ref))
    record = await asyncio.wait_for(handle.result(), WAIT.total_seconds())
    assert [e.agency_id for e in record.entries if e.event == "Acknowledged"] == [CSC]


async def test_a_certificate_that_names_no_partner_is_refused(gateway: Gateway) -> None:
    adapter = gateway.stub(gateway.pki.adapter(CSC))
    call = new_request()

    with pytest.raises(grpc.aio.AioRpcError) as submit:
        await adapter.SubmitRequest(call, metadata=(("x-agency-id", CSC),))
    with pytest.raises(grpc.aio.AioRpcError) as get:
        await adapter.GetCase(service_pb.GetCaseRequest(case_ref=case_ref_for(CSC, "x")))

    assert submit.value.code() == get.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert submit.value.details() == "caller is not a partner agency"
    await assert_no_case(gateway.client, CSC, call.request.request_id)
    await assert_no_case(gateway.client, f"adapter.{CSC}", call.request.request_id)


async def test_a_caller_without_a_client_certificate_cannot_connect(gateway: Gateway) -> None:
    anonymous = gateway.stub_with(
        grpc.ssl_channel_credentials(root_certificates=gateway.pki.ca_path.read_bytes())
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await anonymous.SubmitRequest(new_request(), timeout=10)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_identity_comes_from_the_certificate_not_metadata(gateway: Gateway) -> None:
    call = new_request()

    submitted = await gateway.as_agency(GP).SubmitRequest(call, metadata=(("x-agency-id", CSC),))

    assert submitted.case_ref == case_ref_for(GP, call.request.request_id)
    view = await gateway.as_agency(GP).GetCase(
        service_pb.GetCaseRequest(case_ref=submitted.case_ref)
    )
    assert view.case.record.request.requesting_agency_id == GP
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.as_agency(CSC).GetCase(service_pb.GetCaseRequest(case_ref=submitted.case_ref))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_reports_serving(gateway: Gateway) -> None:
    channel = grpc.aio.secure_channel(
        f"127.0.0.1:{gateway.port}", tls.channel_credentials(gateway.pki.agency(CSC))
    )
    gateway.channels.append(channel)
    health = health_pb2_grpc.HealthStub(channel)

    for service in ("", CASE_SERVICE_NAME):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_services(gateway: Gateway) -> None:
    channel = grpc.aio.secure_channel(
        f"127.0.0.1:{gateway.port}", tls.channel_credentials(gateway.pki.agency(CSC))
    )
    gateway.channels.append(channel)
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name async for r in replies for s in r.list_services_response.service}

    assert {CASE_SERVICE_NAME, "grpc.health.v1.Health"} <= names


async def test_each_call_logs_one_access_line_without_personal_data(gateway: Gateway) -> None:
    csc = gateway.as_agency(CSC)
    call = new_request()
    call.request.subjects[0].date_of_birth = "2999-01-01"

    with capture_logs() as logs:
        with pytest.raises(grpc.aio.AioRpcError):
            await csc.SubmitRequest(call)
        submitted = await csc.SubmitRequest(new_request())

    access = [entry for entry in logs if entry["event"] == "rpc_completed"]
    assert [(e["rpc"], e["agency_id"], e["code"]) for e in access] == [
        ("SubmitRequest", CSC, "INVALID_ARGUMENT"),
        ("SubmitRequest", CSC, "OK"),
    ]
    assert access[1]["case_ref"] == submitted.case_ref
    assert all(isinstance(e["duration_ms"], float) for e in access)
    text = repr(logs)
    assert "Testchild" not in text
    assert "2999" not in text
    assert call.request.request_id not in text


async def test_temporal_down_is_unavailable(pki: DevPki, registry: Registry) -> None:
    # A Temporal server of its own, stopped under a connected client: the session's stays up.
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=str(TEMPORAL_CLI))
    client = await Client.connect(
        env.client.service_client.config.target_host,
        retry_config=RetryConfig(max_retries=1, max_elapsed_time_millis=1000),
    )
    await env.shutdown()
    server, port = await create_gateway_server(
        client, registry, tls.server_credentials(pki.gateway())
    )
    channel = grpc.aio.secure_channel(f"127.0.0.1:{port}", tls.channel_credentials(pki.agency(CSC)))
    try:
        stub = service_grpc.CaseServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as submit:
            await stub.SubmitRequest(new_request(), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as get:
            await stub.GetCase(service_pb.GetCaseRequest(case_ref=case_ref_for(CSC, "x")))
    finally:
        await channel.close()
        await server.stop(None)

    assert submit.value.code() == get.value.code() == grpc.StatusCode.UNAVAILABLE
