"""The gateway under test and what tests say to it: the running gateway over real mTLS
(the ``gateway`` fixture in ``tests/safeshare/conftest.py``), the real hub worker behind it,
the fake agencies, and builders for every Case API message."""

from __future__ import annotations

import asyncio
import datetime as dt
import sysconfig
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from partnership.registry import Registry
from partnership.registry_file import DEFAULT_REGISTRY_PATH
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.gateway import CaseServiceServicer, create_gateway_server
from safeshare.hub import build_hub_worker
from safeshare.pki import DevPki
from safeshare.tls import TlsFiles
from tests.eventually import eventually
from tests.factories import sharing_request
from tests.fake_agencies import FakeAgencies
from tests.gateway_seal import TEST_SIGNER, gateway_key_file
from workflows.ids import case_ref_for, case_workflow_id, holder_exchange_workflow_id
from workflows.sharing_case import SharingCase

CSC = "northshire-csc"
SCHOOL = "oakfield-primary"
GP = "riverside-gp"
POLICE = "northshire-police"
AGENCIES = (CSC, SCHOOL, GP, POLICE)
WAIT = dt.timedelta(seconds=20)
TEMPORAL_CLI = Path(sysconfig.get_path("scripts")) / "temporal"
ATTENDANCE = pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE


def new_year(year: int) -> dt.datetime:
    """1 January of ``year``, UTC."""
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC)


@dataclass
class Gateway:
    """The running gateway, what it talks to, and how to call it as someone."""

    client: Client
    port: int
    pki: DevPki
    fakes: FakeAgencies
    servicer: CaseServiceServicer
    channels: list[grpc.aio.Channel] = field(default_factory=list)
    stubs: dict[str, service_grpc.CaseServiceAsyncStub] = field(default_factory=dict)

    def stub_with(self, credentials: grpc.ChannelCredentials) -> service_grpc.CaseServiceAsyncStub:
        channel = grpc.aio.secure_channel(f"127.0.0.1:{self.port}", credentials)
        self.channels.append(channel)
        return service_grpc.CaseServiceStub(channel)

    def stub(self, files: TlsFiles) -> service_grpc.CaseServiceAsyncStub:
        return self.stub_with(tls.channel_credentials(files))

    def as_agency(self, agency_id: str) -> service_grpc.CaseServiceAsyncStub:
        return self.stub(self.pki.agency(agency_id))

    def cached(self, agency_id: str) -> service_grpc.CaseServiceAsyncStub:
        """One stub (one channel) per agency, for tests that make many calls."""
        if agency_id not in self.stubs:
            self.stubs[agency_id] = self.as_agency(agency_id)
        return self.stubs[agency_id]

    async def open_case(
        self, *, refused: bool = False, holders: tuple[str, ...] = (SCHOOL,)
    ) -> str:
        """Submit a fresh request from CSC and return its case reference."""
        call = new_request(*holders)
        case_ref = case_ref_for(CSC, call.request.request_id)
        if refused:
            self.fakes.refused.add(case_ref)
        await self.as_agency(CSC).SubmitRequest(call)
        return case_ref

    async def result(self, case_ref: str) -> pb.DecisionRecord:
        """The case's decision record once its workflow has closed (bounded)."""
        handle = self.client.get_workflow_handle_for(SharingCase.run, case_workflow_id(case_ref))
        return await asyncio.wait_for(handle.result(), WAIT.total_seconds())

    async def history_lengths(
        self, case_ref: str, holders: tuple[str, ...] = (SCHOOL,)
    ) -> list[int]:
        """How many events the case and each exchange have: unchanged if nothing happened."""
        ids = [case_workflow_id(case_ref)] + [
            holder_exchange_workflow_id(case_ref, h) for h in holders
        ]
        return [(await self.client.get_workflow_handle(i).describe()).history_length for i in ids]


@asynccontextmanager
async def running_workers(
    client: Client, hub_queue: str, fakes: FakeAgencies
) -> AsyncIterator[None]:
    """The real hub worker on ``hub_queue`` and every agency's fake activities."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            build_hub_worker(
                client,
                DEFAULT_REGISTRY_PATH,
                task_queue=hub_queue,
                gateway_key_path=gateway_key_file(),
            )
        )
        for agency_id in AGENCIES:
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=agency_task_queue(agency_id),
                    activities=fakes.activities_for(agency_id),
                )
            )
        yield


@asynccontextmanager
async def serving(
    client: Client,
    registry: Registry,
    pki: DevPki,
    fakes: FakeAgencies,
    gateway_client: Client | None = None,
) -> AsyncIterator[Gateway]:
    """The gateway over real mTLS, with the real hub worker and ``fakes`` behind it on a fresh
    hub queue; its servicer reaches Temporal through ``gateway_client`` (default ``client``)."""
    hub_queue = f"hub-test-{uuid.uuid4()}"
    async with running_workers(client, hub_queue, fakes):
        servicer = CaseServiceServicer(
            gateway_client or client, registry, hub_queue, signer=TEST_SIGNER
        )
        servicer.poll_interval = dt.timedelta(seconds=0.2)  # WatchCase tests finish sooner
        server, port = await create_gateway_server(
            gateway_client or client,
            registry,
            tls.server_credentials(pki.gateway()),
            hub_task_queue=hub_queue,
            servicer=servicer,
            signer=TEST_SIGNER,
        )
        gateway = Gateway(client, port, pki, fakes, servicer)
        try:
            yield gateway
        finally:
            for channel in gateway.channels:
                await channel.close()
            await server.stop(None)


# -- messages ----------------------------------------------------------------------------------


def new_request(*holders: str) -> service_pb.SubmitRequestRequest:
    """A well-formed RED request with a fresh idempotency key (the gateway names the
    requesting agency from the caller's certificate)."""
    request = sharing_request(
        holders=holders or (SCHOOL,), urgency=pb.URGENCY_RED, requesting_agency_id=""
    )
    return service_pb.SubmitRequestRequest(request=request)


def actor(user_id: str, role: str, forged_agency: str) -> pb.Actor:
    """An actor whose body names ``forged_agency``: the gateway must use the certificate's."""
    return pb.Actor(
        agency_id=forged_agency, practitioner=pb.Practitioner(user_id=user_id, role=role)
    )


def record_consent(case_ref: str) -> service_pb.RecordConsentRequest:
    return service_pb.RecordConsentRequest(
        case_ref=case_ref,
        decision=pb.ConsentDecision(
            actor=actor("teacher-7", "teacher", CSC),
            not_sought=pb.NotSought(
                reason=pb.NOT_SOUGHT_REASON_RISK_TO_CHILD, explanation="would alert the household"
            ),
        ),
    )


def propose_override(case_ref: str) -> service_pb.ProposeOverrideRequest:
    return service_pb.ProposeOverrideRequest(
        case_ref=case_ref,
        proposal=pb.OverrideProposal(
            actor=actor("dsl-1", "designated_safeguarding_lead", CSC),
            consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
            harm_statement="risk of significant harm",
            legal_basis="Children Act 1989 s47",
            reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
            necessity_and_proportionality="attendance only",
            minimum_data_set=[ATTENDANCE],
            alternatives_considered="none timely",
            advice_sought="caldicott guardian",
            subject_will_be_told=False,
            not_telling_reason="would increase risk",
        ),
    )


def decide_override(case_ref: str, user_id: str = "head-1", role: str = "manager") -> Any:
    return service_pb.DecideOverrideRequest(
        case_ref=case_ref,
        decision=pb.OverrideDecision(
            actor=actor(user_id, role, CSC), approve=True, reason="justified"
        ),
    )


def share_first(case_ref: str) -> service_pb.ShareFirstRequest:
    return service_pb.ShareFirstRequest(
        case_ref=case_ref,
        decision=pb.ShareFirstDecision(
            actor=actor("dsl-1", "designated_safeguarding_lead", CSC),
            harm_statement="immediate risk",
            minimum_data_set=[ATTENDANCE],
        ),
    )


def decline(case_ref: str) -> service_pb.DeclineToShareRequest:
    return service_pb.DeclineToShareRequest(
        case_ref=case_ref,
        decision=pb.DeclineDecision(
            actor=actor("dsl-1", "designated_safeguarding_lead", CSC),
            reasons=["not_necessary"],
            explanation="already known to the requester",
        ),
    )


def withdraw_consent(case_ref: str) -> service_pb.WithdrawConsentRequest:
    return service_pb.WithdrawConsentRequest(
        case_ref=case_ref,
        withdrawal=pb.ConsentWithdrawal(
            actor=actor("teacher-7", "teacher", CSC), withdrawn_by_relationship="mother"
        ),
    )


def withdraw_request(case_ref: str) -> service_pb.WithdrawRequestRequest:
    return service_pb.WithdrawRequestRequest(
        case_ref=case_ref,
        withdrawal=pb.RequestWithdrawal(
            actor=actor("sw-0042", "social_worker", SCHOOL), reason="resolved"
        ),
    )


def change_urgency(case_ref: str) -> service_pb.ChangeUrgencyRequest:
    return service_pb.ChangeUrgencyRequest(
        case_ref=case_ref,
        change=pb.UrgencyChange(
            actor=actor("sw-0042", "social_worker", SCHOOL),
            urgency=pb.URGENCY_GREEN,
            reason="child now safe",
        ),
    )


def acknowledgement(case_ref: str, holder: str = "") -> service_pb.AcknowledgeRequest:
    return service_pb.AcknowledgeRequest(
        case_ref=case_ref,
        acknowledgement=pb.Acknowledgement(
            practitioner=pb.Practitioner(user_id="sw-0042", role="social_worker"),
            status=pb.ACKNOWLEDGEMENT_STATUS_ACTIONED,
            use="strategy discussion",
            agency_id=SCHOOL,  # forged: the acknowledging agency is the certificate's
            holding_agency_id=holder,
        ),
    )


# -- assertions and polling --------------------------------------------------------------------


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


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error a call fails with (it must fail)."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def assert_no_case(client: Client, agency_id: str, request_id: str) -> None:
    """No workflow was started for this request."""
    handle = client.get_workflow_handle(case_workflow_id(case_ref_for(agency_id, request_id)))
    with pytest.raises(RPCError) as raised:
        await handle.describe()
    assert raised.value.status == RPCStatusCode.NOT_FOUND


async def wait_for(
    stub: service_grpc.CaseServiceAsyncStub,
    case_ref: str,
    done: Callable[[pb.CaseView], bool],
    what: str,
) -> pb.CaseView:
    """Poll GetCase until ``done`` holds (bounded)."""

    async def read() -> pb.CaseView:
        return (await stub.GetCase(service_pb.GetCaseRequest(case_ref=case_ref))).case

    def not_shown_yet(err: BaseException) -> bool:
        # A holder is not shown a case before the protocol gate has passed it.
        return isinstance(err, grpc.aio.AioRpcError) and err.code() == grpc.StatusCode.NOT_FOUND

    return await eventually(
        read, done, what=what, retry_on=(grpc.aio.AioRpcError,), retry_if=not_shown_yet,
        last=lambda view: f"case is {pb.CaseState.Name(view.state)}",
    )  # fmt: skip


async def wait_for_state(
    stub: service_grpc.CaseServiceAsyncStub, case_ref: str, state: pb.CaseState.ValueType
) -> pb.CaseView:
    """Poll GetCase until the case reaches ``state`` (bounded)."""
    return await wait_for(stub, case_ref, lambda v: v.state == state, pb.CaseState.Name(state))
