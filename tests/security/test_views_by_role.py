"""What each party of a case sees, over real mTLS, against the whole stack in one process.

The real gateway, the real hub worker (SharingCase, HolderExchange, the protocol gate against
the committed registry), real adapter workers and real sandbox agencies (seeded with the
fictional children and their consent records) on a real Temporal dev server. Each test
reproduces one leak an adversarial review found and checks the rule that closes it:

- the requester sees the outcome, the basis, the receipt and what it received, never a
  holder's consent record, proposal or decisions (not even after an override was rejected);
- in a case with two holders each holder sees its own exchange only, through GetCase and
  through WatchCase;
- a holder sees nothing of a case the protocol gate refused: it looks like no case at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from agency_adapters.sandbox_agency.seed import DEMO_CHILDREN, demo_consents
from agency_adapters.sandbox_agency.server import SandboxAgency, create_sandbox_server
from agency_adapters.worker import build_adapter_worker, open_agency_channel
from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.gateway import CaseServiceServicer, create_gateway_server
from safeshare.hub import build_hub_worker
from safeshare.pki import DevPki
from tests.eventually import eventually
from tests.factories import sharing_request
from tests.gateway_seal import TEST_SIGNER, gateway_key_file
from workflows.ids import case_ref_for, case_workflow_id
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.asyncio(loop_scope="session")

CSC = "northshire-csc"
SCHOOL = "oakfield-primary"
GP = "riverside-gp"
NAMED_APPROVER = {SCHOOL: "head-1", GP: "gp-caldicott"}
"""An approver each holder's entry in the committed registry names (unique to the holder)."""
AGENCIES = (CSC, SCHOOL, GP)
IDENTITY = pb.INFORMATION_CATEGORY_IDENTITY_AND_CONTACT  # every sandbox kind holds it
WAIT_SECONDS = 30.0
CHILDREN = {child.key: child for child in DEMO_CHILDREN}


@dataclass
class Stack:
    """The running stack and a Case API stub per agency (its own certificate)."""

    client: Client
    port: int
    pki: DevPki
    stubs: dict[str, service_grpc.CaseServiceAsyncStub] = field(default_factory=dict)
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def stub(self, agency_id: str) -> service_grpc.CaseServiceAsyncStub:
        if agency_id not in self.stubs:
            credentials = tls.channel_credentials(self.pki.agency(agency_id))
            channel = grpc.aio.secure_channel(f"127.0.0.1:{self.port}", credentials)
            self.channels.append(channel)
            self.stubs[agency_id] = service_grpc.CaseServiceStub(channel)
        return self.stubs[agency_id]

    async def get(self, agency_id: str, case_ref: str) -> pb.CaseView:
        reply = await self.stub(agency_id).GetCase(service_pb.GetCaseRequest(case_ref=case_ref))
        return reply.case

    async def watch(
        self, agency_id: str, case_ref: str, from_event: int = 0
    ) -> list[service_pb.CaseEvent]:
        """Every event the agency is sent until the stream ends (the case has closed)."""
        stream = self.stub(agency_id).WatchCase(
            service_pb.WatchCaseRequest(case_ref=case_ref, from_event=from_event),
            timeout=WAIT_SECONDS,
        )
        return [reply.event async for reply in stream]

    async def submit(self, request: pb.SharingRequest) -> str:
        reply = await self.stub(CSC).SubmitRequest(service_pb.SubmitRequestRequest(request=request))
        return reply.case_ref

    async def closed(self, case_ref: str) -> pb.DecisionRecord:
        handle = self.client.get_workflow_handle_for(SharingCase.run, case_workflow_id(case_ref))
        return await asyncio.wait_for(handle.result(), WAIT_SECONDS)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    dev_server: WorkflowEnvironment,
    pki: DevPki,
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    client = dev_server.client
    data = tmp_path_factory.mktemp("views-by-role")
    hub_queue = f"hub-views-{uuid.uuid4()}"
    sandboxes: list[SandboxAgency] = []
    async with AsyncExitStack() as running:
        for agency_id in AGENCIES:
            sandbox = await create_sandbox_server(
                agency_id, data / f"{agency_id}.db", tls.server_credentials(pki.agency(agency_id))
            )
            sandboxes.append(sandbox)
            channel = open_agency_channel(
                f"127.0.0.1:{sandbox.port}", tls.channel_credentials(pki.adapter(agency_id))
            )
            running.push_async_callback(channel.close)
            await running.enter_async_context(build_adapter_worker(client, agency_id, channel))
        await running.enter_async_context(
            build_hub_worker(client, task_queue=hub_queue, gateway_key_path=gateway_key_file())
        )
        servicer = CaseServiceServicer(client, registry, hub_queue, signer=TEST_SIGNER)
        servicer.poll_interval = dt.timedelta(seconds=0.2)
        server, port = await create_gateway_server(
            client,
            registry,
            tls.server_credentials(pki.gateway()),
            hub_task_queue=hub_queue,
            servicer=servicer,
            signer=TEST_SIGNER,
        )
        built = Stack(client, port, pki)
        try:
            yield built
        finally:
            for channel in built.channels:
                await channel.close()
            await server.stop(None)
            for sandbox in sandboxes:
                await sandbox.stop(None)


# -- requests and decisions ----------------------------------------------------------------------


def request_about(child_key: str, *holders: str, training_until: int = 2030) -> pb.SharingRequest:
    """A request from CSC about a sandbox child (all of name, date of birth, NHS number)."""
    request = sharing_request(
        requesting_agency_id="", holders=holders, categories=(IDENTITY,),
        child=CHILDREN[child_key], necessity="who lives with the child",
        training_until=dt.datetime(training_until, 1, 1, tzinfo=dt.UTC),
    )  # fmt: skip
    request.requester.user_id = "csc-sw-0042"
    return request


@dataclass(frozen=True)
class Secrets:
    """One holder's free text in a case, every string unique to this test run."""

    holder: str
    proposer: str = field(default_factory=lambda: f"prop-{uuid.uuid4().hex[:8]}")
    approver: str = ""
    """One of the holder's approvers the committed registry names (only they may decide)."""
    harm: str = field(default_factory=lambda: f"harm statement {uuid.uuid4().hex}")
    necessity: str = field(default_factory=lambda: f"necessity {uuid.uuid4().hex}")
    alternatives: str = field(default_factory=lambda: f"alternatives {uuid.uuid4().hex}")
    advice: str = field(default_factory=lambda: f"advice {uuid.uuid4().hex}")
    not_telling: str = field(default_factory=lambda: f"not telling {uuid.uuid4().hex}")
    legal_basis: str = field(default_factory=lambda: f"legal basis {uuid.uuid4().hex}")
    decision_reason: str = field(default_factory=lambda: f"decision reason {uuid.uuid4().hex}")

    def __post_init__(self) -> None:
        if not self.approver:
            object.__setattr__(self, "approver", NAMED_APPROVER[self.holder])

    def texts(self) -> list[str]:
        return [
            self.proposer,
            self.approver,
            self.harm,
            self.necessity,
            self.alternatives,
            self.advice,
            self.not_telling,
            self.legal_basis,
            self.decision_reason,
        ]

    def proposal(self, case_ref: str) -> service_pb.ProposeOverrideRequest:
        return service_pb.ProposeOverrideRequest(
            case_ref=case_ref,
            proposal=pb.OverrideProposal(
                actor=_actor(self.proposer, "designated_safeguarding_lead"),
                consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
                harm_statement=self.harm,
                legal_basis=self.legal_basis,
                reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
                necessity_and_proportionality=self.necessity,
                minimum_data_set=[IDENTITY],
                alternatives_considered=self.alternatives,
                advice_sought=self.advice,
                subject_will_be_told=False,
                not_telling_reason=self.not_telling,
            ),
        )

    def decision(self, case_ref: str, approve: bool) -> service_pb.DecideOverrideRequest:
        return service_pb.DecideOverrideRequest(
            case_ref=case_ref,
            decision=pb.OverrideDecision(
                actor=_actor(self.approver, "caldicott_guardian"),
                approve=approve,
                reason=self.decision_reason,
            ),
        )


def _actor(user_id: str, role: str) -> pb.Actor:
    practitioner = pb.Practitioner(user_id=user_id, role=role)
    practitioner.training_valid_until.FromDatetime(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    return pb.Actor(practitioner=practitioner)


def consent_texts(child_key: str) -> list[str]:
    """The free text of a child's consent record, as every sandbox holds it."""
    consent = demo_consents()[child_key]
    return [
        text
        for text in (consent.views_expressed, consent.verification, consent.given_by_relationship)
        if text
    ]


def leaked(view: Any, texts: list[str]) -> list[str]:
    """Which of ``texts`` appear anywhere in a message (or list of messages), as sent."""
    rendered = str(view)
    return [text for text in texts if text in rendered]


async def until(
    read: Callable[[], Awaitable[pb.CaseView]], done: Callable[[pb.CaseView], bool], what: str
) -> pb.CaseView:
    return await eventually(
        read, done, what=what, within=WAIT_SECONDS, every=0.1,
        last=lambda view: f"case is {pb.CaseState.Name(view.state)}",
    )  # fmt: skip


def holder_state(view: pb.CaseView, holder: str) -> int:
    found = [h.state for h in view.record.holders if h.holding_agency_id == holder]
    return found[0] if found else pb.CASE_STATE_UNSPECIFIED


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


# -- the requester ---------------------------------------------------------------------------------


async def test_the_requester_never_reads_the_holders_consent_record_or_rejected_override(
    stack: Stack,
) -> None:
    case_ref = await stack.submit(request_about("consent-refused", SCHOOL))
    school = Secrets(SCHOOL)
    waiting = await until(
        lambda: stack.get(CSC, case_ref),
        lambda v: holder_state(v, SCHOOL) == pb.CASE_STATE_AWAITING_CONSENT_DECISION,
        "waiting on the school's consent decision",
    )
    await stack.stub(SCHOOL).ProposeOverride(school.proposal(case_ref))
    await stack.stub(SCHOOL).DecideOverride(school.decision(case_ref, approve=False))
    record = await stack.closed(case_ref)

    closed = await stack.get(CSC, case_ref)
    events = await stack.watch(CSC, case_ref)
    holders_own = await stack.get(SCHOOL, case_ref)

    # What the holder's system and its practitioners wrote never reaches the requester...
    private = consent_texts("consent-refused") + school.texts()
    assert leaked(waiting, consent_texts("consent-refused")) == []
    assert leaked(closed, private) == []
    assert leaked(events, private) == []
    # ...while the requester still learns how its request ended, and why, in codes.
    assert record.outcome == closed.record.outcome == pb.OUTCOME_NOT_SHARED
    (seen,) = closed.record.holders
    assert (seen.holding_agency_id, seen.outcome) == (SCHOOL, pb.OUTCOME_NOT_SHARED)
    assert seen.basis == f"Not shared by {SCHOOL}: override_rejected"
    assert [e.entry.event for e in events][-1] == "CaseClosed"
    # The closed case stays listed for its holder (the gate passed it).
    closed_for_school = await summary_of(stack, SCHOOL, case_ref, state=pb.CASE_STATE_CLOSED)
    assert closed_for_school.outcome == pb.OUTCOME_NOT_SHARED
    # The holder (its approver included) still sees its whole exchange.
    (own,) = holders_own.record.holders
    assert own.override_proposal.harm_statement == school.harm
    assert own.override_decision.reason == school.decision_reason
    assert own.consent.views_expressed == demo_consents()["consent-refused"].views_expressed


async def test_the_requester_sees_what_it_received_but_not_how_consent_was_given(
    stack: Stack,
) -> None:
    case_ref = await stack.submit(request_about("consent-given", SCHOOL))

    delivered = await until(
        lambda: stack.get(CSC, case_ref),
        lambda v: v.state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT,
        "delivered",
    )
    ack = pb.Acknowledgement(
        practitioner=pb.Practitioner(user_id="csc-sw-0042", role="social_worker"),
        status=pb.ACKNOWLEDGEMENT_STATUS_RECEIVED,
        use="strategy discussion",
    )
    await stack.stub(CSC).Acknowledge(
        service_pb.AcknowledgeRequest(case_ref=case_ref, acknowledgement=ack)
    )
    await stack.closed(case_ref)
    closed = await stack.get(CSC, case_ref)

    assert leaked(delivered, consent_texts("consent-given")) == []
    assert leaked(closed, consent_texts("consent-given")) == []
    (seen,) = closed.record.holders
    assert seen.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert seen.receipt.delivery_id and seen.receipt.item_count == len(seen.shared_items) > 0
    assert seen.acknowledgement.use == "strategy discussion"
    assert closed.record.basis == f"Shared by {SCHOOL} with consent."


# -- two holders -----------------------------------------------------------------------------------


async def test_with_two_holders_each_sees_only_its_own_exchange(stack: Stack) -> None:
    case_ref = await stack.submit(request_about("consent-refused", SCHOOL, GP))
    gp = Secrets(GP)
    await until(
        lambda: stack.get(CSC, case_ref),
        lambda v: (
            [holder_state(v, h) for h in (SCHOOL, GP)]
            == [pb.CASE_STATE_AWAITING_CONSENT_DECISION] * 2
        ),
        "waiting on both holders",
    )
    await stack.stub(GP).ProposeOverride(gp.proposal(case_ref))
    requester_view = await until(
        lambda: stack.get(CSC, case_ref),
        lambda v: holder_state(v, GP) == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION,
        "waiting on the GP's approver",
    )
    school_view = await stack.get(SCHOOL, case_ref)
    withdrawal = pb.RequestWithdrawal(
        actor=_actor("csc-sw-0042", "social_worker"), reason="the child is safe"
    )
    await stack.stub(CSC).WithdrawRequest(
        service_pb.WithdrawRequestRequest(case_ref=case_ref, withdrawal=withdrawal)
    )
    await stack.closed(case_ref)
    school_events, gp_events, requester_events = await asyncio.gather(
        stack.watch(SCHOOL, case_ref), stack.watch(GP, case_ref), stack.watch(CSC, case_ref)
    )
    school_closed = await stack.get(SCHOOL, case_ref)

    # The school reads neither the GP's record nor, through WatchCase, its override proposal.
    assert leaked([school_view, school_closed], gp.texts()) == []
    assert leaked(school_events, gp.texts()) == []
    assert [h.holding_agency_id for h in school_view.record.holders] == [SCHOOL]
    assert [h.holding_agency_id for h in school_closed.record.holders] == [SCHOOL]
    # Its view of the case is its own exchange's: waiting on itself, not on the GP's approver.
    assert school_view.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
    assert school_view.waiting_on == pb.WAITING_ON_HOLDER
    assert GP not in {e.holding_agency_id for e in school_events}
    assert "OverrideProposed" not in {e.entry.event for e in school_events}
    # Nor does the requester read the GP's proposal; it sees the GP's step, in codes.
    assert leaked([requester_view, requester_events], gp.texts()) == []
    assert holder_state(requester_view, GP) == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION
    # The GP sees its own proposal and its own events, none of the school's.
    gp_view = await stack.get(GP, case_ref)
    (own,) = gp_view.record.holders
    assert own.override_proposal.harm_statement == gp.harm
    assert "OverrideProposed" in {e.entry.event for e in gp_events}
    assert SCHOOL not in {e.holding_agency_id for e in gp_events}
    # Listed for the school without the combined outcome (it would say what the GP did).
    for_school = await summary_of(stack, SCHOOL, case_ref, state=pb.CASE_STATE_CLOSED)
    for_requester = await summary_of(stack, CSC, case_ref, state=pb.CASE_STATE_CLOSED)
    assert for_school.outcome == pb.OUTCOME_UNSPECIFIED
    assert for_requester.outcome == pb.OUTCOME_WITHDRAWN
    # Every viewer's events are numbered 1, 2, 3 ... and end with the case's close.
    for events in (school_events, gp_events, requester_events):
        assert [e.number for e in events] == list(range(1, len(events) + 1))
        assert events[-1].entry.event == "CaseClosed"
    # ...and resuming from a number sends the rest of that party's own sequence.
    assert await stack.watch(SCHOOL, case_ref, from_event=3) == school_events[2:]


# -- the protocol gate -----------------------------------------------------------------------------


async def test_a_case_the_gate_refused_shows_the_holder_nothing(stack: Stack) -> None:
    request = request_about("consent-given", SCHOOL, training_until=2020)
    case_ref = await stack.submit(request)
    record = await stack.closed(case_ref)
    child = CHILDREN["consent-given"]

    as_holder = await refused(stack.get(SCHOOL, case_ref))
    no_case = await refused(stack.get(SCHOOL, case_ref_for(CSC, "never-sent")))
    watched = await refused(stack.watch(SCHOOL, case_ref))
    requester_lists = await until_listed(stack, CSC, case_ref)
    holder_lists = await listed(stack, SCHOOL)
    holder_lists_closed = await listed(stack, SCHOOL, state=pb.CASE_STATE_CLOSED)

    assert record.outcome == pb.OUTCOME_REJECTED_BY_PROTOCOL_GATE
    # The holder cannot tell it from a case that does not exist.
    assert as_holder.code() == no_case.code() == watched.code() == grpc.StatusCode.NOT_FOUND
    assert as_holder.details() == no_case.details()
    assert case_ref in requester_lists
    assert case_ref not in holder_lists and case_ref not in holder_lists_closed
    for text in (child.given_name, child.family_name, child.nhs_number, child.date_of_birth):
        assert text not in str(as_holder.details())
    # The requester still sees its own case, and why the gate refused it.
    mine = await stack.get(CSC, case_ref)
    assert mine.record.gate.reasons and not mine.record.gate.passed


async def test_a_case_past_the_gate_is_listed_for_its_holder(stack: Stack) -> None:
    case_ref = await stack.submit(request_about("consent-refused", SCHOOL))

    await until_listed(stack, SCHOOL, case_ref)
    view = await stack.get(SCHOOL, case_ref)

    assert view.record.request.subjects[0].given_name == CHILDREN["consent-refused"].given_name


async def listed(stack: Stack, agency_id: str, **filters: Any) -> set[str]:
    """Every case ref the agency lists (all pages)."""
    refs: set[str] = set()
    token = ""
    while True:
        page = await stack.stub(agency_id).ListCases(
            service_pb.ListCasesRequest(page_size=100, page_token=token, **filters)
        )
        refs |= {s.case_ref for s in page.cases}
        token = page.next_page_token
        if not token:
            return refs


async def until_listed(stack: Stack, agency_id: str, case_ref: str, **filters: Any) -> set[str]:
    """The agency's listing once it includes ``case_ref`` (visibility lags a little)."""
    return await eventually(
        lambda: listed(stack, agency_id, **filters),
        lambda refs: case_ref in refs,
        what=f"{agency_id} listed the case",
        within=WAIT_SECONDS,
        every=0.2,
        last=sorted,
    )


async def summary_of(
    stack: Stack, agency_id: str, case_ref: str, **filters: Any
) -> service_pb.CaseSummary:
    """The agency's ListCases entry for the case, once listed with ``filters``."""
    await until_listed(stack, agency_id, case_ref, **filters)
    token = ""
    while True:
        page = await stack.stub(agency_id).ListCases(
            service_pb.ListCasesRequest(page_size=100, page_token=token, **filters)
        )
        for summary in page.cases:
            if summary.case_ref == case_ref:
                return summary
        token = page.next_page_token
        assert token, "listed, then not"
