"""The gateway over real mTLS, against the dev server running the real hub worker.

The hub worker is the real one (SharingCase, HolderExchange, the protocol gate against the
committed registry, operator alerts). Agency activities are fakes registered under the real
names on the agencies' task queues: consent is given unless a case is marked refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from structlog.testing import capture_logs
from temporalio.client import Client
from temporalio.service import RetryConfig
from temporalio.testing import WorkflowEnvironment

from partnership.registry import Registry
from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from protos.sharing.v1 import case_service_pb2_grpc as service_grpc
from safeshare import tls
from safeshare.gateway import create_gateway_server
from safeshare.gateway.server import CASE_SERVICE_NAME
from safeshare.pki import DevPki
from tests.gateway_seal import TEST_SIGNER
from tests.safeshare.gateway_support import (
    CSC,
    GP,
    POLICE,
    SCHOOL,
    TEMPORAL_CLI,
    Gateway,
    acknowledgement,
    actor,
    assert_no_case,
    change_urgency,
    decide_override,
    decline,
    new_request,
    new_year,
    propose_override,
    record_consent,
    refused,
    share_first,
    violations,
    wait_for,
    wait_for_state,
    withdraw_consent,
    withdraw_request,
)
from workflows.ids import case_ref_for, case_workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

# -- the lifecycle through the API -------------------------------------------------------------


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
    assert seen.record.request.subjects[0].given_name == "Amara"
    # The holder sees the case once the protocol gate has passed it (NOT_FOUND before).
    holder_view = await wait_for(
        gateway.as_agency(SCHOOL), submitted.case_ref, lambda v: True, "visible to the holder"
    )
    assert holder_view.case_ref == submitted.case_ref
    await wait_for_state(csc, submitted.case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)

    acked = await csc.Acknowledge(acknowledgement(submitted.case_ref))

    assert acked.case.record.holders[0].acknowledgement.agency_id == CSC
    record = await gateway.result(submitted.case_ref)
    assert record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert len(record.holders[0].shared_items) == 2
    closed = await csc.GetCase(service_pb.GetCaseRequest(case_ref=submitted.case_ref))
    assert closed.case.state == pb.CASE_STATE_CLOSED
    assert closed.case.record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    assert closed.case.record.holders[0].outcome == pb.OUTCOME_SHARED_WITH_CONSENT
    handle = gateway.client.get_workflow_handle(case_workflow_id(submitted.case_ref))
    summary = await (await handle.describe()).static_summary()
    assert summary == f"RED SAFEGUARDING: {CSC} asks {SCHOOL}"

    # A closed case is still the case of its request id: resubmitting never reopens it.
    again = await csc.SubmitRequest(call)
    assert (again.case_ref, again.created) == (submitted.case_ref, False)
    late = await refused(csc.Acknowledge(acknowledgement(submitted.case_ref)))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_consent_refused_then_an_approved_override_shares_and_closes(
    gateway: Gateway,
) -> None:
    csc, school = gateway.as_agency(CSC), gateway.as_agency(SCHOOL)
    case_ref = await gateway.open_case(refused=True)
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)

    # The school's system said REFUSED: only an override or a decline is open.
    consented = await refused(school.RecordConsent(record_consent(case_ref)))
    incomplete = service_pb.ProposeOverrideRequest(
        case_ref=case_ref,
        proposal=pb.OverrideProposal(actor=actor("dsl-1", "designated_safeguarding_lead", CSC)),
    )
    missing = await refused(school.ProposeOverride(incomplete))
    proposed = await school.ProposeOverride(propose_override(case_ref))
    self_approved = await refused(
        school.DecideOverride(decide_override(case_ref, "dsl-1", "designated_safeguarding_lead"))
    )
    not_an_approver = await refused(
        school.DecideOverride(decide_override(case_ref, "t-9", "teacher"))
    )
    approved = await school.DecideOverride(decide_override(case_ref))
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    acked = await csc.Acknowledge(acknowledgement(case_ref))

    assert consented.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "override" in (consented.details() or "")
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Each field the workflow's refusal names, as it names it (its details, not its text).
    assert violations(missing) == [
        (f"proposal.{name}", "required")
        for name in (
            "consent_state_overridden",
            "harm_statement",
            "legal_basis",
            "necessity_and_proportionality",
            "alternatives_considered",
            "advice_sought",
            "reason_code",
            "minimum_data_set",
            "not_telling_reason",
        )
    ]
    assert proposed.case.state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION
    assert proposed.case.waiting_on == pb.WAITING_ON_APPROVER
    assert self_approved.code() == not_an_approver.code() == grpc.StatusCode.PERMISSION_DENIED
    assert approved.case.record.holders[0].override_decision.actor.agency_id == SCHOOL
    assert acked.case.record.holders[0].acknowledgement.agency_id == CSC
    record = await gateway.result(case_ref)
    assert record.outcome == pb.OUTCOME_SHARED_UNDER_OVERRIDE
    assert record.holders[0].override_used
    decided = [e for e in record.holders[0].entries if e.event == "OverrideApproved"]
    assert [(e.agency_id, e.user_id) for e in decided] == [(SCHOOL, "head-1")]


async def test_a_holder_declines_to_share(gateway: Gateway) -> None:
    csc, school = gateway.as_agency(CSC), gateway.as_agency(SCHOOL)
    case_ref = await gateway.open_case(refused=True)
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)

    declined = await school.DeclineToShare(decline(case_ref))

    holder = declined.case.record.holders[0]
    assert (holder.state, holder.outcome) == (pb.CASE_STATE_CLOSED, pb.OUTCOME_NOT_SHARED)
    assert holder.decline.actor.agency_id == SCHOOL
    record = await gateway.result(case_ref)
    assert record.outcome == pb.OUTCOME_NOT_SHARED
    assert "not_necessary" in record.basis


async def test_the_requester_withdraws_the_request(gateway: Gateway) -> None:
    csc = gateway.as_agency(CSC)
    case_ref = await gateway.open_case(refused=True)
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)

    withdrawn = await csc.WithdrawRequest(withdraw_request(case_ref))

    assert withdrawn.case.record.withdrawal.actor.agency_id == CSC
    record = await gateway.result(case_ref)
    assert record.outcome == pb.OUTCOME_WITHDRAWN
    assert record.holders[0].outcome == pb.OUTCOME_WITHDRAWN


async def test_changing_the_urgency_moves_the_deadline(gateway: Gateway) -> None:
    csc = gateway.as_agency(CSC)
    case_ref = await gateway.open_case(refused=True)
    before = await wait_for(csc, case_ref, lambda v: v.HasField("next_deadline"), "ran a deadline")

    changed = await csc.ChangeUrgency(change_urgency(case_ref))
    after = await wait_for(
        csc, case_ref, lambda v: v.next_deadline != before.next_deadline, "moved its deadline"
    )

    assert changed.case.record.urgency == pb.URGENCY_GREEN
    assert changed.case.record.urgency_changes[0].actor.agency_id == CSC
    # RED gives the holder 2 hours; GREEN a working day or more.
    assert after.next_deadline.ToDatetime() > before.next_deadline.ToDatetime()
    assert after.waiting_on == pb.WAITING_ON_HOLDER


async def test_red_share_first_delivers_and_waits_for_justification(gateway: Gateway) -> None:
    csc, school = gateway.as_agency(CSC), gateway.as_agency(SCHOOL)
    case_ref = await gateway.open_case(refused=True)
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_CONSENT_DECISION)

    shared = await school.ShareFirst(share_first(case_ref))
    delivered = await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)

    assert shared.case.record.holders[0].share_first.actor.agency_id == SCHOOL
    assert delivered.waiting_on == pb.WAITING_ON_APPROVER
    assert len(delivered.record.holders[0].shared_items) == 2


async def test_consent_withdrawn_after_delivery_reaches_the_recipient(gateway: Gateway) -> None:
    csc, school = gateway.as_agency(CSC), gateway.as_agency(SCHOOL)
    case_ref = await gateway.open_case()
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)

    withdrawn = await school.WithdrawConsent(withdraw_consent(case_ref))

    recorded = withdrawn.case.record.holders[0].consent_withdrawal
    assert recorded.actor.agency_id == SCHOOL
    assert recorded.recipient_notified
    notices = [n for n in gateway.fakes.withdrawal_notices if n.case_ref == case_ref]
    assert [(n.holding_agency_id, list(n.delivery_ids)) for n in notices] == [
        (SCHOOL, [f"{case_ref}.{SCHOOL}.1"])
    ]


async def test_consent_withdrawn_after_the_exchange_closed_reaches_the_recipient(
    gateway: Gateway,
) -> None:
    csc, school = gateway.as_agency(CSC), gateway.as_agency(SCHOOL)
    case_ref = await gateway.open_case()
    await wait_for_state(csc, case_ref, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT)
    await csc.Acknowledge(acknowledgement(case_ref))
    await wait_for_state(csc, case_ref, pb.CASE_STATE_CLOSED)

    withdrawn = await school.WithdrawConsent(withdraw_consent(case_ref))

    recorded = withdrawn.case.record.holders[0].consent_withdrawal
    assert recorded.actor.agency_id == SCHOOL and recorded.recipient_notified
    notices = [n for n in gateway.fakes.withdrawal_notices if n.case_ref == case_ref]
    assert [(n.holding_agency_id, list(n.delivery_ids)) for n in notices] == [
        (SCHOOL, [f"{case_ref}.{SCHOOL}.1"])
    ]
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await school.WithdrawConsent(withdraw_consent(case_ref))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as requester:
        await csc.WithdrawConsent(withdraw_consent(case_ref))
    assert requester.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_with_two_holders_the_acknowledgement_names_one(gateway: Gateway) -> None:
    csc = gateway.as_agency(CSC)
    case_ref = await gateway.open_case(holders=(SCHOOL, GP))
    await wait_for(
        csc,
        case_ref,
        lambda v: (
            [h.state for h in v.record.holders] == [pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT] * 2
        ),
        "delivered by both holders",
    )

    unnamed = await refused(csc.Acknowledge(acknowledgement(case_ref)))
    stranger = await refused(csc.Acknowledge(acknowledgement(case_ref, POLICE)))
    acked = await csc.Acknowledge(acknowledgement(case_ref, GP))
    gp_view = await gateway.as_agency(GP).GetCase(service_pb.GetCaseRequest(case_ref=case_ref))

    assert unnamed.code() == stranger.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(unnamed)] == ["acknowledgement.holding_agency_id"]
    assert [f for f, _ in violations(stranger)] == ["acknowledgement.holding_agency_id"]
    by_holder = {h.holding_agency_id: h for h in acked.case.record.holders}
    assert by_holder[GP].state == pb.CASE_STATE_CLOSED
    assert by_holder[SCHOOL].state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
    # Each holder sees its own exchange only (tests/security/test_views_by_role.py).
    assert [h.holding_agency_id for h in gp_view.case.record.holders] == [GP]
    assert [h.holding_agency_id for h in acked.case.record.holders] == [SCHOOL, GP]


async def test_a_case_refused_by_the_gate_has_no_exchange_to_decide_on(gateway: Gateway) -> None:
    csc, school = gateway.as_agency(CSC), gateway.as_agency(SCHOOL)
    call = new_request()
    call.request.requester.training_valid_until.FromDatetime(new_year(2020))
    case_ref = (await csc.SubmitRequest(call)).case_ref
    record = await gateway.result(case_ref)

    view = (await csc.GetCase(service_pb.GetCaseRequest(case_ref=case_ref))).case
    hidden = await refused(school.GetCase(service_pb.GetCaseRequest(case_ref=case_ref)))
    late = await refused(school.RecordConsent(record_consent(case_ref)))

    assert record.outcome == pb.OUTCOME_REJECTED_BY_PROTOCOL_GATE
    assert (view.state, len(view.record.holders)) == (pb.CASE_STATE_CLOSED, 0)
    # To the holder a case the gate refused is no case at all (tests/security).
    assert hidden.code() == late.code() == grpc.StatusCode.NOT_FOUND


# -- every decision RPC: who may call it, when, and with what -----------------------------------


@dataclass(frozen=True)
class Rpc:
    """One decision RPC: a well-formed call (its body forging the other party's agency), a way
    to break it, the field the break names, and which case state makes it out of turn."""

    name: str
    side: str
    build: Callable[[str], Message]
    spoil: Callable[[Any], None]
    spoiled_field: str
    out_of_turn_on: str

    def send(self, stub: service_grpc.CaseServiceAsyncStub, call: Message) -> Awaitable[Any]:
        method: Callable[[Message], Awaitable[Any]] = getattr(stub, self.name)
        return method(call)


def _set(path: str, value: object) -> Callable[[Any], None]:
    def spoil(call: Any) -> None:
        *parents, name = path.split(".")
        target = call
        for parent in parents:
            target = getattr(target, parent)
        if isinstance(value, list):
            del getattr(target, name)[:]
        else:
            setattr(target, name, value)

    return spoil


RPCS = [
    Rpc("RecordConsent", "holder", record_consent,
        _set("decision.not_sought.reason", 0), "decision.not_sought.reason", "delivered"),
    Rpc("ProposeOverride", "holder", propose_override,
        _set("proposal.reason_code", 99), "proposal.reason_code", "delivered"),
    Rpc("DecideOverride", "holder", decide_override,
        _set("decision.reason", ""), "decision.reason", "waiting"),
    Rpc("ShareFirst", "holder", share_first,
        _set("decision.harm_statement", "x" * 4001), "decision.harm_statement", "delivered"),
    Rpc("DeclineToShare", "holder", decline,
        _set("decision.reasons", []), "decision.reasons", "delivered"),
    Rpc("WithdrawConsent", "holder", withdraw_consent,
        _set("withdrawal.actor.practitioner.role", ""), "withdrawal.actor.practitioner.role",
        "waiting"),
    Rpc("WithdrawRequest", "requester", withdraw_request,
        _set("withdrawal.reason", " "), "withdrawal.reason", "closed"),
    Rpc("ChangeUrgency", "requester", change_urgency,
        _set("change.urgency", 0), "change.urgency", "closed"),
    Rpc("Acknowledge", "requester", acknowledgement,
        _set("acknowledgement.status", 0), "acknowledgement.status", "waiting"),
]  # fmt: skip
RPC_IDS = [rpc.name for rpc in RPCS]


@dataclass(frozen=True)
class Cases:
    """Cases the per-RPC checks share; a refused call must leave each as it was."""

    waiting: str
    """Consent refused: waiting for the holder's consent decision."""
    delivered: str
    """Consent given and delivered: waiting for the acknowledgement."""
    closed: str
    """Withdrawn and closed."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cases(gateway: Gateway) -> Cases:
    csc = gateway.as_agency(CSC)
    waiting, delivered, closed = await asyncio.gather(
        gateway.open_case(refused=True), gateway.open_case(), gateway.open_case(refused=True)
    )
    await wait_for_state(csc, closed, pb.CASE_STATE_AWAITING_CONSENT_DECISION)
    await csc.WithdrawRequest(withdraw_request(closed))
    await asyncio.gather(
        wait_for_state(csc, waiting, pb.CASE_STATE_AWAITING_CONSENT_DECISION),
        wait_for_state(csc, delivered, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT),
        gateway.result(closed),
    )
    return Cases(waiting, delivered, closed)


@pytest.mark.parametrize("rpc", RPCS, ids=RPC_IDS)
async def test_a_non_party_finds_no_case_and_changes_nothing(
    gateway: Gateway, cases: Cases, rpc: Rpc
) -> None:
    gp = gateway.as_agency(GP)
    before = await gateway.history_lengths(cases.waiting)

    theirs = await refused(rpc.send(gp, rpc.build(cases.waiting)))
    unknown = await refused(rpc.send(gp, rpc.build(case_ref_for(GP, "never-sent"))))

    assert theirs.code() == unknown.code() == grpc.StatusCode.NOT_FOUND
    assert theirs.details() == unknown.details()
    assert await gateway.history_lengths(cases.waiting) == before


@pytest.mark.parametrize("rpc", RPCS, ids=RPC_IDS)
async def test_a_party_in_the_wrong_role_is_denied_whatever_the_body_says(
    gateway: Gateway, cases: Cases, rpc: Rpc
) -> None:
    # The body names the agency that has the role; the certificate names the other party.
    wrong = gateway.as_agency(CSC if rpc.side == "holder" else SCHOOL)
    before = await gateway.history_lengths(cases.waiting)

    denied = await refused(rpc.send(wrong, rpc.build(cases.waiting)))

    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await gateway.history_lengths(cases.waiting) == before


@pytest.mark.parametrize("rpc", RPCS, ids=RPC_IDS)
async def test_a_call_out_of_turn_fails_its_precondition(
    gateway: Gateway, cases: Cases, rpc: Rpc
) -> None:
    party = gateway.as_agency(SCHOOL if rpc.side == "holder" else CSC)
    case_ref = getattr(cases, rpc.out_of_turn_on)
    before = await gateway.history_lengths(case_ref)

    late = await refused(rpc.send(party, rpc.build(case_ref)))

    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await gateway.history_lengths(case_ref) == before


@pytest.mark.parametrize("rpc", RPCS, ids=RPC_IDS)
async def test_a_malformed_call_names_its_field(gateway: Gateway, cases: Cases, rpc: Rpc) -> None:
    party = gateway.as_agency(SCHOOL if rpc.side == "holder" else CSC)
    call = rpc.build(cases.waiting)
    rpc.spoil(call)
    before = await gateway.history_lengths(cases.waiting)

    invalid = await refused(rpc.send(party, call))
    without = await refused(rpc.send(party, type(call)(case_ref="not-a-case")))

    assert invalid.code() == without.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(invalid)] == [rpc.spoiled_field]
    command_field = rpc.spoiled_field.split(".")[0]
    assert [f for f, _ in violations(without)] == ["case_ref", command_field]
    assert await gateway.history_lengths(cases.waiting) == before


# -- submitting, reading, identity and operations ------------------------------------------------


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
    req.holding_agency_ids.append(req.holding_agency_ids[0])
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
    call = new_request("nowhere-housing")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.as_agency(CSC).SubmitRequest(call)

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert violations(raised.value) == [("request.holding_agency_ids[0]", "not a partner agency")]
    await assert_no_case(gateway.client, CSC, call.request.request_id)


async def test_an_agency_cannot_ask_itself(gateway: Gateway) -> None:
    call = new_request(CSC)

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
    assert ack.value.details() == missing.value.details()


async def test_a_malformed_case_ref_is_invalid(gateway: Gateway) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.as_agency(CSC).GetCase(service_pb.GetCaseRequest(case_ref="case-1"))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(raised.value)] == ["case_ref"]


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
    assert "Amara" not in text and "Okafor-Test" not in text and "9990000018" not in text
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
        client, registry, tls.server_credentials(pki.gateway()), signer=TEST_SIGNER
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
